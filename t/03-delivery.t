# End-to-end email delivery: API -> PostgreSQL and Kafka -> notifyhub-email
# -> the fake Mailgun, and a provider rejection that fails the notification.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Delivery');
my $key = $tenant->{key};


# Polls GET /api/notifications/{id} until the status is one of @final and
# returns the last reply.
sub wait_for_status {
    my ($id, $timeout, @final) = @_;
    my %final = map { $_ => 1 } @final;
    my $last;

    wait_for(sub {
        $last = api('GET', "/api/notifications/$id", key => $key);
        return $last->{status} == 200 && $final{$last->{json}{status} // ''};
    }, timeout => $timeout);

    return $last;
}


# Mailgun returns message ids as "<id@domain>"; a stored id with or without
# the brackets names the same message.
sub strip_angle_brackets {
    my ($id) = @_;

    return undef unless defined $id;
    return $id =~ s/^<(.*)>$/$1/r;
}


# --- Successful delivery -----------------------------------------------------

my $address = unique_email('deliver');
my $sent = api('POST', '/api/notifications', key => $key, json => {
    channel => 'EMAIL',
    to      => { email => $address },
    content => {
        subject => 'Your order shipped',
        body    => "Order 42 is on its way.\nThanks!",
        html    => '<p>Order <b>42</b> is on its way.</p>',
    },
});

is($sent->{status}, 202, 'notification accepted')
    or die "cannot create a notification: $sent->{body}\n";

my $id = $sent->{json}{id};
my $final = wait_for_status($id, 30, qw(SENT FAILED));
my $n = $final->{json} // {};

is($n->{status}, 'SENT', 'notification reaches SENT')
    or diag("last reply: $final->{body}");
like($n->{providerMessageId} // '', qr/\S/, 'providerMessageId is set');
like($n->{sentAt} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
    'sentAt is an RFC 3339 UTC time');
is($n->{lastError}, undef, 'lastError is null after a delivery');
is($n->{failedAt}, undef, 'failedAt is null after a delivery');
is($n->{attempts}, 1, 'one delivery attempt');
ok(defined $n->{provider} && length $n->{provider},
    'provider is named');

my @logs = psql('SELECT attempt, status, provider, http_status,'
    . ' provider_message_id, error, duration_ms FROM delivery_logs'
    . ' WHERE notification_id = $1 ORDER BY id', $id);

is(scalar @logs, 1, 'one delivery log row');

if (@logs) {
    my ($attempt, $status, $provider, $http_status, $message_id, $error,
        $duration) = @{ $logs[0] };

    is($attempt, 1, 'delivery log attempt');
    is($status, 'SENT', 'delivery log status');
    ok(defined $provider && length $provider, 'delivery log provider');
    is($http_status, 200, 'delivery log HTTP status');
    is($message_id, $n->{providerMessageId},
        'delivery log provider message id matches the API');
    is($error, undef, 'delivery log has no error');
    ok(defined $duration && $duration >= 0, 'delivery log duration')
        or diag('duration_ms: ' . ($duration // 'NULL'));
}

is(psql('SELECT status FROM notifications WHERE id = $1', $id), 'SENT',
    'notification row is SENT');

my @messages = mailgun_messages(to => $address);

is(scalar @messages, 1, 'fake Mailgun received one message for the address');

if (@messages) {
    my $m = $messages[0];

    is($m->{variables}{notification_id}, $id,
        'message carries v:notification_id');
    is(strip_angle_brackets($m->{id}),
        strip_angle_brackets($n->{providerMessageId}),
        'Mailgun message id is the providerMessageId');
    is($m->{subject}, 'Your order shipped', 'message subject');
    is($m->{text}, "Order 42 is on its way.\nThanks!", 'message text part');
    is($m->{html}, '<p>Order <b>42</b> is on its way.</p>',
        'message HTML part');
    like($m->{to}, qr/\Q$address\E/, 'message recipient');
    like($m->{from} // '', qr/\S+@\S+/, 'message has a sender');
}

{
    my $again = wait_for(sub {
        my @found = mailgun_messages(to => $address);
        return @found > 1 ? scalar @found : 0;
    }, timeout => 3);

    ok(!$again, 'message is sent only once');
}


# --- Plain text email --------------------------------------------------------

my $text_address = unique_email('text-only');
my $text = api('POST', '/api/notifications', key => $key, json => {
    channel => 'EMAIL',
    to      => { email => $text_address },
    content => { subject => 'Plain', body => 'Only text' },
});

is($text->{status}, 202, 'text-only notification accepted');

my $text_final = wait_for_status($text->{json}{id}, 30, qw(SENT FAILED));

is($text_final->{json}{status}, 'SENT', 'text-only notification is SENT')
    or diag("last reply: $text_final->{body}");

my ($text_message) = mailgun_messages(to => $text_address);

is($text_message && $text_message->{text}, 'Only text',
    'text-only message body');
ok($text_message && !defined $text_message->{html},
    'text-only message has no HTML part');


# --- Provider rejection ------------------------------------------------------

my $rejected = api('POST', '/api/notifications', key => $key, json => {
    channel => 'EMAIL',
    to      => { email => 'fail-400@example.com' },
    content => { subject => 'Rejected', body => 'Mailgun answers 400' },
});

is($rejected->{status}, 202, 'notification for a rejected address accepted');

my $rejected_id = $rejected->{json}{id};
my $failed = wait_for_status($rejected_id, 30, qw(FAILED SENT));
my $f = $failed->{json} // {};

is($f->{status}, 'FAILED', 'provider 400 fails the notification')
    or diag("last reply: $failed->{body}");
like($f->{lastError} // '', qr/not a valid address/,
    'lastError holds the provider reason');
like($f->{failedAt} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
    'failedAt is set');
is($f->{sentAt}, undef, 'sentAt stays null');
is($f->{providerMessageId}, undef, 'no providerMessageId');

my @failed_logs = psql('SELECT status, http_status, error FROM delivery_logs'
    . ' WHERE notification_id = $1 ORDER BY id', $rejected_id);

is(scalar @failed_logs, 1, 'one delivery log row for the rejection');

if (@failed_logs) {
    is($failed_logs[0][0], 'FAILED', 'rejection log status');
    is($failed_logs[0][1], 400, 'rejection log HTTP status');
    like($failed_logs[0][2] // '', qr/not a valid address/,
        'rejection log error holds the provider reason');
}

{
    my $still = wait_for(sub {
        my $r = api('GET', "/api/notifications/$rejected_id", key => $key);
        return ($r->{json}{status} // '') ne 'FAILED';
    }, timeout => 3);

    ok(!$still, 'FAILED is final: no retry of a 400');
}

run_blocks(vars => {
    KEY       => $key,
    SENT_ID   => $id,
    FAILED_ID => $rejected_id,
});

done_testing();

__DATA__

=== TEST 1: sent notification as the API shows it
--- request
GET /api/notifications/$SENT_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$SENT_ID", "status": "SENT", "attempts": 1,
 "providerMessageId": "~.+", "sentAt": "~$TIME_RE",
 "lastError": null, "failedAt": null}


=== TEST 2: failed notification as the API shows it
--- request
GET /api/notifications/$FAILED_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$FAILED_ID", "status": "FAILED",
 "lastError": "~not a valid address", "failedAt": "~$TIME_RE",
 "sentAt": null}
