# POST and GET /api/notifications: accepted requests, idempotent repeats,
# every rejected input (with nothing stored), API key handling, and the
# request-level errors (415, 413, 411, 404, 405) and X-Request-Id rules.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::MD5 ();
use POSIX ();
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Notifications A');
my $other = create_tenant_full($owner->{token}, name => 'Notifications B');
my $run = int(time) . "-$$";

my %vars = (
    RUN       => $run,
    KEY       => $tenant->{key},
    OTHER_KEY => $other->{key},
    TENANT_ID => $tenant->{tenant_id},
    TOKEN     => $owner->{token},
    LONG_ID   => 'a' x 129,
    MAX_ID    => 'b' x 128,
);

run_blocks(vars => \%vars);

my %captured = %NotifyHub::Test::VARS;


# --- Flows ------------------------------------------------------------------

my @documented_fields = qw(
    id channel status priority recipientId to templateId templateVersion
    subject body html data metadata idempotencyKey scheduledAt attempts
    nextAttemptAt lastError provider providerMessageId createdAt updatedAt
    sentAt deliveredAt failedAt
);

my %email = (
    channel => 'EMAIL',
    to      => { email => unique_email('fields') },
    content => { subject => 'Fields', body => 'Every field' },
);

{
    my $created = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%email);

    is($created->{status}, 202, 'notification accepted for the field checks')
        or diag($created->{body});

    my $got = api('GET', "/api/notifications/$created->{json}{id}",
        key => $tenant->{key});

    is($got->{status}, 200, 'notification read back');

    for my $field (@documented_fields) {
        ok(exists $created->{json}{$field}, "POST reply has field $field");
        ok(exists $got->{json}{$field}, "GET reply has field $field");
    }

    for my $field (qw(id channel priority to subject body createdAt)) {
        is_deeply($got->{json}{$field}, $created->{json}{$field},
            "GET returns the accepted $field");
    }

    my ($row) = psql('SELECT tenant_id, channel, subject, body'
        . ' FROM notifications WHERE id = $1', $created->{json}{id});
    is_deeply($row, [$tenant->{tenant_id}, 'EMAIL', 'Fields', 'Every field'],
        'notification row belongs to the tenant and holds the content');
}

{
    my %request = (%email, to => { email => unique_email('replay') });
    my $key = "replay-$run";
    my $first = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%request, headers => { 'Idempotency-Key' => $key });
    my $second = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%request, headers => { 'Idempotency-Key' => $key });

    is($first->{status}, 202, 'first request with an idempotency key');
    is($second->{status}, 202, 'repeated request with the same key');
    is_deeply($second->{json}, $first->{json},
        'repeated request replays the first body');
    is($second->{headers}{'idempotent-replayed'}, 'true',
        'repeated request is marked as replayed');
    is(psql('SELECT count(*) FROM notifications WHERE tenant_id = $1'
            . ' AND idempotency_key = $2', $tenant->{tenant_id}, $key),
        1, 'one notification for the idempotency key');
}

{
    ok(defined $captured{IDEM_ID} && defined $captured{OTHER_IDEM_ID},
        'both tenants got a notification for the shared idempotency key');
    isnt($captured{OTHER_IDEM_ID}, $captured{IDEM_ID},
        'idempotency keys are scoped to the tenant');
}

{
    # Concurrent requests with one key: each child exits with 0 for 202 and
    # 1 for 409 idempotency_key_in_use, else with 2.
    my $key = "concurrent-$run";
    my %request = (%email, to => { email => unique_email('concurrent') });
    my @pids;

    for (1 .. 5) {
        my $pid = fork // die "cannot fork: $!\n";

        if (!$pid) {
            my $r = eval {
                api('POST', '/api/notifications', key => $tenant->{key},
                    json => \%request,
                    headers => { 'Idempotency-Key' => $key });
            };
            my $code = 2;

            if ($r && $r->{status} == 202) {
                $code = 0;
            } elsif ($r && $r->{status} == 409
                && ($r->{json}{error}{code} // '') eq 'idempotency_key_in_use')
            {
                $code = 1;
            }

            POSIX::_exit($code);
        }

        push @pids, $pid;
    }

    my @codes = map { waitpid($_, 0); $? >> 8 } @pids;

    is(scalar(grep { $_ == 2 } @codes), 0,
        'concurrent requests with one key get 202 or 409 in use')
        or diag("child exit codes: @codes");
    ok(scalar(grep { $_ == 0 } @codes) >= 1,
        'at least one concurrent request is accepted');
    is(psql('SELECT count(*) FROM notifications WHERE tenant_id = $1'
            . ' AND idempotency_key = $2', $tenant->{tenant_id}, $key),
        1, 'concurrent requests with one key create one notification');
}

# A body over client_body_buffer_size (16 KiB by default) is spooled by
# nginx to a temporary file; the module must read it from there.
{
    my $text = join('', map { chr(ord('a') + $_ % 26) } 0 .. 300 * 1024 - 1);
    my %big = (
        channel => 'EMAIL',
        to      => { email => unique_email('spooled') },
        content => { subject => 'Spooled', body => $text },
    );

    my $created = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%big);

    is($created->{status}, 202, 'spooled body accepted')
        or diag(substr($created->{body} // '', 0, 500));
    is(length($created->{json}{body} // ''), length($text),
        'spooled body stored whole');

    my $stored = psql('SELECT md5(body) FROM notifications WHERE id = $1',
        $created->{json}{id} // '00000000-0000-0000-0000-000000000000');
    is($stored, Digest::MD5::md5_hex($text), 'spooled body stored unchanged');
}

done_testing();

__DATA__

=== TEST 1: email is accepted with X-API-Key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "first-$RUN@example.com"},
 "content": {"subject": "Hello", "body": "Hi there"}}
--- error_code: 202
--- response_headers
X-Request-Id: ~^[A-Za-z0-9._:-]{1,128}$
Content-Type: ~^application/json
!Idempotent-Replayed
--- response_json
{"id": "~$UUID_RE", "channel": "EMAIL", "status": "PENDING",
 "priority": "NORMAL", "to": {"email": "first-$RUN@example.com"},
 "subject": "Hello", "body": "Hi there", "html": null,
 "recipientId": null, "templateId": null, "templateVersion": null,
 "idempotencyKey": null, "scheduledAt": null, "attempts": 0,
 "lastError": null, "providerMessageId": null,
 "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE",
 "sentAt": null, "deliveredAt": null, "failedAt": null}
--- capture
NOTIFICATION_ID = /id


=== TEST 2: email is accepted with a bearer key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
Authorization: Bearer $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "bearer-$RUN@example.com"},
 "content": {"subject": "Hello", "body": "Text part",
             "html": "<p>HTML part</p>"},
 "metadata": {"orderId": "42"}}
--- error_code: 202
--- response_json
{"id": "~$UUID_RE", "status": "PENDING", "html": "<p>HTML part</p>",
 "body": "Text part", "metadata": {"orderId": "42"}}


=== TEST 3: enum values are accepted in any case
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "email", "priority": "high",
 "to": {"email": "case-$RUN@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 202
--- response_json
{"channel": "EMAIL", "priority": "HIGH"}


=== TEST 4: content type with a charset is accepted
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json; charset=utf-8
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "charset-$RUN@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 202
--- response_json
{"status": "PENDING"}


=== TEST 5: chunked request body is accepted
--- raw_request eval
my $body = '{"channel": "EMAIL", "to": {"email": "chunked-'
    . var('RUN') . '@example.com"}, "content": {"subject": "s", "body": "b"}}';
my $half = int(length($body) / 2);
"POST /api/notifications HTTP/1.1\r\n"
    . "Host: 127.0.0.1\r\nConnection: close\r\n"
    . "Content-Type: application/json\r\nX-API-Key: " . var('KEY') . "\r\n"
    . "Transfer-Encoding: chunked\r\n\r\n"
    . sprintf("%x\r\n%s\r\n", $half, substr($body, 0, $half))
    . sprintf("%x\r\n%s\r\n", length($body) - $half, substr($body, $half))
    . "0\r\n\r\n"
--- error_code: 202
--- response_json
{"to": {"email": "chunked-$RUN@example.com"}}


=== TEST 6: notification is read back by id
--- request
GET /api/notifications/$NOTIFICATION_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$NOTIFICATION_ID", "channel": "EMAIL",
 "status": "~^(PENDING|PROCESSING|SENT)$",
 "to": {"email": "first-$RUN@example.com"},
 "subject": "Hello", "body": "Hi there", "createdAt": "~$TIME_RE"}


=== TEST 7: notification of another tenant is not found
--- request
GET /api/notifications/$NOTIFICATION_ID
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "~.+"}, "requestId": "~.+",
 "!id": null}


=== TEST 8: notification id that is not a UUID
--- request
GET /api/notifications/not-a-uuid
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 9: notification id that does not exist
--- request
GET /api/notifications/01932c07-a2b1-7c3d-8e4f-0123456789ab
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 10: reading a notification needs a key
--- request
GET /api/notifications/$NOTIFICATION_ID
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!id": null}


=== TEST 11: first request with an idempotency key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
Idempotency-Key: order-$RUN-shipped
--- request_body
{"channel": "EMAIL", "to": {"email": "idem-$RUN@example.com"},
 "content": {"subject": "Shipped", "body": "Your order shipped"}}
--- error_code: 202
--- response_headers
!Idempotent-Replayed
--- response_json
{"id": "~$UUID_RE", "idempotencyKey": "order-$RUN-shipped"}
--- capture
IDEM_ID = /id


=== TEST 12: repeated request replays the first response
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
Idempotency-Key: order-$RUN-shipped
--- request_body
{"channel": "EMAIL", "to": {"email": "idem-$RUN@example.com"},
 "content": {"subject": "Shipped", "body": "Your order shipped"}}
--- error_code: 202
--- response_headers
Idempotent-Replayed: true
--- response_json
{"id": "$IDEM_ID", "status": "PENDING",
 "idempotencyKey": "order-$RUN-shipped"}
--- db_unchanged: notifications


=== TEST 13: idempotency key in the body
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "field-$RUN@example.com"},
 "content": {"subject": "Field", "body": "Key in the body"},
 "idempotencyKey": "field-$RUN"}
--- error_code: 202
--- response_headers
!Idempotent-Replayed
--- response_json
{"id": "~$UUID_RE", "idempotencyKey": "field-$RUN"}
--- capture
FIELD_ID = /id


=== TEST 14: idempotency key in the body replays too
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "field-$RUN@example.com"},
 "content": {"subject": "Field", "body": "Key in the body"},
 "idempotencyKey": "field-$RUN"}
--- error_code: 202
--- response_headers
Idempotent-Replayed: true
--- response_json
{"id": "$FIELD_ID", "idempotencyKey": "field-$RUN"}
--- db_unchanged: notifications


=== TEST 15: same idempotency key with another body
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
Idempotency-Key: order-$RUN-shipped
--- request_body
{"channel": "EMAIL", "to": {"email": "idem-$RUN@example.com"},
 "content": {"subject": "Shipped", "body": "A different body"}}
--- error_code: 422
--- response_json
{"error": {"code": "idempotency_key_reused", "message": "~.+"}}
--- db_unchanged: notifications


=== TEST 16: same idempotency key for another tenant
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $OTHER_KEY
Idempotency-Key: order-$RUN-shipped
--- request_body
{"channel": "EMAIL", "to": {"email": "idem-$RUN@example.com"},
 "content": {"subject": "Shipped", "body": "Your order shipped"}}
--- error_code: 202
--- response_headers
!Idempotent-Replayed
--- response_json
{"id": "~$UUID_RE"}
--- capture
OTHER_IDEM_ID = /id


=== TEST 17: idempotency header and field that differ
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
Idempotency-Key: header-$RUN
--- request_body
{"channel": "EMAIL", "to": {"email": "idem-$RUN@example.com"},
 "content": {"subject": "s", "body": "b"}, "idempotencyKey": "field-$RUN"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request"}}
--- db_unchanged: notifications


=== TEST 18: SMS is accepted
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "SMS", "to": {"phone": "+14155550100"},
 "content": {"body": "b"}}
--- error_code: 202
--- response_json
{"channel": "SMS", "status": "PENDING", "to": {"phone": "+14155550100"},
 "subject": null, "body": "b"}


=== TEST 19: push is accepted
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "PUSH", "to": {"deviceToken": "device-token-1"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 202
--- response_json
{"channel": "PUSH", "status": "PENDING",
 "to": {"deviceToken": "device-token-1"}, "subject": "s", "body": "b"}


=== TEST 20: unknown channel
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "FAX", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channel", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 21: missing channel
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"to": {"email": "a@example.com"}, "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channel", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 22: channel of the wrong type
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": 1, "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channel", "issue": "invalid_type"}]}}
--- db_unchanged: notifications


=== TEST 23: unknown template id
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "templateId": "01932c07-a2b1-7c3d-8e4f-0123456789ab", "data": {"a": 1}}
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}
--- db_unchanged: notifications


=== TEST 24: unknown recipient id
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "recipientId": "01932c07-a2b1-7c3d-8e4f-0123456789ab",
 "content": {"subject": "s", "body": "b"}}
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "recipient not found"}}
--- db_unchanged: notifications


=== TEST 24a: recipient id that is not a UUID
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "recipientId": "bob",
 "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "recipientId", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 24b: recipient id together with to
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "recipientId": "01932c07-a2b1-7c3d-8e4f-0123456789ab",
 "to": {"email": "a@example.com"}, "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to", "issue": "conflicts_with_recipientId"}]}}
--- db_unchanged: notifications


=== TEST 25: missing recipient
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 26: recipient without an email
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {}, "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to.email", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 27: recipient email that is invalid
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "not-an-address"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to.email", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 28: recipient of the wrong type
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": "a@example.com",
 "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to", "issue": "invalid_type"}]}}
--- db_unchanged: notifications


=== TEST 29: missing content
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 30: email without a subject
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.subject", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 31: email without a body
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.body", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 32: subject of the wrong type
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": 42, "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "content.subject", "issue": "invalid_type"}]}}
--- db_unchanged: notifications


=== TEST 33: unknown priority
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "priority": "URGENT", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "priority", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 34: several invalid fields are all listed
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "nope"}, "content": {"body": "b"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": ["<any order>",
                       {"field": "to.email", "issue": "invalid_format"},
                       {"field": "content.subject", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 35: malformed JSON
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json", "message": "~.+"}, "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 36: JSON array instead of an object
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
[{"channel": "EMAIL"}]
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: notifications


=== TEST 37: JSON string instead of an object
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
"EMAIL"
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: notifications


=== TEST 38: JSON null instead of an object
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
null
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: notifications


=== TEST 39: empty body
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
Content-Length: 0
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: notifications


=== TEST 40: body without a content type
--- request
POST /api/notifications
--- more_headers
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type", "message": "~.+"},
 "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 41: body with a text content type
--- request
POST /api/notifications
--- more_headers
Content-Type: text/plain
X-API-Key: $KEY
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type"}}
--- db_unchanged: notifications


=== TEST 42: body over 1 MiB
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body eval
'{"channel": "EMAIL", "to": {"email": "big@example.com"},'
    . ' "content": {"subject": "s", "body": "' . ('x' x (1024 * 1024))
    . '"}}'
--- error_code: 413
--- response_json
{"error": {"code": "payload_too_large", "message": "~.+"},
 "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 43: POST without a body length
--- raw_request
POST /api/notifications HTTP/1.1
Host: 127.0.0.1
Connection: close
Content-Type: application/json
X-API-Key: $KEY
--- error_code: 411
--- response_json
{"error": {"code": "length_required", "message": "~.+"},
 "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 44: missing API key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 401
--- response_headers
X-Request-Id: ~^[A-Za-z0-9._:-]+$
--- response_json
{"error": {"code": "unauthorized", "message": "~.+"}, "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 45: unknown API key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: nh_thisKeyWasNeverIssued000000000000000
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 46: unknown bearer API key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
Authorization: Bearer nh_thisKeyWasNeverIssued000000000000000
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 47: owner session token is not an API key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 48: session token in X-API-Key
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
X-API-Key: $TOKEN
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 49: basic authorization is not accepted
--- request
POST /api/notifications
--- more_headers
Content-Type: application/json
Authorization: Basic dXNlcjpwYXNzd29yZA==
--- request_body
{"channel": "EMAIL", "to": {"email": "a@example.com"},
 "content": {"subject": "s", "body": "b"}}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 50: unknown route
--- request
GET /api/nothing-here
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "~.+"}, "requestId": "~.+"}


=== TEST 51: unknown route outside the API
--- request
GET /index.html
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 52: DELETE on the notifications collection
--- request
DELETE /api/notifications
--- more_headers
X-API-Key: $KEY
--- error_code: 405
--- response_headers
Allow: ~\bPOST\b
--- response_json
{"error": {"code": "method_not_allowed", "message": "~.+"},
 "requestId": "~.+"}


=== TEST 53: PUT on one notification
--- request
PUT /api/notifications/$NOTIFICATION_ID
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"status": "SENT"}
--- error_code: 405
--- response_headers
Allow: ~\bGET\b
--- response_json
{"error": {"code": "method_not_allowed"}}
--- db_unchanged: notifications


=== TEST 54: GET on login
--- request
GET /api/auth/login
--- error_code: 405
--- response_headers
Allow: ~\bPOST\b
--- response_json
{"error": {"code": "method_not_allowed"}}


=== TEST 55: caller request id is echoed
--- request
GET /api/notifications/$NOTIFICATION_ID
--- more_headers
X-API-Key: $KEY
X-Request-Id: client-req.1:abc_DEF
--- error_code: 200
--- response_headers
X-Request-Id: client-req.1:abc_DEF


=== TEST 56: caller request id is repeated in an error body
--- request
GET /api/notifications/not-a-uuid
--- more_headers
X-API-Key: $KEY
X-Request-Id: trace-$RUN
--- error_code: 404
--- response_headers
X-Request-Id: trace-$RUN
--- response_json
{"error": {"code": "not_found"}, "requestId": "trace-$RUN"}


=== TEST 57: request id of 128 characters is echoed
--- request
GET /api/nothing-here
--- more_headers
X-Request-Id: $MAX_ID
--- error_code: 404
--- response_headers
X-Request-Id: $MAX_ID


=== TEST 58: request id of 129 characters is replaced
--- request
GET /api/nothing-here
--- more_headers
X-Request-Id: $LONG_ID
--- error_code: 404
--- response_headers
X-Request-Id: ~^(?!a{129}$)[A-Za-z0-9._:-]{1,128}$


=== TEST 59: request id with invalid characters is replaced
--- request
GET /api/nothing-here
--- more_headers
X-Request-Id: bad id/with{chars}
--- error_code: 404
--- response_headers
X-Request-Id: ~^[A-Za-z0-9._:-]{1,128}$
