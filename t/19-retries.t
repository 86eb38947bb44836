# Retries, dead letters, replay and lease expiry, against the email worker
# and the fake Mailgun's failure modes. The test profiles run the workers
# with NH_MAX_ATTEMPTS=3, NH_RETRY_BASE_MS=200, NH_RETRY_MAX_MS=1000 and
# NH_LEASE_SECONDS=12 (scripts/stack), and this test relies on those.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use NotifyHub::Test;

require_stack();

my $MAX_ATTEMPTS = 3;
my $TIME_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Retries');
my $key = $tenant->{key};
my $other = create_tenant_full($owner->{token}, name => 'Retries other');


# Creates an email notification to $address and returns its id.
sub send_email {
    my ($address, $subject) = @_;

    my $r = api('POST', '/api/notifications', key => $key, json => {
        channel => 'EMAIL',
        to      => { email => $address },
        content => { subject => $subject, body => "Body of $subject" },
    });

    is($r->{status}, 202, "$subject: notification accepted")
        or die "cannot create a notification: $r->{body}\n";

    return $r->{json}{id};
}


# Polls the notification until its status is one of @final and returns the
# last JSON object.
sub wait_for_status {
    my ($id, $timeout, @final) = @_;
    my %final = map { $_ => 1 } @final;
    my $last = {};

    wait_for(sub {
        my $r = api('GET', "/api/notifications/$id", key => $key);
        $last = $r->{json} // {};
        return $r->{status} == 200 && $final{$last->{status} // ''};
    }, timeout => $timeout, interval => 0.05);

    return $last;
}


# Returns the delivery-log rows of a notification, oldest first:
# [status, http_status, error, next_attempt_at is set, created_at epoch,
#  next_attempt_at epoch].
sub log_rows {
    my ($id) = @_;

    return psql('SELECT status, http_status, error,'
        . ' next_attempt_at IS NOT NULL,'
        . ' extract(epoch FROM created_at),'
        . ' extract(epoch FROM next_attempt_at)'
        . ' FROM delivery_logs WHERE notification_id = $1 ORDER BY id', $id);
}


sub dead_letter_count {
    my ($id) = @_;

    return psql('SELECT count(*) FROM dead_letters'
        . ' WHERE notification_id = $1', $id);
}


# Returns whether the email worker's log has a line with all the strings.
sub worker_logged {
    my (@parts) = @_;
    my $file = "$ENV{NH_STACK_DIR}/email.log";

    open my $fh, '<', $file or return 0;

    while (my $line = <$fh>) {
        return 1 unless grep { index($line, $_) < 0 } @parts;
    }

    return 0;
}


# --- A 500 is retried, then dead-lettered -----------------------------------

my $fail_id = send_email('fail-500@example.com', 'Server error');

my $retrying = wait_for_status($fail_id, 30, qw(RETRYING FAILED SENT));

is($retrying->{status}, 'RETRYING', '500 makes the notification RETRYING');
like($retrying->{nextAttemptAt} // '', $TIME_RE, 'nextAttemptAt is set');
like($retrying->{lastError} // '', qr/HTTP 500/, 'lastError names the 500');
is($retrying->{failedAt}, undef, 'a RETRYING notification has no failedAt');

my $failed = wait_for_status($fail_id, 60, qw(FAILED SENT));

is($failed->{status}, 'FAILED', '500 fails after the last attempt');
is($failed->{attempts}, $MAX_ATTEMPTS, 'every attempt was made');
is($failed->{nextAttemptAt}, undef, 'a FAILED notification has no '
    . 'nextAttemptAt');
like($failed->{failedAt} // '', $TIME_RE, 'failedAt is set');

{
    my @logs = log_rows($fail_id);

    is(scalar @logs, $MAX_ATTEMPTS, 'one log row per attempt');
    is_deeply([map { $_->[0] } @logs], [('FAILED') x $MAX_ATTEMPTS],
        'every log row is FAILED');
    is_deeply([map { $_->[3] } @logs],
        [('t') x ($MAX_ATTEMPTS - 1), 'f'],
        'retried attempts carry next_attempt_at, the last does not');
}

my @dead = psql('SELECT id, reason, attempts, http_status, channel'
    . ' FROM dead_letters WHERE notification_id = $1', $fail_id);

is(scalar @dead, 1, 'one dead letter');

my $dead_id = @dead ? $dead[0][0] : 'none';

like($dead[0][1] // '', qr/retries exhausted after 3 attempts: HTTP 500/,
    'dead letter reason');
is($dead[0][2], $MAX_ATTEMPTS, 'dead letter attempts');
is($dead[0][3], 500, 'dead letter HTTP status');
is($dead[0][4], 'EMAIL', 'dead letter channel');

ok(wait_for(sub {
    worker_logged('msg="dead letter queued"', 'topic=notifyhub.dlq',
                  "notification_id=$fail_id");
}, timeout => 10), 'dead letter produced to notifyhub.dlq');


# --- A 500 once, then success ------------------------------------------------

my $once_domain = 'once-' . time . "-$$.example.com";
my $once_id = send_email("fail-once-500\@$once_domain", 'Server error once');

my $once_retrying = wait_for_status($once_id, 30, qw(RETRYING SENT FAILED));

is($once_retrying->{status}, 'RETRYING', 'first 500 makes it RETRYING');

my $once_sent = wait_for_status($once_id, 30, qw(SENT FAILED));

is($once_sent->{status}, 'SENT', 'second attempt sends it');
is($once_sent->{attempts}, 2, 'two attempts');
is($once_sent->{lastError}, undef, 'lastError is cleared when sent');
is($once_sent->{nextAttemptAt}, undef, 'nextAttemptAt is cleared when sent');

{
    my @logs = log_rows($once_id);

    is_deeply([map { $_->[0] } @logs], [qw(FAILED SENT)],
        'log rows FAILED then SENT');
    is(dead_letter_count($once_id), 0, 'no dead letter');
}


# --- A 429 honours Retry-After ----------------------------------------------

my $throttled_id = send_email('fail-429@example.com', 'Throttled');
my $throttled = wait_for_status($throttled_id, 60, qw(FAILED SENT));

is($throttled->{status}, 'FAILED', '429 fails after the last attempt');
is($throttled->{attempts}, $MAX_ATTEMPTS, '429 is retried');

my $throttled_dead_id = psql('SELECT id FROM dead_letters'
    . ' WHERE notification_id = $1', $throttled_id) // 'none';

{
    my @logs = log_rows($throttled_id);

    ok(@logs >= 2, 'throttled notification was attempted again');

    if (@logs >= 2) {
        my ($created, $next) = ($logs[0][4], $logs[0][5]);

        ok(defined $next && $next - $created >= 1.0,
            'next attempt is at least Retry-After: 1 later')
            or diag("created $created, next " . ($next // 'NULL'));
        ok($logs[1][4] >= $next,
            'second attempt is not earlier than nextAttemptAt')
            or diag("second attempt at $logs[1][4], next $next");
    }
}


# --- A 400 is dead-lettered at once ------------------------------------------

my $rejected_id = send_email('fail-400@example.com', 'Rejected');
my $rejected = wait_for_status($rejected_id, 30, qw(FAILED SENT));

is($rejected->{status}, 'FAILED', '400 fails the notification');
is($rejected->{attempts}, 1, '400 is not retried');

my ($rejected_dead_id, $rejected_reason) = @{ (psql('SELECT id, reason'
    . ' FROM dead_letters WHERE notification_id = $1', $rejected_id))[0]
    // [] };

like($rejected_reason // '', qr/^permanent failure on attempt 1: HTTP 400/,
    '400 dead letter reason');


# --- The dead-letter API -----------------------------------------------------

{
    my $list = api('GET', '/api/dead-letters?limit=1', key => $key);

    is($list->{status}, 200, 'list dead letters');
    is(scalar @{ $list->{json}{data} // [] }, 1, 'page of one');
    is($list->{json}{data}[0]{id}, $rejected_dead_id, 'newest first');
    ok(defined $list->{json}{nextCursor}, 'next page exists');

    my $next = api('GET', '/api/dead-letters?limit=1&cursor='
        . ($list->{json}{nextCursor} // ''), key => $key);

    is($next->{status}, 200, 'second page');
    is($next->{json}{data}[0]{id}, $throttled_dead_id,
        'second page has the next older one');

    my $email = api('GET', '/api/dead-letters?channel=email', key => $key);

    is_deeply([map { $_->{id} } @{ $email->{json}{data} // [] }],
        [$rejected_dead_id, $throttled_dead_id, $dead_id],
        'channel filter EMAIL lists all three, newest first');

    my $push = api('GET', '/api/dead-letters?channel=PUSH', key => $key);

    is_deeply($push->{json}{data}, [], 'channel filter PUSH is empty');

    my $foreign = api('GET', '/api/dead-letters', key => $other->{key});

    is_deeply($foreign->{json}{data}, [],
        'another tenant lists no dead letters');
}


# --- Replay ------------------------------------------------------------------

my $replayed = api('POST', "/api/dead-letters/$rejected_dead_id/replay",
    key => $key);

is($replayed->{status}, 202, 'replay accepted');
is($replayed->{json}{deadLetter}{replayCount}, 1, 'replayCount is 1');
like($replayed->{json}{deadLetter}{replayedAt} // '', $TIME_RE,
    'replayedAt is set');
is($replayed->{json}{notification}{status}, 'PENDING',
    'notification is PENDING again');
is($replayed->{json}{notification}{attempts}, 0, 'attempts reset');
is($replayed->{json}{notification}{lastError}, undef, 'lastError cleared');
is($replayed->{json}{notification}{failedAt}, undef, 'failedAt cleared');

{
    my $again = wait_for(sub {
        my $n = api('GET', "/api/notifications/$rejected_id", key => $key);
        return ($n->{json}{status} // '') eq 'FAILED'
            && dead_letter_count($rejected_id) == 2;
    }, timeout => 30);

    ok($again, 'replayed notification fails again with a second dead letter');
    my @logs = log_rows($rejected_id);

    is(scalar @logs, 2, 'the replay made a second attempt');
    is(psql('SELECT replay_count FROM dead_letters WHERE id = $1',
            $rejected_dead_id), 1, 'the first dead letter keeps its count');
}

# The replayed 500 retries for a few seconds, so it is not FAILED now.
my $busy = api('POST', "/api/dead-letters/$dead_id/replay", key => $key);

is($busy->{status}, 202, 'replay of the 500 dead letter');

run_blocks(vars => {
    KEY           => $key,
    OTHER_KEY     => $other->{key},
    DEAD_ID       => $dead_id,
    FAIL_ID       => $fail_id,
    REJECTED_DEAD => $rejected_dead_id,
});


# --- Lease expiry ------------------------------------------------------------

my $slow_domain = 'lease-' . time . "-$$.example.com";
my $slow_id = send_email("slow-once-20000\@$slow_domain", 'Lease');

ok(wait_for(sub {
    psql('SELECT status FROM notifications WHERE id = $1', $slow_id)
        eq 'PROCESSING';
}, timeout => 30, interval => 0.05), 'slow notification is PROCESSING');

# The request is in flight; the worker dies without storing an outcome.
sleep 1;

my $pid_file = "$ENV{NH_STACK_DIR}/email.pid";
my $pid = do { open my $fh, '<', $pid_file or die "$pid_file: $!\n"; <$fh> };
chomp $pid;

ok(kill('KILL', $pid), "email worker $pid killed");
ok(wait_for(sub { !kill(0, $pid) }, timeout => 10), 'email worker is gone');
ok(stack('start', 'email'), 'email worker restarted');

{
    # The lease (12 s) expires, the sweep makes it RETRYING and produces
    # it, and the restarted worker may wait for the group's session timeout
    # (45 s in librdkafka) before it owns the partition again.
    my $sent = wait_for_status($slow_id, 120, qw(SENT FAILED));

    is($sent->{status}, 'SENT', 'notification is delivered after the crash');
    is($sent->{attempts}, 2, 'the lost attempt counts');

    my @logs = log_rows($slow_id);

    is_deeply([map { $_->[0] } @logs], [qw(FAILED SENT)],
        'log rows: the expired lease, then the delivery');
    like($logs[0][2] // '', qr/lease expired/, 'expired lease is logged');
    is($logs[0][3], 't', 'expired lease made it RETRYING (next_attempt_at)');
}

done_testing();

__DATA__

=== TEST 1: dead letter by id
--- request
GET /api/dead-letters/$DEAD_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$DEAD_ID", "notificationId": "$FAIL_ID", "channel": "EMAIL",
 "reason": "~retries exhausted", "attempts": 3, "httpStatus": 500,
 "createdAt": "~$TIME_RE", "replayedAt": "~$TIME_RE", "replayCount": 1}


=== TEST 2: replay of a notification that is not FAILED is 409
--- request
POST /api/dead-letters/$DEAD_ID/replay
--- more_headers
X-API-Key: $KEY
--- error_code: 409
--- response_json
{"error": {"code": "conflict", "message": "~only a FAILED notification"}}


=== TEST 3: another tenant's dead letter is 404
--- request
GET /api/dead-letters/$DEAD_ID
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 4: replay of another tenant's dead letter is 404
--- request
POST /api/dead-letters/$REJECTED_DEAD/replay
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "dead letter not found"}}


=== TEST 5: replay of an unknown id is 404
--- request
POST /api/dead-letters/01a2434c-0000-7000-8000-000000000000/replay
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "dead letter not found"}}


=== TEST 6: replay of a non-UUID id is 404
--- request
POST /api/dead-letters/not-a-uuid/replay
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 7: list with a bad cursor is 400
--- request
GET /api/dead-letters?cursor=bogus
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request"}}


=== TEST 8: list with an unknown channel is 400
--- request
GET /api/dead-letters?channel=fax
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request"}}


=== TEST 9: list without a key is 401
--- request
GET /api/dead-letters
--- error_code: 401
