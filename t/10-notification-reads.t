# GET /api/notifications (filters and keyset pages), GET
# /api/notifications/{id}/logs and POST /api/notifications/{id}/cancel:
# what each returns, every rejected input (with nothing changed), tenant
# isolation, and that a cancelled notification is never sent, also when
# the cancellation races the worker.
#
# This file stops and starts the email worker of the stack, so it must
# not run in parallel with other test files.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use NotifyHub::Test;

require_stack();

# The list blocks expect the PUSH and the SMS notifications to stay
# PENDING, so the push and SMS workers are stopped while this file runs.
stack('stop', 'push', 'sms')
    or BAIL_OUT('cannot stop the push and SMS workers');

END {
    local $?;

    stack('start', 'push', 'sms');
}

my $run = int(time) . "-$$";
my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Reads A');
my $other = create_tenant_full($owner->{token}, name => 'Reads B');
my $key = $tenant->{key};

my $email_stopped = 0;

# Starts the email worker again if this file stops early, so that later
# test files find a whole stack.
END {
    local $?;

    stack('start', 'email') if $email_stopped;
}


sub scoped_key {
    my ($scope) = @_;
    my $r = api('POST', "/api/tenants/$tenant->{tenant_id}/api-keys",
        token => $owner->{token},
        json  => { name => $scope, scopes => [$scope] });

    die "key creation failed: $r->{status} $r->{body}\n"
        unless $r->{status} == 201;

    return $r->{json}{key};
}


# Waits a little first, so that no two notifications share a createdAt
# millisecond and the from and to filters can tell them apart.
sub create_notification {
    my ($api_key, %request) = @_;

    sleep 0.01;

    my $r = api('POST', '/api/notifications', key => $api_key,
        json => \%request);

    die "notification not accepted: $r->{status} $r->{body}\n"
        unless $r->{status} == 202;

    return $r->{json};
}


sub email_to {
    my ($address, %more) = @_;

    return (channel => 'EMAIL', to => { email => $address },
            content => { subject => 'Reads', body => 'Reads' }, %more);
}


# The SMS worker is stopped, so an SMS stays PENDING.
sub sms {
    return (channel => 'SMS', to => { phone => '+14155550100' },
            content => { body => 'Reads' });
}


sub status_of {
    my ($id) = @_;

    return psql('SELECT status FROM notifications WHERE id = $1', $id);
}


sub wait_status {
    my ($api_key, $id, $pattern, $timeout) = @_;
    my $last;

    wait_for(sub {
        $last = api('GET', "/api/notifications/$id", key => $api_key);
        return ($last->{json}{status} // '') =~ $pattern;
    }, timeout => $timeout // 30, interval => 0.25);

    return $last->{json}{status} // "HTTP $last->{status}";
}


# Returns a row of a notification as one string, to compare two states.
sub row_state {
    my ($id) = @_;
    my ($row) = psql('SELECT status, updated_at, next_attempt_at'
        . ' FROM notifications WHERE id = $1', $id);

    return join '|', map { $_ // '(null)' } @{ $row // [] };
}


sub rfc3339 {
    my ($epoch) = @_;

    return strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime $epoch);
}


# Tenant A's notifications, oldest first. The list shows them newest first.
my %n;
$n{sent} = create_notification($key, email_to("sent-$run\@example.com"));
$n{failed} = create_notification($key,
    email_to("fail-400\@reads-$run.example.com"));
$n{sms} = create_notification($key, sms());
$n{push} = create_notification($key, channel => 'PUSH',
    to => { deviceToken => 'abc:DEF_123-x' },
    content => { subject => 'Reads', body => 'Reads' });
$n{scheduled} = create_notification($key,
    email_to("scheduled-$run\@example.com",
             scheduledAt => rfc3339(time + 3600)));
$n{retrying} = create_notification($key, sms());
$n{cancelled} = create_notification($key, sms());

# Notifications that the cancel blocks change, and one whose logs are
# long enough for pages.
my %c;
$c{pending} = create_notification($key, sms());
$c{scheduled} = create_notification($key,
    email_to("scheduled-c-$run\@example.com",
             scheduledAt => rfc3339(time + 3600)));
$c{retrying} = create_notification($key, sms());
$c{with_body} = create_notification($key, sms());
my $logged = create_notification($key, sms());
my $theirs = create_notification($other->{key}, sms());

is(wait_status($key, $n{sent}{id}, qr/^SENT$/), 'SENT',
    'the first email is sent');
is(wait_status($key, $n{failed}{id}, qr/^FAILED$/), 'FAILED',
    'the email to fail-400 fails');

# Retries are not built, so the worker never leaves a row RETRYING; the
# fixture sets the status the retry worker will set.
for my $id ($n{retrying}{id}, $c{retrying}{id}) {
    psql("UPDATE notifications SET status = 'RETRYING', attempts = 1,"
        . " next_attempt_at = now() + interval '1 hour' WHERE id = \$1", $id);
}

{
    my $r = api('POST', "/api/notifications/$n{cancelled}{id}/cancel",
        key => $key);
    is($r->{status}, 200, 'a PENDING notification is cancelled')
        or diag($r->{body});
}

# Notifications cannot name a recipient yet; the fixture sets one on two
# rows for the recipientId filter.
my $recipient = '01a242f0-0000-7000-8000-00000000aaaa';
psql('UPDATE notifications SET recipient_id = $1 WHERE id IN ($2, $3)',
    $recipient, $n{sent}{id}, $n{sms}{id});

# The worker makes one attempt per notification so far; the fixture gives
# one notification three attempts, as retries will.
for my $attempt (1 .. 2) {
    psql('INSERT INTO delivery_logs (tenant_id, notification_id, attempt,'
        . ' status, provider, http_status, error, duration_ms)'
        . " VALUES (\$1, \$2, \$3, 'FAILED', 'twilio', 500, 'provider error',"
        . ' $4)', $tenant->{tenant_id}, $logged->{id}, $attempt,
        100 + $attempt);
}
psql('INSERT INTO delivery_logs (tenant_id, notification_id, attempt,'
    . ' status, provider, http_status, provider_message_id, duration_ms)'
    . " VALUES (\$1, \$2, 3, 'SENT', 'twilio', 201, \$3, 103)",
    $tenant->{tenant_id}, $logged->{id}, "SM$run");

# A cursor of another list (the owner's tenants) and altered list cursors.
my $tenant_cursor = api('GET', '/api/tenants?limit=1',
    token => $owner->{token})->{json}{nextCursor};
my $list_cursor = api('GET', '/api/notifications?limit=1',
    key => $key)->{json}{nextCursor};
my $flipped = $list_cursor;
substr($flipped, 12, 1) = substr($flipped, 12, 1) eq 'A' ? 'B' : 'A';
my $tag_flipped = $list_cursor;
substr($tag_flipped, -3, 1) = substr($tag_flipped, -3, 1) eq 'A' ? 'B' : 'A';

# The states that the rejected requests must leave as they are.
my @watched = ($n{sent}{id}, $n{failed}{id}, $theirs->{id});
my %before = map { $_ => row_state($_) } @watched;

my %vars = (
    RUN            => $run,
    KEY            => $key,
    OTHER_KEY      => $other->{key},
    READ_KEY       => scoped_key('notifications:read'),
    WRITE_KEY      => scoped_key('notifications:write'),
    SENT_ID        => $n{sent}{id},
    FAILED_ID      => $n{failed}{id},
    SMS_ID         => $n{sms}{id},
    PUSH_ID        => $n{push}{id},
    SCHEDULED_ID   => $n{scheduled}{id},
    RETRYING_ID    => $n{retrying}{id},
    CANCELLED_ID   => $n{cancelled}{id},
    PENDING_C      => $c{pending}{id},
    SCHEDULED_C    => $c{scheduled}{id},
    RETRYING_C     => $c{retrying}{id},
    WITH_BODY_C    => $c{with_body}{id},
    LOGGED_ID      => $logged->{id},
    THEIR_ID       => $theirs->{id},
    RECIPIENT      => $recipient,
    RECIPIENT_UC   => uc $recipient,
    SMS_AT         => $n{sms}{createdAt},
    SCHEDULED_AT   => $n{scheduled}{createdAt},
    TENANT_CURSOR  => $tenant_cursor,
    FLIPPED        => $flipped,
    TAG_FLIPPED    => $tag_flipped,
    SHORT_CURSOR   => substr($list_cursor, 0, -1),
    UNKNOWN_ID     => '01a242f0-0000-7000-8000-000000000404',
);

# The cancel blocks need the rows of %c, which the list blocks do not
# show, so the list of tenant A is checked with a filter on time.
$vars{LIST_TO} = $c{pending}{createdAt};

run_blocks(vars => \%vars);

my %captured = %NotifyHub::Test::VARS;


# --- Fields -----------------------------------------------------------------

my @documented_fields = qw(
    id channel status priority recipientId to templateId templateVersion
    subject body html data metadata idempotencyKey scheduledAt attempts
    nextAttemptAt lastError provider providerMessageId createdAt updatedAt
    sentAt deliveredAt failedAt
);

{
    my $r = api('GET', "/api/notifications?to=$vars{LIST_TO}", key => $key);
    my $got = api('GET', "/api/notifications/$n{sent}{id}", key => $key);
    my ($listed) = grep { $_->{id} eq $n{sent}{id} } @{ $r->{json}{data} };

    is_deeply([sort keys %{ $listed // {} }], [sort @documented_fields],
        'a listed notification has exactly the documented fields');
    is_deeply($listed, $got->{json},
        'a listed notification equals GET /api/notifications/{id}');

    my $logs = api('GET', "/api/notifications/$n{sent}{id}/logs",
        key => $key);
    is_deeply([sort keys %{ $logs->{json}{data}[0] // {} }],
        [sort qw(attempt status provider httpStatus providerMessageId error
                 durationMs nextAttemptAt createdAt)],
        'a delivery log has exactly the documented fields');
}


# --- Rejected requests change nothing ----------------------------------------

for my $id (@watched) {
    is(row_state($id), $before{$id},
        "notification $id is unchanged by the rejected requests");
}

is(status_of($c{pending}{id}), 'CANCELLED',
    'the PENDING notification of the cancel blocks is CANCELLED');
ok($captured{CANCEL_UPDATED} gt $c{pending}{updatedAt},
    'cancelling sets updatedAt');
is($captured{CANCEL_CREATED}, $c{pending}{createdAt},
    'cancelling keeps createdAt');
is(psql('SELECT nh_ts(updated_at) FROM notifications WHERE id = $1',
        $c{pending}{id}), $captured{CANCEL_UPDATED},
    'cancelling a CANCELLED notification again changes nothing');


# --- Pages ------------------------------------------------------------------

# 25 notifications: the default page is 20, pages follow the cursor to the
# end, and every page is newest first without repeats.
{
    my $t = create_tenant_full($owner->{token}, name => 'Reads pages');
    my @created = map { create_notification($t->{key}, sms())->{id} } 1 .. 25;
    my @newest_first = reverse @created;

    my $first = api('GET', '/api/notifications', key => $t->{key});
    is(scalar @{ $first->{json}{data} }, 20, 'the default page has 20');

    my $rest = api('GET',
        "/api/notifications?cursor=$first->{json}{nextCursor}",
        key => $t->{key});
    is(scalar @{ $rest->{json}{data} }, 5, 'the second page has 5');
    is($rest->{json}{nextCursor}, undef, 'the last page has no cursor');

    my (@seen, @sizes, $cursor);

    do {
        my $r = api('GET', '/api/notifications?limit=7'
            . (defined $cursor ? "&cursor=$cursor" : ''), key => $t->{key});

        is($r->{status}, 200, 'page ' . (@sizes + 1) . ' is 200')
            or diag($r->{body});
        push @sizes, scalar @{ $r->{json}{data} // [] };
        push @seen, map { $_->{id} } @{ $r->{json}{data} // [] };
        $cursor = $r->{json}{nextCursor};
    } while (defined $cursor && @sizes < 10);

    is_deeply(\@sizes, [7, 7, 7, 4], 'pages of 7 are 7, 7, 7, 4');
    is_deeply(\@seen, \@newest_first,
        'the pages hold every notification once, newest first');

    my $all = api('GET', '/api/notifications?limit=100', key => $t->{key});
    is(scalar @{ $all->{json}{data} }, 25, 'limit=100 returns all 25');
    is($all->{json}{nextCursor}, undef, 'a page with every row has no cursor');

    # Two status branches are merged by time, page by page.
    for my $id (@created[0, 3, 6, 9, 12]) {
        my $r = api('POST', "/api/notifications/$id/cancel",
            key => $t->{key});
        is($r->{status}, 200, 'cancelled for the merged pages');
    }

    my (@merged, @merged_sizes);
    undef $cursor;

    do {
        my $r = api('GET', '/api/notifications?status=cancelled,pending'
            . '&limit=6' . (defined $cursor ? "&cursor=$cursor" : ''),
            key => $t->{key});
        push @merged_sizes, scalar @{ $r->{json}{data} // [] };
        push @merged, map { $_->{id} } @{ $r->{json}{data} // [] };
        $cursor = $r->{json}{nextCursor};
    } while (defined $cursor && @merged_sizes < 10);

    is_deeply(\@merged_sizes, [6, 6, 6, 6, 1],
        'pages of two statuses are 6, 6, 6, 6, 1');
    is_deeply(\@merged, \@newest_first,
        'pages of two statuses hold every notification once, newest first');

    my $cancelled = api('GET', '/api/notifications?status=CANCELLED&limit=3',
        key => $t->{key});
    my $more = api('GET', '/api/notifications?status=CANCELLED&limit=3'
        . "&cursor=$cancelled->{json}{nextCursor}", key => $t->{key});
    is_deeply([map { $_->{id} } @{ $cancelled->{json}{data} },
                                @{ $more->{json}{data} }],
        [@created[12, 9, 6, 3, 0]],
        'pages of one status hold its notifications, newest first');
    is($more->{json}{nextCursor}, undef, 'the last CANCELLED page ends');
}


# --- A cancelled notification is never sent ----------------------------------

{
    my $to = unique_email('cancelled');
    my $control_to = unique_email('control');

    ok(stack('stop', 'email'), 'email worker stopped')
        or BAIL_OUT('cannot stop the email worker');
    $email_stopped = 1;

    my $doomed = create_notification($key, email_to($to));
    my $control = create_notification($key, email_to($control_to));

    my $r = api('POST', "/api/notifications/$doomed->{id}/cancel",
        key => $key);
    is($r->{status}, 200, 'a queued email is cancelled') or diag($r->{body});
    is($r->{json}{status}, 'CANCELLED', 'the reply shows CANCELLED');

    ok(stack('start', 'email'), 'email worker started');
    $email_stopped = 0;

    is(wait_status($key, $control->{id}, qr/^SENT$/), 'SENT',
        'the email queued beside it is sent');

    # The worker reads both messages from Kafka; give it time for the
    # cancelled one as well.
    sleep 3;

    is(scalar(mailgun_messages(to => $to)), 0,
        'the fake Mailgun never received the cancelled email');
    is(scalar(mailgun_messages(to => $control_to)), 1,
        'the fake Mailgun received the other email once');
    is(status_of($doomed->{id}), 'CANCELLED', 'the email stays CANCELLED');
    is(psql('SELECT count(*) FROM delivery_logs WHERE notification_id = $1',
            $doomed->{id}), 0, 'the cancelled email has no delivery attempt');
}

# Cancellations racing the running worker: each email is either cancelled
# and never sent, or leased first and then not cancellable.
{
    my (@raced, %cancel);

    for my $i (1 .. 20) {
        my $to = unique_email("race$i");
        my $created = create_notification($key, email_to($to));

        # Some cancellations arrive before the worker leases the email,
        # some after.
        sleep rand 0.05;

        my $r = api('POST', "/api/notifications/$created->{id}/cancel",
            key => $key);

        push @raced, { id => $created->{id}, to => $to };
        $cancel{$created->{id}} = $r;
    }

    my $settled = wait_for(sub {
        !grep { status_of($_->{id}) =~ /^(PENDING|PROCESSING)$/ } @raced;
    }, timeout => 30);
    ok($settled, 'every raced email settled');
    sleep 1;

    my ($won, $lost) = (0, 0);

    for my $n (@raced) {
        my $r = $cancel{$n->{id}};
        my $status = status_of($n->{id});
        my $sent = scalar mailgun_messages(to => $n->{to});

        if ($r->{status} == 200) {
            $won++;
            ok($status eq 'CANCELLED' && $sent == 0,
                "cancelled email $n->{id} was not sent")
                or diag("status $status, $sent messages");
        } else {
            $lost++;
            is($r->{status}, 409, "late cancel of $n->{id} is 409");
            like($r->{json}{error}{details}[0]{issue} // '',
                qr/^(PROCESSING|SENT)$/,
                'the late cancel names the status the worker set');
            ok($status eq 'SENT' && $sent == 1,
                "email $n->{id} that won the race was sent once")
                or diag("status $status, $sent messages");
        }
    }

    note("cancel won $won times and the worker $lost times");
}

done_testing();

__DATA__

=== TEST 1: the tenant's notifications, newest first
--- request
GET /api/notifications?to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_headers
Content-Type: ~^application/json
--- response_json
{"data": [{"id": "$CANCELLED_ID", "channel": "SMS", "status": "CANCELLED"},
          {"id": "$RETRYING_ID", "channel": "SMS", "status": "RETRYING"},
          {"id": "$SCHEDULED_ID", "channel": "EMAIL", "status": "SCHEDULED"},
          {"id": "$PUSH_ID", "channel": "PUSH", "status": "PENDING"},
          {"id": "$SMS_ID", "channel": "SMS", "status": "PENDING"},
          {"id": "$FAILED_ID", "channel": "EMAIL", "status": "FAILED"},
          {"id": "$SENT_ID", "channel": "EMAIL", "status": "SENT",
           "to": {"email": "sent-$RUN@example.com"}}],
 "nextCursor": null}


=== TEST 2: the list without filters includes every notification
--- request
GET /api/notifications?limit=100
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$LOGGED_ID"}, {"id": "$WITH_BODY_C"}, {"id": "$RETRYING_C"},
          {"id": "$SCHEDULED_C"}, {"id": "$PENDING_C"},
          {"id": "$CANCELLED_ID"}, "..."],
 "nextCursor": null}


=== TEST 3: a key with notifications:read lists them
--- request
GET /api/notifications?to=$LIST_TO&limit=1
--- more_headers
Authorization: Bearer $READ_KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}], "nextCursor": "~^[A-Za-z0-9_-]+$"}


=== TEST 4: another tenant sees only its own notifications
--- request
GET /api/notifications
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$THEIR_ID"}], "nextCursor": null}


=== TEST 5: status in lower case
--- request
GET /api/notifications?status=sent
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SENT_ID", "status": "SENT"}], "nextCursor": null}


=== TEST 6: a comma-separated list of statuses
--- request
GET /api/notifications?status=pending,Cancelled&to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}, {"id": "$PUSH_ID"}, {"id": "$SMS_ID"}],
 "nextCursor": null}


=== TEST 7: a status named twice counts once
--- request
GET /api/notifications?status=FAILED,failed
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$FAILED_ID"}], "nextCursor": null}


=== TEST 8: channel in lower case
--- request
GET /api/notifications?channel=sms&to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}, {"id": "$RETRYING_ID"}, {"id": "$SMS_ID"}],
 "nextCursor": null}


=== TEST 9: channel and status
--- request
GET /api/notifications?channel=SMS&status=PENDING&to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SMS_ID"}], "nextCursor": null}


=== TEST 10: channel and a list of statuses
--- request
GET /api/notifications?channel=sms&status=retrying,cancelled,sent&to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}, {"id": "$RETRYING_ID"}], "nextCursor": null}


=== TEST 11: recipientId
--- request
GET /api/notifications?recipientId=$RECIPIENT
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SMS_ID", "recipientId": "$RECIPIENT"},
          {"id": "$SENT_ID", "recipientId": "$RECIPIENT"}],
 "nextCursor": null}


=== TEST 12: recipientId in upper case
--- request
GET /api/notifications?recipientId=$RECIPIENT_UC
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SMS_ID"}, {"id": "$SENT_ID"}], "nextCursor": null}


=== TEST 13: recipientId with status and channel
--- request
GET /api/notifications?recipientId=$RECIPIENT&status=sent,failed&channel=EMAIL
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SENT_ID"}], "nextCursor": null}


=== TEST 14: another tenant's recipientId finds nothing
--- request
GET /api/notifications?recipientId=$RECIPIENT
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 200
--- response_json
{"data": [], "nextCursor": null}


=== TEST 15: from is inclusive and to exclusive
--- request
GET /api/notifications?from=$SMS_AT&to=$SCHEDULED_AT
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$PUSH_ID"}, {"id": "$SMS_ID"}], "nextCursor": null}


=== TEST 16: from alone
--- request
GET /api/notifications?from=$SCHEDULED_AT&channel=SMS&to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}, {"id": "$RETRYING_ID"}], "nextCursor": null}


=== TEST 17: equal from and to select nothing
--- request
GET /api/notifications?from=$SMS_AT&to=$SMS_AT
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [], "nextCursor": null}


=== TEST 18: times with an offset, "+" as it is and percent-encoded
--- request
GET /api/notifications?from=2000-01-01T02:00:00+02:00&to=2000-01-02T00:00:00%2B00:00
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [], "nextCursor": null}


=== TEST 19: the first and last times RFC 3339 allows
--- request
GET /api/notifications?from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z&status=SENT
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SENT_ID"}], "nextCursor": null}


=== TEST 20: filters that match nothing
--- request
GET /api/notifications?channel=push&status=SENT
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [], "nextCursor": null}


=== TEST 21: unknown query parameters are ignored
--- request
GET /api/notifications?sort=asc&foo=bar&status=failed&offset=3
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$FAILED_ID"}], "nextCursor": null}


=== TEST 22: first page of three
--- request
GET /api/notifications?limit=3&to=$LIST_TO
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}, {"id": "$RETRYING_ID"},
          {"id": "$SCHEDULED_ID"}],
 "nextCursor": "~^[A-Za-z0-9_-]+$"}
--- capture
CURSOR = /nextCursor


=== TEST 23: second page of three
--- request
GET /api/notifications?limit=3&to=$LIST_TO&cursor=$CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$PUSH_ID"}, {"id": "$SMS_ID"}, {"id": "$FAILED_ID"}],
 "nextCursor": "~^[A-Za-z0-9_-]+$"}
--- capture
CURSOR2 = /nextCursor


=== TEST 24: last page
--- request
GET /api/notifications?limit=3&to=$LIST_TO&cursor=$CURSOR2
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$SENT_ID"}], "nextCursor": null}


=== TEST 25: first page of a list of statuses
--- request
GET /api/notifications?status=pending,retrying,cancelled&to=$LIST_TO&limit=2
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$CANCELLED_ID"}, {"id": "$RETRYING_ID"}],
 "nextCursor": "~^[A-Za-z0-9_-]+$"}
--- capture
STATUS_CURSOR = /nextCursor


=== TEST 26: the page after it
--- request
GET /api/notifications?status=pending,retrying,cancelled&to=$LIST_TO&limit=2&cursor=$STATUS_CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$PUSH_ID"}, {"id": "$SMS_ID"}], "nextCursor": null}


=== TEST 27: another tenant's cursor is only a position
--- request
GET /api/notifications?cursor=$CURSOR
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 200
--- response_json
{"data": [], "nextCursor": null}


=== TEST 28: limit 0
--- request
GET /api/notifications?limit=0
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request", "message": "~.+",
           "details": [{"field": "limit", "issue": "invalid_value"}]},
 "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 29: limit 101
--- request
GET /api/notifications?limit=101
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "limit", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 30: limit that is not a number
--- request
GET /api/notifications?limit=ten
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "limit", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 31: cursor that is not a cursor
--- request
GET /api/notifications?cursor=not-a-cursor
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 32: empty cursor
--- request
GET /api/notifications?cursor=
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 33: cursor of the tenant list
--- request
GET /api/notifications?cursor=$TENANT_CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 34: cursor with a changed position
--- request
GET /api/notifications?cursor=$FLIPPED
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 35: cursor with a changed tag
--- request
GET /api/notifications?cursor=$TAG_FLIPPED
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 36: truncated cursor
--- request
GET /api/notifications?cursor=$SHORT_CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 37: unknown status
--- request
GET /api/notifications?status=ARCHIVED
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request", "message": "~status",
           "details": [{"field": "status", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 38: empty status
--- request
GET /api/notifications?status=
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "status", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 39: status list with an empty element
--- request
GET /api/notifications?status=SENT,,FAILED
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "status", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 40: status list with a trailing comma
--- request
GET /api/notifications?status=SENT,
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "status", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 41: status list with spaces
--- request
GET /api/notifications?status=SENT,%20FAILED
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "status", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 42: unknown channel
--- request
GET /api/notifications?channel=FAX
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channel", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 43: empty channel
--- request
GET /api/notifications?channel=
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channel", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 44: a list of channels is not supported
--- request
GET /api/notifications?channel=SMS,EMAIL
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channel", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 45: recipientId that is not a UUID
--- request
GET /api/notifications?recipientId=ada
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "recipientId", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 46: empty recipientId
--- request
GET /api/notifications?recipientId=
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "recipientId", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 47: from that is not a time
--- request
GET /api/notifications?from=yesterday
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "from", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 48: from as a date only
--- request
GET /api/notifications?from=2026-12-04
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "from", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 49: to on a day that does not exist
--- request
GET /api/notifications?to=2026-02-30T00:00:00Z
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 50: empty to
--- request
GET /api/notifications?to=
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "to", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 51: from after to
--- request
GET /api/notifications?from=2026-12-04T10:00:00.001Z&to=2026-12-04T10:00:00Z
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request", "message": "~from",
           "details": [{"field": "from", "issue": "after_to"}]}}
--- db_unchanged: notifications


=== TEST 52: from after to across offsets
--- request
GET /api/notifications?from=2026-12-04T10:30:00Z&to=2026-12-04T12:00:00%2B02:00
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "from", "issue": "after_to"}]}}
--- db_unchanged: notifications


=== TEST 53: every invalid parameter is listed
--- request
GET /api/notifications?limit=0&cursor=x&status=x&channel=x&recipientId=x&from=x&to=x
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": ["<any order>",
                       {"field": "limit", "issue": "invalid_value"},
                       {"field": "cursor", "issue": "invalid_value"},
                       {"field": "status", "issue": "invalid_value"},
                       {"field": "channel", "issue": "invalid_value"},
                       {"field": "recipientId", "issue": "invalid_format"},
                       {"field": "from", "issue": "invalid_format"},
                       {"field": "to", "issue": "invalid_format"}]}}
--- db_unchanged: notifications


=== TEST 54: listing needs a key
--- request
GET /api/notifications
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!data": null}


=== TEST 55: listing needs notifications:read
--- request
GET /api/notifications
--- more_headers
X-API-Key: $WRITE_KEY
--- error_code: 403
--- response_json
{"error": {"code": "forbidden",
           "details": [{"field": "notifications:read",
                        "issue": "missing_scope"}]},
 "!data": null}


=== TEST 56: credentials are checked before the parameters
--- request
GET /api/notifications?limit=0
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}


=== TEST 57: the list route takes GET, HEAD and POST
--- request
DELETE /api/notifications
--- more_headers
X-API-Key: $KEY
--- error_code: 405
--- response_headers
Allow: GET, HEAD, POST
--- response_json
{"error": {"code": "method_not_allowed"}}
--- db_unchanged: notifications


=== TEST 58: delivery log of a sent email
--- request
GET /api/notifications/$SENT_ID/logs
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"attempt": 1, "status": "SENT", "provider": "mailgun",
           "httpStatus": 200, "providerMessageId": "~.+", "error": null,
           "durationMs": "~^[0-9]+$", "createdAt": "~$TIME_RE"}],
 "nextCursor": null}


=== TEST 59: delivery log of a failed email
--- request
GET /api/notifications/$FAILED_ID/logs
--- more_headers
Authorization: Bearer $READ_KEY
--- error_code: 200
--- response_json
{"data": [{"attempt": 1, "status": "FAILED", "provider": "mailgun",
           "httpStatus": 400, "providerMessageId": null, "error": "~.+",
           "createdAt": "~$TIME_RE"}],
 "nextCursor": null}


=== TEST 60: a notification without attempts has an empty log
--- request
GET /api/notifications/$SMS_ID/logs
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [], "nextCursor": null}


=== TEST 61: attempts oldest first
--- request
GET /api/notifications/$LOGGED_ID/logs
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"attempt": 1, "status": "FAILED", "provider": "twilio",
           "httpStatus": 500, "providerMessageId": null,
           "error": "provider error", "durationMs": 101},
          {"attempt": 2, "status": "FAILED", "durationMs": 102},
          {"attempt": 3, "status": "SENT", "httpStatus": 201,
           "providerMessageId": "SM$RUN", "error": null, "durationMs": 103}],
 "nextCursor": null}


=== TEST 62: first page of attempts
--- request
GET /api/notifications/$LOGGED_ID/logs?limit=2
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"attempt": 1}, {"attempt": 2}], "nextCursor": "~^[A-Za-z0-9_-]+$"}
--- capture
LOGS_CURSOR = /nextCursor


=== TEST 63: next page of attempts
--- request
GET /api/notifications/$LOGGED_ID/logs?limit=2&cursor=$LOGS_CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"attempt": 3}], "nextCursor": null}


=== TEST 64: logs cursor of another notification
--- request
GET /api/notifications/$SENT_ID/logs?cursor=$LOGS_CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: delivery_logs


=== TEST 65: logs cursor in the notification list
--- request
GET /api/notifications?cursor=$LOGS_CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: notifications


=== TEST 66: list cursor in the logs
--- request
GET /api/notifications/$LOGGED_ID/logs?cursor=$CURSOR
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "cursor", "issue": "invalid_value"}]}}
--- db_unchanged: delivery_logs


=== TEST 67: logs limit over 100
--- request
GET /api/notifications/$LOGGED_ID/logs?limit=500
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "limit", "issue": "invalid_value"}]}}
--- db_unchanged: delivery_logs


=== TEST 68: logs of another tenant's notification
--- request
GET /api/notifications/$SENT_ID/logs
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "~.+"}, "!data": null}


=== TEST 69: logs of an unknown notification
--- request
GET /api/notifications/$UNKNOWN_ID/logs
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 70: logs of an id that is not a UUID
--- request
GET /api/notifications/not-a-uuid/logs
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 71: logs need a key
--- request
GET /api/notifications/$SENT_ID/logs
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}


=== TEST 72: logs need notifications:read
--- request
GET /api/notifications/$SENT_ID/logs
--- more_headers
X-API-Key: $WRITE_KEY
--- error_code: 403
--- response_json
{"error": {"code": "forbidden",
           "details": [{"field": "notifications:read",
                        "issue": "missing_scope"}]}}


=== TEST 73: cancel a PENDING notification
--- request
POST /api/notifications/$PENDING_C/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$PENDING_C", "channel": "SMS", "status": "CANCELLED",
 "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE", "sentAt": null}
--- db_unchanged: notifications, delivery_logs
--- capture
CANCEL_UPDATED = /updatedAt
CANCEL_CREATED = /createdAt


=== TEST 74: cancel a SCHEDULED notification
--- request
POST /api/notifications/$SCHEDULED_C/cancel
--- more_headers
Authorization: Bearer $WRITE_KEY
--- error_code: 200
--- response_json
{"id": "$SCHEDULED_C", "status": "CANCELLED", "scheduledAt": "~$TIME_RE"}


=== TEST 75: cancel a RETRYING notification
--- request
POST /api/notifications/$RETRYING_C/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$RETRYING_C", "status": "CANCELLED", "attempts": 1,
 "nextAttemptAt": null}


=== TEST 76: a body sent with the cancel is ignored
--- request
POST /api/notifications/$WITH_BODY_C/cancel
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"reason": "changed my mind"}
--- error_code: 200
--- response_json
{"id": "$WITH_BODY_C", "status": "CANCELLED"}


=== TEST 77: cancelling twice
--- request
POST /api/notifications/$PENDING_C/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 409
--- response_json
{"error": {"code": "conflict", "message": "~CANCELLED",
           "details": [{"field": "status", "issue": "CANCELLED"}]},
 "requestId": "~.+"}
--- db_unchanged: notifications


=== TEST 78: cancelling a SENT notification
--- request
POST /api/notifications/$SENT_ID/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 409
--- response_json
{"error": {"code": "conflict", "message": "~SENT",
           "details": [{"field": "status", "issue": "SENT"}]}}
--- db_unchanged: notifications


=== TEST 79: cancelling a FAILED notification
--- request
POST /api/notifications/$FAILED_ID/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 409
--- response_json
{"error": {"code": "conflict", "message": "~FAILED",
           "details": [{"field": "status", "issue": "FAILED"}]}}
--- db_unchanged: notifications


=== TEST 80: cancelling another tenant's notification
--- request
POST /api/notifications/$THEIR_ID/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "~.+"}, "!id": null}
--- db_unchanged: notifications


=== TEST 81: cancelling an unknown notification
--- request
POST /api/notifications/$UNKNOWN_ID/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}
--- db_unchanged: notifications


=== TEST 82: cancelling an id that is not a UUID
--- request
POST /api/notifications/42/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}
--- db_unchanged: notifications


=== TEST 83: cancelling needs a key
--- request
POST /api/notifications/$THEIR_ID/cancel
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 84: cancelling needs notifications:write
--- request
POST /api/notifications/$THEIR_ID/cancel
--- more_headers
X-API-Key: $READ_KEY
--- error_code: 403
--- response_json
{"error": {"code": "forbidden",
           "details": [{"field": "notifications:write",
                        "issue": "missing_scope"}]}}
--- db_unchanged: notifications


=== TEST 85: cancel takes only POST
--- request
GET /api/notifications/$THEIR_ID/cancel
--- more_headers
X-API-Key: $KEY
--- error_code: 405
--- response_headers
Allow: POST
--- response_json
{"error": {"code": "method_not_allowed"}}
