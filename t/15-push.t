# End-to-end push delivery: API -> PostgreSQL and Kafka -> notifyhub-push
# -> the fake FCM, with its OAuth2 token endpoint. Covers the message
# shape, provider rejections, device deactivation, fan-out to several
# device tokens, and access-token expiry and rejection.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);

use NotifyHub::Test;

require_stack();

die "NH_FCM_URL is not set: start a stack whose env file has it\n"
    unless defined $ENV{NH_FCM_URL};

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Push');
my $key = $tenant->{key};
my $run = sprintf '%d%d', time, $$;


# Sends a request to the fake FCM and returns its decoded JSON reply.
sub fcm {
    my ($method, $path, %opts) = @_;
    my $r = api($method, $path, base_url => $ENV{NH_FCM_URL}, %opts);

    die "$method $path on the fake FCM returned $r->{status}: $r->{body}\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH';

    return $r->{json};
}


# Returns the messages the fake FCM accepted for one device token.
sub fcm_messages {
    my ($token) = @_;
    my $escaped = $token =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ger;

    return @{ fcm('GET', "/messages?token=$escaped")->{items} };
}


# Polls GET /api/notifications/{id} until the status is one of @final and
# returns the last reply's JSON.
sub wait_for_status {
    my ($id, @final) = @_;
    my %final = map { $_ => 1 } @final;
    my $last;

    wait_for(sub {
        $last = api('GET', "/api/notifications/$id", key => $key);
        return $last->{status} == 200 && $final{$last->{json}{status} // ''};
    }, timeout => 30);

    return $last->{json} // {};
}


sub send_push {
    my ($token, %extra) = @_;
    my $r = api('POST', '/api/notifications', key => $key, json => {
        channel => 'PUSH',
        to      => { deviceToken => $token },
        content => { subject => 'Order update', body => 'Order 42 shipped' },
        %extra,
    });

    die "push notification not accepted: $r->{body}\n"
        unless $r->{status} == 202;

    return $r->{json}{id};
}


sub push_log_rows {
    my ($id) = @_;

    return psql('SELECT status, http_status, provider_message_id, error,'
        . ' target, provider FROM delivery_logs WHERE notification_id = $1'
        . ' ORDER BY id', $id);
}


# Returns the lines of the push worker's log that contain $text.
sub push_log_lines {
    my ($text) = @_;
    my $file = "$ENV{NH_STACK_DIR}/push.log";

    open my $fh, '<', $file or die "cannot read $file: $!\n";
    my @lines = grep { index($_, $text) >= 0 } <$fh>;
    close $fh;

    return @lines;
}


# --- Delivery and message shape ----------------------------------------------

my $token = "device-$run:APA91b_x";
my $id = send_push($token, data => {
    orderId => 42, express => \1, note => 'fragile',
    items => [1, 2], address => { city => 'Berlin' },
});
my $n = wait_for_status($id, qw(SENT FAILED));

is($n->{status}, 'SENT', 'push reaches SENT');
like($n->{providerMessageId} // '',
    qr{^projects/notifyhub-local/messages/\d+$},
    'providerMessageId is the FCM message name');
is($n->{provider}, 'fcm', 'provider is fcm');
is($n->{lastError}, undef, 'lastError is null');

my @messages = fcm_messages($token);

is(scalar @messages, 1, 'fake FCM received one message for the token');

my $m = $messages[0]{message} // {};

is($m->{token}, $token, 'message token');
is_deeply($m->{notification}, { title => 'Order update',
    body => 'Order 42 shipped' }, 'message notification title and body');
is_deeply($m->{data}, {
    orderId        => '42',
    express        => 'true',
    note           => 'fragile',
    items          => '[1,2]',
    address        => '{"city":"Berlin"}',
    notificationId => $id,
}, 'data values are strings and carry notificationId');

my @rows = push_log_rows($id);

is(scalar @rows, 1, 'one delivery log row');
is($rows[0][0], 'SENT', 'log row status');
is($rows[0][1], 200, 'log row HTTP status');
is($rows[0][2], $n->{providerMessageId}, 'log row message id');
is($rows[0][4], $token, 'log row target is the device token');


# --- Permanent rejection -----------------------------------------------------

my $invalid_id = send_push("invalid-$run");
my $invalid = wait_for_status($invalid_id, qw(FAILED SENT));

is($invalid->{status}, 'FAILED', 'invalid token fails the notification');
like($invalid->{lastError} // '', qr/HTTP 400 INVALID_ARGUMENT/,
    'lastError names the FCM error code');

my @invalid_rows = push_log_rows($invalid_id);

is(scalar @invalid_rows, 1, 'one log row for the invalid token');
is($invalid_rows[0][1], 400, 'invalid token log HTTP status');
like($invalid_rows[0][3] // '', qr/not a valid FCM registration token/,
    'invalid token log error holds the FCM message');


# --- Unregistered token ------------------------------------------------------

my $unregistered = "unregistered-$run";
my $unregistered_id = send_push($unregistered);
my $gone = wait_for_status($unregistered_id, qw(FAILED SENT));

is($gone->{status}, 'FAILED', 'unregistered token fails the notification');
like($gone->{lastError} // '', qr/UNREGISTERED/, 'lastError is UNREGISTERED');

ok(wait_for(sub {
    return scalar grep { /notification_id=$unregistered_id .*count=1/ }
        push_log_lines('msg="devices deactivated"');
}, timeout => 5), 'worker called nh_device_deactivate for the token');

is(scalar(grep { index($_, $unregistered) >= 0 } push_log_lines('')), 0,
    'worker log never shows the whole device token');


# --- Fan-out to a recipient's devices ----------------------------------------

my @tokens = ("fan-a-$run", "invalid-fan-$run", "fan-b-$run");
my $fan_id = psql(q{INSERT INTO notifications (id, tenant_id, channel,
        status, to_address, subject, body, created_at, updated_at)
    VALUES (gen_random_uuid(), $1, 'PUSH', 'PENDING',
            jsonb_build_object('deviceTokens',
                               jsonb_build_array($2, $3, $4, $2)),
            'Fan-out', 'To every device', now(),
            now() - interval '1 hour')
    RETURNING id}, $tenant->{tenant_id}, @tokens);

my $fan = wait_for_status($fan_id, qw(SENT FAILED));

is($fan->{status}, 'SENT', 'fan-out is SENT when one token is accepted');

my @fan_rows = push_log_rows($fan_id);

is(scalar @fan_rows, 3, 'one log row per distinct token');
is_deeply([map { $_->[4] } @fan_rows], \@tokens, 'log rows name the tokens');
is_deeply([map { $_->[0] } @fan_rows], [qw(SENT FAILED SENT)],
    'log row statuses per token');
is($fan->{providerMessageId}, $fan_rows[0][2],
    'providerMessageId is the first accepted message');
is(scalar fcm_messages($tokens[0]), 1, 'first token received one message');
is(scalar fcm_messages($tokens[2]), 1, 'third token received one message');

my $all_bad_id = psql(q{INSERT INTO notifications (id, tenant_id, channel,
        status, to_address, body, created_at, updated_at)
    VALUES (gen_random_uuid(), $1, 'PUSH', 'PENDING',
            jsonb_build_object('deviceTokens', jsonb_build_array($2, $3)),
            'Nobody', now(), now() - interval '1 hour')
    RETURNING id}, $tenant->{tenant_id}, "invalid-x-$run",
    "unavailable-$run");

my $all_bad = wait_for_status($all_bad_id, qw(SENT FAILED));

# UNAVAILABLE is transient, so the test profile's NH_MAX_ATTEMPTS=3
# attempts are made before the dead letter. INVALID_ARGUMENT is permanent,
# so only the first attempt goes to that token.
is($all_bad->{status}, 'FAILED', 'fan-out fails when every token fails');
is($all_bad->{attempts}, 3, 'a transient error of one token is retried');
like($all_bad->{lastError} // '', qr/UNAVAILABLE/,
    'lastError is the last token\'s error');
# The fake keeps accepted messages only, so the log rows, one per request,
# show what was sent.
is_deeply([map { "$_->[4] $_->[0]" } push_log_rows($all_bad_id)],
    ["invalid-x-$run FAILED", "unavailable-$run FAILED",
     "unavailable-$run FAILED", "unavailable-$run FAILED"],
    'the retries leave out the token that failed permanently');
is(psql('SELECT count(*) FROM dead_letters WHERE notification_id = $1',
        $all_bad_id), 1, 'fan-out failure is dead-lettered');

# A transient failure first and a permanent one last: the notification is
# still retried, and the retries go to the first token only.
my $mixed_id = psql(q{INSERT INTO notifications (id, tenant_id, channel,
        status, to_address, body, created_at, updated_at)
    VALUES (gen_random_uuid(), $1, 'PUSH', 'PENDING',
            jsonb_build_object('deviceTokens', jsonb_build_array($2, $3)),
            'Mixed', now(), now() - interval '1 hour')
    RETURNING id}, $tenant->{tenant_id}, "unavailable-y-$run",
    "invalid-y-$run");
my $mixed = wait_for_status($mixed_id, qw(FAILED));

is($mixed->{attempts}, 3,
    'a permanent last error does not hide an earlier transient one');
is_deeply([map { $_->[4] } push_log_rows($mixed_id)],
    ["unavailable-y-$run", "invalid-y-$run", "unavailable-y-$run",
     "unavailable-y-$run"], 'the invalid token is left out of the retries');


# --- Access token rejected by FCM --------------------------------------------

my $before = fcm('GET', '/stats');

fcm('DELETE', '/tokens');

my $retry_token = "after-revoke-$run";
my $retry = wait_for_status(send_push($retry_token), qw(SENT FAILED));
my $after = fcm('GET', '/stats');

is($retry->{status}, 'SENT', 'send after a 401 is retried and SENT');
is($after->{unauthenticated} - $before->{unauthenticated}, 1,
    'FCM answered 401 once');
is($after->{grants} - $before->{grants}, 1, 'one new token grant');
is(scalar fcm_messages($retry_token), 1, 'retried message accepted once');


# --- Access token expiry -----------------------------------------------------

fcm('PUT', '/settings', json => { tokenTtl => 2 });
fcm('DELETE', '/tokens');

my $short = wait_for_status(send_push("short-ttl-$run"), qw(SENT FAILED));

is($short->{status}, 'SENT', 'send with a short-lived token is SENT');

$before = fcm('GET', '/stats');

# The worker renews a token of 2 seconds after half its lifetime.
sleep 2.5;

my $renewed = wait_for_status(send_push("renewed-$run"), qw(SENT FAILED));

$after = fcm('GET', '/stats');

is($renewed->{status}, 'SENT', 'send after the token expired is SENT');
is($after->{grants} - $before->{grants}, 1,
    'an expired token is renewed with a new grant');
is($after->{unauthenticated} - $before->{unauthenticated}, 0,
    'an expired token is renewed before FCM rejects it');

fcm('PUT', '/settings', json => { tokenTtl => 3600 });

done_testing();
