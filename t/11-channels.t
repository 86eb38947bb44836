# SMS and push notifications, scheduled sends, and the canonical request
# fingerprint behind idempotency keys.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Channels');
my $run = int(time) . "-$$";

sub rfc3339 {
    my ($epoch) = @_;
    return strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime $epoch);
}

run_blocks(vars => {
    KEY     => $tenant->{key},
    RUN     => $run,
    PAST    => rfc3339(time - 3600),
    FUTURE  => rfc3339(time + 3600),
    FAR     => rfc3339(time + 2 * 366 * 86400),
});


# --- Flows ------------------------------------------------------------------

# A scheduled email is not sent before its time, and is sent after it.
{
    my $to = unique_email('scheduled');
    my $at = time + 4;

    my $created = api('POST', '/api/notifications', key => $tenant->{key},
        json => { channel => 'EMAIL', to => { email => $to },
                  content => { subject => 'Later', body => 'Later' },
                  scheduledAt => rfc3339($at) });

    is($created->{status}, 202, 'scheduled email accepted')
        or diag($created->{body});
    is($created->{json}{status}, 'SCHEDULED', 'scheduled email is SCHEDULED');
    is($created->{json}{scheduledAt}, rfc3339($at),
        'scheduledAt is returned in UTC with milliseconds');

    sleep 1;
    my @early = mailgun_messages(to => $to);
    is(scalar(@early), 0, 'scheduled email is not sent before its time');

    my $sent = wait_for(sub {
        my $r = api('GET', "/api/notifications/$created->{json}{id}",
            key => $tenant->{key});
        return $r->{json}{status} eq 'SENT' ? $r : undef;
    }, timeout => 30);

    ok($sent, 'scheduled email is sent after its time');
    my @sent = mailgun_messages(to => $to);
    is(scalar(@sent), 1, 'scheduled email reaches the provider once');
    is(psql('SELECT sent_at >= scheduled_at FROM notifications WHERE id = $1',
            $created->{json}{id}), 't', 'scheduled email is never sent early');
}

# The fingerprint ignores spacing and member order, not content.
{
    my $key = "canonical-$run";
    my $first = http_request(method => 'POST', path => '/api/notifications',
        headers => [['Content-Type', 'application/json'],
                    ['X-API-Key', $tenant->{key}], ['Idempotency-Key', $key]],
        body => '{"channel":"EMAIL","to":{"email":"c@example.com"},'
              . '"content":{"subject":"s","body":"b"},"data":{"n":1.0}}');
    is($first->{status}, 202, 'first request with a key accepted');

    my $again = http_request(method => 'POST', path => '/api/notifications',
        headers => [['Content-Type', 'application/json'],
                    ['X-API-Key', $tenant->{key}], ['Idempotency-Key', $key]],
        body => "{ \"data\": {\"n\": 1},\n \"content\": {\"body\": \"b\","
              . " \"subject\": \"s\"}, \"to\": {\"email\": \"c\@example.com\"},"
              . " \"channel\": \"EMAIL\" }");
    is($again->{status}, 202, 'reordered body with the same key replays');
    is($again->{headers}{'idempotent-replayed'}, 'true',
        'reordered body is marked Idempotent-Replayed');
    is($again->{json}{id}, $first->{json}{id},
        'reordered body returns the first notification');

    my $other = http_request(method => 'POST', path => '/api/notifications',
        headers => [['Content-Type', 'application/json'],
                    ['X-API-Key', $tenant->{key}], ['Idempotency-Key', $key]],
        body => '{"channel":"EMAIL","to":{"email":"c@example.com"},'
              . '"content":{"subject":"s","body":"other"},"data":{"n":1}}');
    is($other->{status}, 422, 'changed body with the same key is 422');
    is($other->{json}{error}{code}, 'idempotency_key_reused',
        'changed body has code idempotency_key_reused');
}

# Idempotency keys past their 24 hours are deleted by the workers' sweep,
# and the key can then be used for a new notification.
{
    my $key = "expired-$run";
    my %request = (channel => 'EMAIL', to => { email => 'e@example.com' },
                   content => { subject => 's', body => 'first' });

    my $first = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%request, headers => { 'Idempotency-Key' => $key });
    is($first->{status}, 202, 'request with a key accepted');

    psql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
        . ' WHERE tenant_id = $1 AND key = $2', $tenant->{tenant_id}, $key);

    ok(wait_for(sub {
            psql('SELECT count(*) FROM idempotency_keys'
                . ' WHERE tenant_id = $1 AND key = $2',
                $tenant->{tenant_id}, $key) == 0;
        }, timeout => 20),
        'expired idempotency key is deleted by the sweep');

    $request{content}{body} = 'second';
    my $again = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%request, headers => { 'Idempotency-Key' => $key });
    is($again->{status}, 202, 'expired key accepts a different body');
    isnt($again->{json}{id}, $first->{json}{id},
        'expired key creates a new notification');
}

done_testing();

__DATA__

=== TEST 1: SMS to a number that is not E.164
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "SMS", "to": {"phone": "4155550100"}, "content": {"body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to.phone", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 2: SMS without a phone
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "sms", "to": {"email": "a@example.com"}, "content": {"body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to.phone", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 3: SMS with a subject and html
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "SMS", "to": {"phone": "+14155550100"},
 "content": {"subject": "s", "body": "b", "html": "<p>b</p>"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.subject", "issue": "not_allowed"},
                       {"field": "content.html", "issue": "not_allowed"}]}}
--- db_unchanged: notifications


=== TEST 4: SMS of ten GSM-7 parts is accepted
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body eval
'{"channel": "SMS", "to": {"phone": "+14155550100"}, "content": {"body": "'
    . ('a' x 1530) . '"}}'
--- error_code: 202
--- response_json
{"channel": "SMS", "status": "PENDING"}


=== TEST 5: SMS over ten GSM-7 parts
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body eval
'{"channel": "SMS", "to": {"phone": "+14155550100"}, "content": {"body": "'
    . ('a' x 1531) . '"}}'
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.body", "issue": "too_long"}]}}
--- db_unchanged: notifications


=== TEST 6: SMS over ten UCS-2 parts
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body eval
'{"channel": "SMS", "to": {"phone": "+14155550100"}, "content": {"body": "'
    . ("\xd0\x96" x 671) . '"}}'
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.body", "issue": "too_long"}]}}
--- db_unchanged: notifications


=== TEST 7: push to a malformed device token
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "PUSH", "to": {"deviceToken": "bad token!"},
 "content": {"body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to.deviceToken", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 8: push over the FCM payload limit
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body eval
'{"channel": "PUSH", "to": {"deviceToken": "abc:DEF_123-x"},'
    . ' "content": {"subject": "t", "body": "' . ('b' x 3000) . '"},'
    . ' "data": {"extra": "' . ('d' x 1200) . '"}}'
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content", "issue": "too_large"}]}}
--- db_unchanged: notifications


=== TEST 9: push with html
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "PUSH", "to": {"deviceToken": "abc:DEF_123-x"},
 "content": {"body": "b", "html": "<b>b</b>"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.html", "issue": "not_allowed"}]}}
--- db_unchanged: notifications


=== TEST 10: scheduledAt that is not a time
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}, "scheduledAt": "tomorrow"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "scheduledAt", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 11: scheduledAt on a day that does not exist
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"},
 "scheduledAt": "2027-02-30T08:00:00Z"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "scheduledAt", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 12: scheduledAt more than a year ahead
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}, "scheduledAt": "$FAR"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "scheduledAt", "issue": "too_far"}]}}
--- db_unchanged: notifications


=== TEST 13: scheduledAt of the wrong type
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}, "scheduledAt": 1796411705}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "scheduledAt", "issue": "invalid_type"}]}}
--- db_unchanged: notifications


=== TEST 14: scheduledAt in the past sends at once
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "past-$RUN@example.com"},
 "content": {"subject": "s", "body": "b"}, "scheduledAt": "$PAST"}
--- error_code: 202
--- response_json
{"status": "PENDING", "scheduledAt": "$PAST"}


=== TEST 15: scheduledAt in the future is SCHEDULED
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "SMS", "to": {"phone": "+14155550100"}, "content": {"body": "b"},
 "scheduledAt": "$FUTURE"}
--- error_code: 202
--- response_json
{"status": "SCHEDULED", "scheduledAt": "$FUTURE", "channel": "SMS"}
