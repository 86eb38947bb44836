# End-to-end SMS delivery: API -> PostgreSQL and Kafka -> notifyhub-sms ->
# the fake Twilio. Covers the request's form fields and credentials, the
# message SID as providerMessageId, Twilio's error codes in lastError, the
# delivery log and the worker log, sending to a recipient's phone, and a
# recipient's SMS opt-out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use MIME::Base64 qw(encode_base64);
use Test::More;

use NotifyHub::Test;

require_stack();

die "NH_TWILIO_URL is not set: start a stack whose env file has it\n"
    unless defined $ENV{NH_TWILIO_URL};

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'SMS');
my $key = $tenant->{key};

# Numbers are +1, 5 digits of the time, 4 of the process id and a 4-digit
# suffix, so that reruns against the same fake do not share numbers, and
# the suffix selects the fake's failure mode.
my $prefix = sprintf '+1%05d%04d', time % 100000, $$ % 10000;


sub phone {
    my ($suffix) = @_;

    return "$prefix$suffix";
}


# Sends a request to the fake Twilio and returns its decoded JSON reply.
sub twilio {
    my ($method, $path, %opts) = @_;
    my $r = api($method, $path, base_url => $ENV{NH_TWILIO_URL}, %opts);

    die "$method $path on the fake Twilio returned $r->{status}: "
        . "$r->{body}\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH';

    return $r->{json};
}


# Returns the messages the fake Twilio accepted for one number.
sub twilio_messages {
    my ($to) = @_;
    my $escaped = $to =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ger;

    return @{ twilio('GET', "/messages?to=$escaped")->{items} };
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


sub send_sms {
    my (%fields) = @_;
    my $r = api('POST', '/api/notifications', key => $key, json => {
        channel => 'SMS',
        content => { body => 'Your code is 123456' },
        %fields,
    });

    die "SMS notification not accepted: $r->{status} $r->{body}\n"
        unless $r->{status} == 202;

    return $r->{json}{id};
}


sub create_recipient {
    my (%fields) = @_;
    my $r = api('POST', '/api/recipients', key => $key, json => \%fields);

    die "recipient creation failed: $r->{status} $r->{body}\n"
        unless $r->{status} == 201;

    return $r->{json}{id};
}


sub sms_log_rows {
    my ($id) = @_;

    return psql('SELECT status, http_status, provider_message_id, error,'
        . ' provider FROM delivery_logs WHERE notification_id = $1'
        . ' ORDER BY id', $id);
}


# Returns the lines of the SMS worker's log that contain $text.
sub sms_log_lines {
    my ($text) = @_;
    my $file = "$ENV{NH_STACK_DIR}/sms.log";

    open my $fh, '<', $file or die "cannot read $file: $!\n";
    my @lines = grep { index($_, $text) >= 0 } <$fh>;
    close $fh;

    return @lines;
}


sub basic_auth {
    my ($user, $password) = @_;

    return 'Basic ' . encode_base64("$user:$password", '');
}


# Posts a form body straight to the fake Twilio, as a worker would.
sub post_form {
    my ($path, $authorization, $form) = @_;

    return api('POST', $path, base_url => $ENV{NH_TWILIO_URL},
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     Authorization  => $authorization },
        body => $form);
}


# --- Delivery and request shape ----------------------------------------------

my $to = phone('1234');
my $body = "Your code is 123456 \x{20ac}";
my $id = send_sms(to => { phone => $to }, content => { body => $body });
my $n = wait_for_status($id, qw(SENT FAILED));

is($n->{status}, 'SENT', 'SMS reaches SENT');
like($n->{providerMessageId} // '', qr/^SM[0-9a-f]{32}$/,
    'providerMessageId is the Twilio message SID');
is($n->{provider}, 'twilio', 'provider is twilio');
is($n->{lastError}, undef, 'lastError is null');

my @messages = twilio_messages($to);

is(scalar @messages, 1, 'fake Twilio received one message for the number');

my $m = $messages[0] // {};

is($m->{sid}, $n->{providerMessageId}, 'message SID matches');
is($m->{accountSid}, $ENV{NH_TWILIO_ACCOUNT_SID},
    'request authenticated as the configured account');
is($m->{to}, $to, 'To is the phone');
is($m->{from}, $ENV{NH_TWILIO_FROM}, 'From is NH_TWILIO_FROM');
is($m->{messagingServiceSid}, undef, 'no MessagingServiceSid');
is($m->{body}, $body, 'Body is the content body, UTF-8 intact');
is_deeply($m->{fields}, [qw(Body From To)],
    'form has exactly Body, From and To');

my @rows = sms_log_rows($id);

is(scalar @rows, 1, 'one delivery log row');
is($rows[0][0], 'SENT', 'log row status');
is($rows[0][1], 201, 'log row HTTP status');
is($rows[0][2], $n->{providerMessageId}, 'log row message SID');
is($rows[0][4], 'twilio', 'log row provider');

ok(scalar(grep { /notification_id=$id .*provider_message_id=SM/ }
    sms_log_lines('msg="notification sent"')),
    'worker log shows the sent notification');


# --- Permanent rejection: invalid To -----------------------------------------

my $invalid_to = phone('0001');
my $invalid_id = send_sms(to => { phone => $invalid_to });
my $invalid = wait_for_status($invalid_id, qw(FAILED SENT));

is($invalid->{status}, 'FAILED', 'code 21211 fails the notification');
like($invalid->{lastError} // '',
    qr/^HTTP 400 21211: The 'To' number \Q$invalid_to\E is not a valid/,
    'lastError has the status, the Twilio code and the message');

my @invalid_rows = sms_log_rows($invalid_id);

is(scalar @invalid_rows, 1, 'one log row for the invalid number');
is($invalid_rows[0][0], 'FAILED', 'invalid number log row status');
is($invalid_rows[0][1], 400, 'invalid number log HTTP status');
like($invalid_rows[0][3] // '', qr/^HTTP 400 21211: /,
    'invalid number log error has the Twilio code');

ok(scalar(grep { /notification_id=$invalid_id .*transient=false .*21211/ }
    sms_log_lines('msg="notification failed,')),
    'worker log shows the failure with the code, as permanent');
is(scalar twilio_messages($invalid_to), 0,
    'fake Twilio kept no message for the invalid number');


# --- Transient errors --------------------------------------------------------
# These are retried, then end FAILED with a dead letter once the stack's
# NH_MAX_ATTEMPTS attempts are used; the worker log marks them transient.

for my $case (['0429', 429, 20429], ['0500', 500, 20500]) {
    my ($suffix, $status, $code) = @$case;
    my $transient_id = send_sms(to => { phone => phone($suffix) });
    my $t = wait_for_status($transient_id, qw(FAILED SENT));

    is($t->{status}, 'FAILED', "HTTP $status ends FAILED after its retries");
    is($t->{attempts}, 3, "HTTP $status is tried three times");
    like($t->{lastError} // '', qr/^HTTP $status $code: /,
        "HTTP $status lastError has code $code");
    ok(scalar(grep { /notification_id=$transient_id .*transient=true/ }
        sms_log_lines('msg="notification failed,')),
        "worker log marks HTTP $status as transient");
}

my $unsubscribed_id = send_sms(to => { phone => phone('0610') });
my $unsubscribed = wait_for_status($unsubscribed_id, qw(FAILED SENT));

like($unsubscribed->{lastError} // '', qr/^HTTP 400 21610: /,
    'code 21610 (unsubscribed) fails the notification');
ok(scalar(grep { /notification_id=$unsubscribed_id .*transient=false/ }
    sms_log_lines('msg="notification failed,')),
    'worker log marks code 21610 as permanent');


# --- A recipient's phone -----------------------------------------------------

my $recipient_phone = phone('2345');
my $recipient = create_recipient(externalId => "sms-$prefix",
    phone => $recipient_phone);
my $recipient_id = send_sms(recipientId => $recipient,
    content => { body => 'To a recipient' });
my $sent = wait_for_status($recipient_id, qw(SENT FAILED));

is($sent->{status}, 'SENT', 'SMS to a recipientId is SENT');
is_deeply($sent->{to}, { phone => $recipient_phone },
    'notification to is the recipient phone');

my @recipient_messages = twilio_messages($recipient_phone);

is(scalar @recipient_messages, 1, 'fake Twilio received the recipient SMS');
is($recipient_messages[0]{body}, 'To a recipient', 'recipient SMS body');
is($recipient_messages[0]{sid}, $sent->{providerMessageId},
    'recipient SMS SID is the providerMessageId');


# --- Opt-out -----------------------------------------------------------------

my $opted_out_phone = phone('3456');
my $opted_out = create_recipient(externalId => "sms-out-$prefix",
    phone => $opted_out_phone);
my $prefs = api('PUT', "/api/recipients/$opted_out/preferences", key => $key,
    json => { channels => { SMS => \0, EMAIL => \1 } });

is($prefs->{status}, 200, 'SMS opt-out stored');

my @skipped = (
    send_sms(recipientId => $opted_out),
    send_sms(to => { phone => $opted_out_phone }),
);
my @via = ('recipientId', 'the phone');

for my $i (0 .. $#skipped) {
    my $s = wait_for_status($skipped[$i], qw(SKIPPED SENT FAILED));

    is($s->{status}, 'SKIPPED', "opted-out SMS to $via[$i] ends SKIPPED");
    is($s->{lastError}, 'the recipient opted out of SMS',
        "opted-out SMS to $via[$i] has the reason as lastError");

    my @skip_rows = sms_log_rows($skipped[$i]);

    is(scalar @skip_rows, 1, "opted-out SMS to $via[$i] has one log row");
    is($skip_rows[0][0], 'SKIPPED', "opted-out SMS to $via[$i] log status");
}

is(scalar twilio_messages($opted_out_phone), 0,
    'nothing reaches Twilio for an opted-out recipient');


# --- Slow provider -----------------------------------------------------------

twilio('PUT', '/settings', json => { delayMs => 400 });

my $slow_id = send_sms(to => { phone => phone('4567') });
my $slow = wait_for_status($slow_id, qw(SENT FAILED));

twilio('PUT', '/settings', json => { delayMs => 0 });

is($slow->{status}, 'SENT', 'a slow reply is still SENT');

my $duration = psql('SELECT duration_ms FROM delivery_logs'
    . ' WHERE notification_id = $1', $slow_id);

cmp_ok($duration // 0, '>=', 400, 'log row duration includes the delay');


# --- The fake's own checks ---------------------------------------------------
# A worker bug would show up as these replies, so the fake must give them.

my $messages_path = "/2010-04-01/Accounts/$ENV{NH_TWILIO_ACCOUNT_SID}"
    . '/Messages.json';
my $good_auth = basic_auth($ENV{NH_TWILIO_ACCOUNT_SID},
    $ENV{NH_TWILIO_AUTH_TOKEN});
my $form = 'To=%2B14155550100&From=%2B15005550006&Body=hi';

my $r = post_form($messages_path,
    basic_auth($ENV{NH_TWILIO_ACCOUNT_SID}, 'wrong-token'), $form);

is($r->{status}, 401, 'fake rejects a wrong auth token');
is($r->{json}{code}, 20003, 'wrong auth token has code 20003');

$r = post_form('/2010-04-01/Accounts/AC' . ('f' x 32) . '/Messages.json',
    $good_auth, $form);

is($r->{status}, 404, 'fake rejects another account in the path');

$r = post_form($messages_path, $good_auth,
    'To=%2B14155550100&From=%2B15005550006&MessagingServiceSid=MG'
    . ('0' x 32) . '&Body=hi');

is($r->{status}, 400, 'fake rejects From with MessagingServiceSid');

$r = post_form($messages_path, $good_auth,
    'To=%2B14155550100&From=%2B15005550006&Body=' . ('a' x 1601));

is($r->{status}, 400, 'fake rejects a Body over 1600 characters');
is($r->{json}{code}, 21617, 'long Body has code 21617');

$r = post_form($messages_path, $good_auth,
    'To=%2B14155550100&From=%2B15005550006&Body=');

is($r->{json}{code}, 21602, 'fake rejects an empty Body with code 21602');

done_testing();
