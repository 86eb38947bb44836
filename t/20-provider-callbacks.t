# Provider callbacks: a signed Mailgun event or Twilio status callback moves
# a SENT notification to DELIVERED or FAILED; an unsigned, badly signed or
# stale callback is a 401 that changes nothing; events that move no status
# are acknowledged with 200.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(hmac_sha1_base64 hmac_sha256_hex);
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Callbacks');
my $key = $tenant->{key};
my $run = int(time) . "-$$";
my $signing_key = $ENV{NH_MAILGUN_SIGNING_KEY} // '';
my $auth_token = $ENV{NH_TWILIO_AUTH_TOKEN} // '';

ok(length $signing_key && length $auth_token,
    'the stack names the callback secrets');

sub state_of {
    my ($id) = @_;
    my ($row) = psql('SELECT status, coalesce(last_error, \'\'),'
        . ' delivered_at IS NOT NULL, failed_at IS NOT NULL,'
        . ' (SELECT count(*) FROM delivery_logs d'
        . '   WHERE d.notification_id = n.id)'
        . ' FROM notifications n WHERE id = $1', $id);

    return join '|', @{ $row // [] };
}

# Sends an email and waits until the worker has sent it; returns its id
# and the provider message id without Mailgun's angle brackets.
sub sent_email {
    my ($label) = @_;
    my $r = api('POST', '/api/notifications', key => $key,
        json => { channel => 'EMAIL', to => { email => unique_email($label) },
                  content => { subject => 'Cb', body => 'Cb' } });
    my $id = $r->{json}{id} // die "send failed: $r->{body}\n";

    wait_for(sub {
        psql('SELECT status FROM notifications WHERE id = $1', $id) eq 'SENT'
    }, timeout => 30) or die "email $id was not sent\n";

    my $message_id = psql('SELECT provider_message_id FROM notifications'
        . ' WHERE id = $1', $id);
    $message_id =~ s/^<(.*)>$/$1/;

    return ($id, $message_id);
}

sub mailgun_event {
    my (%opts) = @_;
    my $timestamp = $opts{timestamp} // time;
    my $token = "token-$run-" . int(rand(1e9));
    my $signature = $opts{signature}
        // hmac_sha256_hex($timestamp . $token, $opts{key} // $signing_key);
    my %data = (event => $opts{event},
                message => { headers => { 'message-id' => $opts{id} } });

    $data{severity} = $opts{severity} if $opts{severity};
    $data{'delivery-status'} = { description => $opts{reason} }
        if $opts{reason};

    return api('POST', '/api/providers/mailgun/events',
        json => { signature => { timestamp => "$timestamp", token => $token,
                                 signature => $signature },
                  'event-data' => \%data });
}

# --- Mailgun ------------------------------------------------------------

{
    my ($id, $message_id) = sent_email('cb-delivered');
    my $before = state_of($id);

    my $bad = mailgun_event(event => 'delivered', id => $message_id,
        key => 'another-key');
    is($bad->{status}, 401, 'a Mailgun event with a wrong signature is 401');
    is($bad->{json}{error}{code}, 'unauthorized',
        'a wrong signature has code unauthorized');

    my $stale = mailgun_event(event => 'delivered', id => $message_id,
        timestamp => time - 3600);
    is($stale->{status}, 401, 'a Mailgun event an hour old is 401');

    my $unsigned = api('POST', '/api/providers/mailgun/events',
        json => { 'event-data' => { event => 'delivered',
            message => { headers => { 'message-id' => $message_id } } } });
    is($unsigned->{status}, 401, 'an unsigned Mailgun event is 401');

    is(state_of($id), $before, 'rejected events change nothing');

    my $temporary = mailgun_event(event => 'failed', severity => 'temporary',
        id => $message_id, reason => 'mailbox busy');
    is_deeply($temporary->{json}, { received => \1, updated => 0 },
        'a temporary failure is acknowledged without a change');
    is(state_of($id), $before, 'a temporary failure leaves it SENT');

    my $ok = mailgun_event(event => 'delivered', id => $message_id);
    is($ok->{status}, 200, 'a signed delivered event is 200');
    is_deeply($ok->{json}, { received => \1, updated => 1 },
        'the delivered event updates one notification');
    is(state_of($id), 'DELIVERED||t|f|2',
        'the notification is DELIVERED with a second log row');

    my $get = api('GET', "/api/notifications/$id", key => $key);
    like($get->{json}{deliveredAt} // '',
        qr/$NotifyHub::Test::BUILTIN_VARS{TIME_RE}/,
        'GET shows deliveredAt');

    my $again = mailgun_event(event => 'failed', severity => 'permanent',
        id => $message_id, reason => 'too late');
    is($again->{json}{updated}, 0, 'a late failure does not move DELIVERED');
    is(state_of($id), 'DELIVERED||t|f|2', 'DELIVERED stays DELIVERED');
}

{
    my ($id, $message_id) = sent_email('cb-failed');
    my $r = mailgun_event(event => 'failed', severity => 'permanent',
        id => $message_id, reason => 'No such mailbox');

    is($r->{json}{updated}, 1, 'a permanent failure updates one notification');
    is(state_of($id),
        'FAILED|mailgun: permanent failure: No such mailbox|f|t|2',
        'a permanent failure makes it FAILED with the reason');

    my $logs = api('GET', "/api/notifications/$id/logs", key => $key);
    is_deeply([map { $_->{status} } @{ $logs->{json}{data} // [] }],
        ['SENT', 'FAILED'], 'the logs show the send and the failure');
}

{
    my $r = mailgun_event(event => 'delivered', id => "unknown-$run\@x");
    is_deeply($r->{json}, { received => \1, updated => 0 },
        'an event for an unknown message is acknowledged');

    my $opened = mailgun_event(event => 'opened', id => "unknown-$run\@x");
    is($opened->{json}{updated}, 0, 'an opened event changes nothing');

    my $invalid = mailgun_event(event => 'delivered', id => '');
    is($invalid->{status}, 400, 'a signed event without a message id is 400');
    is_deeply($invalid->{json}{error}{details},
        [{ field => 'event-data.message.headers.message-id',
           issue => 'invalid_value' }],
        'the event without a message id names the field');
}

# --- Twilio -------------------------------------------------------------

my $twilio_path = '/api/providers/twilio/status';
my $twilio_url = "$ENV{NH_BASE_URL}$twilio_path";

sub form_encode {
    my (@pairs) = @_;
    my @parts;

    while (my ($name, $value) = splice(@pairs, 0, 2)) {
        (my $v = $value) =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
        push @parts, "$name=$v";
    }

    return join '&', @parts;
}

sub twilio_signature {
    my ($token, @pairs) = @_;
    my %params = @pairs;
    my $text = $twilio_url . join '',
        map { $_ . $params{$_} } sort keys %params;
    my $signature = hmac_sha1_base64($text, $token);

    $signature .= '=' while length($signature) % 4;

    return $signature;
}

sub twilio_status {
    my (%opts) = @_;
    my @pairs = @{ $opts{pairs} };
    my $signature = $opts{signature}
        // twilio_signature($opts{token} // $auth_token, @pairs);
    my $body = form_encode(@pairs);

    $body = $opts{body} if defined $opts{body};

    return api('POST', $twilio_path, body => $body, headers => {
        'Content-Type' => $opts{type}
                          // 'application/x-www-form-urlencoded',
        (length $signature ? ('X-Twilio-Signature' => $signature) : ()) });
}

sub sent_sms {
    my ($sid) = @_;

    return psql('INSERT INTO notifications (id, tenant_id, channel, status,'
        . ' to_address, body, attempts, provider, provider_message_id,'
        . ' sent_at) VALUES (gen_random_uuid(), $1, \'SMS\', \'SENT\','
        . ' \'{"phone": "+14155550100"}\', \'Cb\', 1, \'twilio\', $2, now())'
        . ' RETURNING id', $tenant->{tenant_id}, $sid);
}

{
    my $sid = sprintf('SM%032d', $$ . time % 100000);
    my $id = sent_sms($sid);
    my @delivered = (MessageSid => $sid, MessageStatus => 'delivered',
                     AccountSid => 'AC' . ('0' x 32), To => '+14155550100');
    my $before = state_of($id);

    my $wrong = twilio_status(pairs => \@delivered, token => 'wrong');
    is($wrong->{status}, 401, 'a Twilio callback with a wrong token is 401');

    my $missing = twilio_status(pairs => \@delivered, signature => '');
    is($missing->{status}, 401, 'a Twilio callback without a signature is 401');

    my @changed = @delivered;
    my $tampered = twilio_status(pairs => \@delivered,
        body => form_encode(@changed, Extra => 'x'));
    is($tampered->{status}, 401, 'a parameter added after signing is 401');

    my $json = twilio_status(pairs => \@delivered, type => 'application/json');
    is($json->{status}, 415, 'a Twilio callback that is not a form is 415');

    is(state_of($id), $before, 'rejected callbacks change nothing');

    my $sent = twilio_status(pairs => [MessageSid => $sid,
                                       MessageStatus => 'sent']);
    is_deeply($sent->{json}, { received => \1, updated => 0 },
        'a sent status is acknowledged without a change');

    my $ok = twilio_status(pairs => \@delivered);
    is($ok->{status}, 200, 'a signed Twilio callback is 200');
    is($ok->{json}{updated}, 1, 'the delivered status updates one');
    is(state_of($id), 'DELIVERED||t|f|1',
        'the SMS is DELIVERED with a log row');
}

{
    my $sid = sprintf('SM%032d', $$ . (time % 100000) . 1);
    my $id = sent_sms($sid);
    my $r = twilio_status(pairs => [MessageSid => $sid,
                                    MessageStatus => 'undelivered',
                                    ErrorCode => '30005']);

    is($r->{json}{updated}, 1, 'an undelivered status updates one');
    is(state_of($id),
        'FAILED|twilio: message undelivered, error code 30005|f|t|1',
        'an undelivered SMS is FAILED with the error code');

    my $no_sid = twilio_status(pairs => [MessageStatus => 'delivered']);
    is($no_sid->{status}, 400, 'a signed callback without MessageSid is 400');
}

done_testing();
