# The set-based lease and outcome functions of the workers: one call
# leases or records many notifications, ids may repeat or be unknown, a
# row that another transaction holds is reported busy at once instead of
# waited for (which could deadlock with a bulk UPDATE), and bad input is
# rejected without a change.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Delivery sets');
my $tid = $tenant->{tenant_id};
my $run = int(time) . "-$$";

# Stores a PENDING email directly, so that no Kafka message makes a worker
# lease it during the test.
sub pending_row {
    my ($name) = @_;

    return scalar psql(q{INSERT INTO notifications (id, tenant_id, channel, status,
            to_address, subject, body, created_at, updated_at)
        VALUES (gen_random_uuid(), $1, 'EMAIL', 'PENDING',
                jsonb_build_object('email', $2), 'Sets', 'Sets', now(),
                now())
        RETURNING id}, $tid, "$name-$run\@example.com");
}

sub row_state {
    my ($id) = @_;

    return psql('SELECT status || \' \' || attempts FROM notifications'
        . ' WHERE id = $1', $id);
}

# Holds the row of $id for $seconds in another session, and returns once
# the lock is taken.
sub hold_row {
    my ($id, $seconds) = @_;
    my $tag = "hold-$id";
    my $pid = fork();

    die "fork failed: $!\n" unless defined $pid;

    if ($pid == 0) {
        exec('psql', '-X', '-q', '-o', '/dev/null', '-d', $ENV{NH_PG_DSN}, '-c',
            "BEGIN; SELECT 1 FROM notifications WHERE id = '$id' FOR UPDATE;"
            . " SELECT pg_sleep($seconds) AS \"$tag\"; COMMIT;")
            or die "exec psql failed: $!\n";
    }

    wait_for(sub {
        psql(q{SELECT count(*) FROM pg_stat_activity
                WHERE query LIKE '%pg_sleep%' AND query LIKE $1
                  AND state = 'active'}, "%$tag%") > 0
    }, timeout => 10) or die "the other session did not lock $id\n";

    return $pid;
}

# Runs $sql and returns its error message, or '' when it succeeded.
sub psql_error {
    my ($sql, @params) = @_;

    return eval { psql($sql, @params); 1 } ? '' : $@;
}


# --- Leases ------------------------------------------------------------------

my $first = pending_row('lease-a');
my $second = pending_row('lease-b');
my $unknown = '01a24400-0000-7000-8000-000000000000';

my @leased = psql(q{SELECT item, busy, attempts, to_email
    FROM nh_delivery_lease_many(ARRAY[$1, $2, $3, $1]::uuid[], 30)
    ORDER BY item}, $first, $second, $unknown);

is_deeply([map { "$_->[0] $_->[1] $_->[2] $_->[3]" } @leased],
    ["1 f 1 lease-a-$run\@example.com", "2 f 1 lease-b-$run\@example.com"],
    'one row per leased notification, by its first position');
is(row_state($first), 'PROCESSING 1', 'the first notification is PROCESSING');
is(row_state($second), 'PROCESSING 1', 'the second notification is PROCESSING');

is(scalar(() = psql(q{SELECT item
    FROM nh_delivery_lease_many(ARRAY[$1]::uuid[], 30)}, $first)), 0,
    'a PROCESSING notification is not leased again');

like(psql_error(q{SELECT * FROM nh_delivery_lease_many(ARRAY[$1]::uuid[], 0)},
        pending_row('lease-zero')),
    qr/invalid lease of 0 seconds/, 'a lease of 0 seconds is rejected');

{
    my $held = pending_row('lease-held');
    my $pid = hold_row($held, 3);
    my $started = time;
    my @rows = psql(q{SELECT item, busy, tenant_id
        FROM nh_delivery_lease_many(ARRAY[$1]::uuid[], 30)}, $held);
    my $took = time - $started;

    is_deeply([map { "$_->[0] $_->[1]" } @rows], ['1 t'],
        'a held notification is reported busy');
    is($rows[0][2], undef, 'a busy row has no notification columns');
    cmp_ok($took, '<', 2, 'the lease does not wait for the other session');
    is(row_state($held), 'PENDING 0', 'a busy notification is unchanged');

    waitpid($pid, 0);

    is(scalar(() = psql(q{SELECT item
        FROM nh_delivery_lease_many(ARRAY[$1]::uuid[], 30)
        WHERE NOT busy}, $held)), 1, 'it is leased once the lock is gone');
}


# --- Outcomes ----------------------------------------------------------------

my $third = pending_row('record-c');

psql(q{SELECT item FROM nh_delivery_lease_many(ARRAY[$1]::uuid[], 30)}, $third);

my $record = q{SELECT id, status, dead_letter IS NOT NULL, busy
    FROM nh_delivery_record_many(ARRAY[$1, $2, $3]::uuid[],
        ARRAY['mailgun', 'mailgun', 'mailgun'],
        ARRAY['SENT', 'FAILED', 'FAILED'], ARRAY[200, 503, 400],
        ARRAY['<m1@x>', NULL, NULL], ARRAY[NULL, 'unavailable', 'bad address'],
        ARRAY[50, 60, 70], ARRAY[NULL, 3600000, NULL]::bigint[],
        ARRAY[NULL, NULL, 'permanent failure'])};

{
    my $before = rows_text('SELECT status, attempts FROM notifications'
        . ' WHERE tenant_id = $1 ORDER BY id', $tid);
    my $logs = table_count('delivery_logs');

    like(psql_error(q{SELECT * FROM nh_delivery_record_many(
            ARRAY[$1]::uuid[], ARRAY['mailgun', 'mailgun'], ARRAY['SENT'],
            ARRAY[200], ARRAY[NULL], ARRAY[NULL], ARRAY[1],
            ARRAY[NULL]::bigint[], ARRAY[NULL])}, $first),
        qr/differ in length/, 'arrays of different lengths are rejected');
    like(psql_error(q{SELECT * FROM nh_delivery_record_many(
            ARRAY[$1]::uuid[], ARRAY['mailgun'], ARRAY['DONE'], ARRAY[200],
            ARRAY[NULL], ARRAY[NULL], ARRAY[1], ARRAY[NULL]::bigint[],
            ARRAY[NULL])}, $first),
        qr/invalid delivery outcome/, 'an unknown status is rejected');
    like(psql_error(q{SELECT * FROM nh_delivery_record_many(
            ARRAY[$1]::uuid[], ARRAY['mailgun'], ARRAY['FAILED'],
            ARRAY[503], ARRAY[NULL], ARRAY['x'], ARRAY[1], ARRAY[-1]::bigint[],
            ARRAY[NULL])}, $first),
        qr/invalid delivery outcome/, 'a negative retry delay is rejected');

    is(rows_text('SELECT status, attempts FROM notifications'
        . ' WHERE tenant_id = $1 ORDER BY id', $tid), $before,
        'rejected outcomes change no notification');
    is(table_count('delivery_logs'), $logs,
        'rejected outcomes write no log row');
}

{
    my $pid = hold_row($third, 3);
    my @rows = psql($record, $first, $second, $third);

    is_deeply([map { join ' ', map { $_ // 'null' } @$_ } @rows],
        ["$first SENT f f", "$second RETRYING f f", "$third null f t"],
        'one result per outcome, the held one busy');
    is(row_state($third), 'PROCESSING 1', 'the busy outcome is not written');

    waitpid($pid, 0);
}

is(row_state($first), 'SENT 1', 'the sent outcome is stored');
is(psql('SELECT status || \' \' || (next_attempt_at > now())'
        . ' FROM notifications WHERE id = $1', $second),
    'RETRYING true', 'the retried outcome waits with nextAttemptAt');

{
    my @rows = psql(q{SELECT status, dead_letter IS NOT NULL, busy
        FROM nh_delivery_record_many(ARRAY[$1]::uuid[], ARRAY['mailgun'],
            ARRAY['FAILED'], ARRAY[400], ARRAY[NULL], ARRAY['bad address'],
            ARRAY[70], ARRAY[NULL]::bigint[], ARRAY['permanent failure'])},
        $third);

    is_deeply([map { "@$_" } @rows], ['FAILED t f'],
        'the outcome is written once the lock is gone, with a dead letter');
    is(psql('SELECT reason FROM dead_letters WHERE notification_id = $1', $third),
        'permanent failure', 'the dead letter has the given reason');
}

{
    my @rows = psql(q{SELECT status IS NULL, busy
        FROM nh_delivery_record_many(ARRAY[$1]::uuid[], ARRAY['mailgun'],
            ARRAY['SENT'], ARRAY[200], ARRAY[NULL], ARRAY[NULL], ARRAY[1],
            ARRAY[NULL]::bigint[], ARRAY[NULL])}, $first);

    is_deeply([map { "@$_" } @rows], ['t f'],
        'an outcome for a notification no longer PROCESSING writes nothing');
    is(psql('SELECT count(*) FROM delivery_logs WHERE notification_id = $1',
            $first), 1, 'no second log row for it');
}

# --- Outcomes of several targets ----------------------------------------------

{
    my $push = scalar psql(q{INSERT INTO notifications (id, tenant_id,
            channel, status, attempts, to_address, body, created_at,
            updated_at)
        VALUES (gen_random_uuid(), $1, 'PUSH', 'PROCESSING', 1,
                jsonb_build_object('deviceTokens',
                                   jsonb_build_array('tok-a', 'tok-b')),
                'Sets', now(), now())
        RETURNING id}, $tid);
    my $results = '[{"target": "tok-a", "status": "FAILED", "httpStatus": 503,'
        . ' "error": "unavailable", "durationMs": 5, "permanent": false},'
        . ' {"target": "tok-b", "status": "FAILED", "httpStatus": 400,'
        . ' "error": "invalid", "durationMs": 5, "permanent": true}]';
    my $call = q{SELECT status, busy FROM nh_delivery_record_targets($1,
        'fcm', $2::jsonb, 3600000, NULL)};
    my $pid = hold_row($push, 3);
    my $started = time;
    my @rows = psql($call, $push, $results);

    is_deeply([map { join ' ', map { $_ // 'null' } @$_ } @rows],
        ['null t'], 'a held push notification is reported busy');
    cmp_ok(time - $started, '<', 2,
        'the push outcome does not wait for the other session');
    is(psql('SELECT count(*) FROM delivery_logs WHERE notification_id = $1',
            $push), 0, 'nothing is written for the busy push');

    waitpid($pid, 0);

    is_deeply([map { "@$_" } psql($call, $push, $results)], ['RETRYING f'],
        'the push outcome is written once the lock is gone');
    is(psql('SELECT array_to_string(failed_targets, \',\')'
            . ' FROM notifications WHERE id = $1', $push), 'tok-b',
        'the permanently failed token is kept for the retry');

    psql("UPDATE notifications SET status = 'CANCELLED' WHERE id = \$1",
        $push);
}

# The retried notification would be queued in an hour.
psql("UPDATE notifications SET status = 'CANCELLED' WHERE id = \$1", $second);

done_testing();
