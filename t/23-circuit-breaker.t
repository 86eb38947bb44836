# Circuit breaker, fallback provider and send-rate limit of the email
# worker, against the fake Mailgun's POST /control (fail every send to a
# domain) and GET /stats (sends received per domain). The test profiles
# run the workers with NH_BREAKER_WINDOW_SECONDS=5,
# NH_BREAKER_MIN_REQUESTS=10 and NH_BREAKER_COOLDOWN_SECONDS=3, and the
# stack's email worker with a fallback on the fake's second domain
# (scripts/stack). The later parts stop that worker and run their own.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use NotifyHub::Test;

require_stack();

my $COOLDOWN = 3;
my $WINDOW = 5;
my $TIME_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

my $primary_domain = $ENV{NH_MAILGUN_DOMAIN};
my $fallback_domain = $ENV{NH_TEST_FALLBACK_DOMAIN};
my $stack_dir = $ENV{NH_STACK_DIR};
my $worker_bin = "$FindBin::Bin/../build/notifyhub-email";
my $run = int(time) . "-$$";

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Circuit breaker',
    plan => 'STARTER');
my $key = $tenant->{key};

my $own_pid = 0;

END {
    stop_own_worker();
    eval { mailgun_control(undef) };
    stack('start', 'email');
}


# Sets the fake Mailgun's failure: every send to @domains gets $status;
# undef makes it answer normally again.
sub mailgun_control {
    my ($status, @domains) = @_;

    my $r = http_request(
        method   => 'POST',
        path     => '/control',
        base_url => $ENV{NH_MAILGUN_URL},
        headers  => [['Content-Type', 'application/json']],
        body     => encode_json_text({ failStatus => $status,
                                       domains => @domains ? \@domains
                                                           : undef }),
    );

    die "POST /control on the fake Mailgun returned $r->{status}\n"
        unless $r->{status} == 200;
}


# Returns the sends the fake Mailgun received for $domain so far.
sub mailgun_requests {
    my ($domain) = @_;

    my $r = http_request(
        method   => 'GET',
        path     => '/stats',
        base_url => $ENV{NH_MAILGUN_URL},
    );

    die "GET /stats on the fake Mailgun returned $r->{status}\n"
        unless $r->{status} == 200;

    return $r->{json}{domains}{$domain}{requests} // 0;
}


# Creates $count email notifications in one bulk request and returns
# their ids. $local, when given, is the local part of every address (such
# as slow-800, which the fake answers after 800 ms).
sub send_bulk {
    my ($count, $label, $local) = @_;

    my @items = map {
        { channel => 'EMAIL',
          to => { email => ($local // "user-$_")
                           . "\@$label-$run.example.com" },
          content => { subject => "Breaker $label", body => 'Body' } }
    } 1 .. $count;
    my $r = api('POST', '/api/notifications/bulk', key => $key,
        json => { notifications => \@items }, timeout => 60);

    is($r->{status}, 202, "$label: $count notifications accepted")
        or diag($r->{body});

    return map { $_->{notification}{id} } @{ $r->{json}{results} // [] };
}


sub breaker_state {
    my ($name) = @_;

    return psql('SELECT state FROM providers WHERE name = $1', $name)
        // 'missing';
}


# Waits until every notification of @ids has status $status.
sub wait_all_status {
    my ($status, $timeout, @ids) = @_;
    my $list = join ',', @ids;

    return wait_for(sub {
        psql('SELECT count(*) FROM notifications'
             . ' WHERE id = ANY (string_to_array($1, \',\')::uuid[])'
             . ' AND status = $2', $list, $status) == @ids;
    }, timeout => $timeout, interval => 0.2);
}


# Returns the providers column of the notifications, by provider.
sub providers_of {
    my (@ids) = @_;
    my %count;

    $count{ $_->[0] // 'null' } += $_->[1] for psql('SELECT provider,'
        . ' count(*) FROM notifications'
        . ' WHERE id = ANY (string_to_array($1, \',\')::uuid[])'
        . ' GROUP BY provider', join(',', @ids));

    return \%count;
}


# Counts the lines of a log file that contain all the strings.
sub log_lines {
    my ($file, @parts) = @_;

    open my $fh, '<', $file or return 0;

    return scalar grep {
        my $line = $_;
        !grep { index($line, $_) < 0 } @parts;
    } <$fh>;
}


# Starts an email worker of the stack's consumer group without a fallback,
# with the test profile's retry and breaker settings and %env; returns its
# log file once it owns the partitions.
sub start_own_worker {
    my ($name, %env) = @_;
    my $log = "$stack_dir/breaker-$name.log";

    unlink $log;

    $own_pid = start_email_worker($log,
        (map { $_ => undef } grep { /^NH_FALLBACK_/ } keys %ENV),
        NH_BREAKER_WINDOW_SECONDS => $WINDOW, NH_BREAKER_MIN_REQUESTS => 10,
        NH_BREAKER_COOLDOWN_SECONDS => $COOLDOWN, %env);

    ok(wait_for(sub { log_lines($log, 'partitions assigned') },
                timeout => 60),
        "$name worker owns the partitions");

    return $log;
}


sub stop_own_worker {
    return unless $own_pid;

    kill 'TERM', $own_pid;
    waitpid($own_pid, 0);
    $own_pid = 0;
}


# --- The primary fails: the breaker opens and the fallback takes over -------

my $email_log = "$stack_dir/email.log";
my $opened_before = log_lines($email_log, 'msg="provider circuit opened"',
    'provider=mailgun ');

is(breaker_state('mailgun'), 'CLOSED', 'primary breaker starts CLOSED');

# The failure rate is taken over a window of 5 s that starts with a
# request. Successful sends of earlier files in that window would dilute
# the 503s below and keep the breaker closed until it ends, while the
# failing notifications use up their attempts, so the test starts after
# any such window.
sleep($WINDOW + 0.5);

mailgun_control(503, $primary_domain);

my @failing = send_bulk(12, 'failing');

ok(wait_for(sub { breaker_state('mailgun') eq 'OPEN' }, timeout => 15,
            interval => 0.1),
    'twelve 503 answers open the primary breaker');
ok(wait_for(sub {
    log_lines($email_log, 'msg="provider circuit opened"',
              'provider=mailgun ') > $opened_before
}, timeout => 5), 'the opening is logged')
    or diag(`tail -n 20 $email_log`);
ok(log_lines($email_log, 'msg="provider circuit opened"', 'provider=mailgun ',
             'requests=', 'failures=', 'open_until='),
    'the log line has the numbers that opened it');

my $primary_at_open = mailgun_requests($primary_domain);
my $probes_at_open = log_lines($email_log, 'msg="provider probe claimed"',
    'provider=mailgun ');

my @diverted = send_bulk(5, 'diverted');

ok(wait_all_status('SENT', 20, @diverted),
    'notifications sent while the primary is open end SENT');
is_deeply(providers_of(@diverted), { 'mailgun-fallback' => 5 },
    'they went through the fallback');

{
    my $probes = log_lines($email_log, 'msg="provider probe claimed"',
        'provider=mailgun ') - $probes_at_open;
    my $extra = mailgun_requests($primary_domain) - $primary_at_open;

    # A request in flight when the breaker opened may still arrive.
    ok($extra <= $probes + 1,
        'the primary got no request while open, apart from probes')
        or diag("primary requests $extra, probes $probes");
}

ok(wait_all_status('SENT', 20, @failing),
    'the failed notifications are retried through the fallback');

is(psql('SELECT count(*) FROM delivery_logs WHERE notification_id = $1'
        . ' AND provider = \'mailgun-fallback\' AND status = \'SENT\'',
        $diverted[0]), 1, 'the delivery log names the fallback');


# --- The primary recovers: a probe closes the breaker ------------------------

mailgun_control(undef);

# A probe is a real delivery, so the breaker closes only with traffic:
# one notification every half second until it does. The provider answers
# each after 800 ms, so the worker writes the breaker's row while the
# probe is in flight, and the probe's result must still count.
my @probing;

ok(wait_for(sub {
    push @probing, send_bulk(1, 'probing-' . scalar @probing, 'slow-800');
    return breaker_state('mailgun') eq 'CLOSED';
}, timeout => $COOLDOWN + 10, interval => 0.5),
    'a successful probe closes the primary breaker');
ok(wait_all_status('SENT', 20, @probing),
    'notifications sent around the probe end SENT');
ok(log_lines($email_log, 'msg="provider circuit closed"',
             'provider=mailgun '), 'the closing is logged');

my $primary_before = mailgun_requests($primary_domain);
my @back = send_bulk(3, 'back');

ok(wait_all_status('SENT', 20, @back), 'notifications after recovery sent');
is_deeply(providers_of(@back), { mailgun => 3 },
    'traffic is back on the primary');
ok(mailgun_requests($primary_domain) - $primary_before >= 3,
    'the primary received them');


# --- Without a fallback: deferred without counting an attempt ----------------

ok(stack('stop', 'email'), 'stack email worker stopped');

my $solo_log = start_own_worker('solo');
my $fallback_at_solo = mailgun_requests($fallback_domain);

mailgun_control(503, $primary_domain);

my @tripping = send_bulk(12, 'tripping');

ok(wait_for(sub { breaker_state('mailgun') eq 'OPEN' }, timeout => 15,
            interval => 0.1),
    'the breaker opens again without a fallback');

my @deferred = send_bulk(3, 'deferred');
my $deferred_id = $deferred[0];

ok(wait_for(sub {
    psql('SELECT count(*) FROM delivery_logs WHERE notification_id = $1'
         . ' AND status = \'RETRYING\'', $deferred_id) > 0
}, timeout => 10, interval => 0.1), 'the notification is deferred');

{
    my @n = psql('SELECT status, attempts,'
        . ' extract(epoch FROM next_attempt_at - updated_at), last_error'
        . ' FROM notifications WHERE id = $1', $deferred_id);
    my ($status, $attempts, $wait, $error) = @{ $n[0] // [] };

    ok($status eq 'RETRYING' || $status eq 'PROCESSING',
        'a deferred notification waits as RETRYING')
        or diag("status $status");
    is($attempts, $status eq 'PROCESSING' ? 1 : 0,
        'the deferral did not count an attempt');
    ok(defined $wait && $wait > 0 && $wait <= $COOLDOWN + 0.5,
        'nextAttemptAt is at the end of the cool-down')
        or diag('next attempt in ' . ($wait // 'NULL') . ' s');
    like($error // '', qr/circuit breaker of provider mailgun is open/,
        'lastError says the circuit is open');

    my @log = psql('SELECT status, provider, error, attempt,'
        . ' next_attempt_at IS NOT NULL FROM delivery_logs'
        . ' WHERE notification_id = $1 ORDER BY id LIMIT 1', $deferred_id);

    is_deeply($log[0], ['RETRYING', 'mailgun',
        'circuit breaker of provider mailgun is open', 1, 't'],
        'the delivery log row of the deferral');
}

is(mailgun_requests($fallback_domain), $fallback_at_solo,
    'a worker without a fallback sends nothing to the fallback domain');

mailgun_control(undef);

ok(wait_all_status('SENT', 30, @deferred, @tripping),
    'deferred notifications are sent after recovery');

is_deeply([map { $_->[0] } psql('SELECT attempts FROM notifications'
        . ' WHERE id = ANY (string_to_array($1, \',\')::uuid[])',
        join(',', @deferred))], [1, 1, 1],
    'only the successful attempt counts');
is_deeply(providers_of(@deferred), { mailgun => 3 },
    'they went to the primary');

run_blocks(vars => { KEY => $key, DEFERRED_ID => $deferred_id });

stop_own_worker();


# --- The send-rate limit -----------------------------------------------------

my $RATE = 20;
my $COUNT = 200;

my $rate_log = start_own_worker('rate', NH_RATE_LIMIT => $RATE);

like(`grep -m1 'provider instances' $rate_log`,
    qr/rate_limit=$RATE rate_burst=$RATE/, 'the burst defaults to the rate');

my $start = time;
my @limited = send_bulk($COUNT, 'limited');

ok(wait_all_status('SENT', 60, @limited), 'every rate-limited one is SENT');

{
    my %per_second;
    my @received = map { $_->{receivedAt} }
        grep { ($_->{to} // '') =~ /\@limited-\Q$run\E\./ }
        mailgun_messages();

    $per_second{ substr($_, 0, 19) }++ for @received;

    my ($busiest) = sort { $b <=> $a } values %per_second;

    is(scalar @received, $COUNT, 'the fake received each one');
    # A worker may also hold one chunk of tokens (100 ms of the rate, 2
    # here) that it took from the bucket before the second began.
    ok(($busiest // 0) <= 2 * $RATE + 2,
        "no second has more than rate + burst + one chunk of sends")
        or diag("busiest second: $busiest sends");
    ok(time - $start >= ($COUNT - 2 * $RATE) / $RATE,
        'the sends took at least (count - burst) / rate seconds');
    note(sprintf('%d sends in %.1f s, busiest second %d', $COUNT,
                 time - $start, $busiest // 0));
}

stop_own_worker();


# --- Invalid settings stop the worker at start -------------------------------

my @bad = (
    [{ NH_BREAKER_FAILURE_PERCENT => 101 }, 'NH_BREAKER_FAILURE_PERCENT'],
    [{ NH_BREAKER_WINDOW_SECONDS => -5 }, 'NH_BREAKER_WINDOW_SECONDS'],
    [{ NH_BREAKER_PROBES => 0 }, 'NH_BREAKER_PROBES'],
    [{ NH_RATE_LIMIT => -1 }, 'NH_RATE_LIMIT'],
    [{ NH_RATE_LIMIT => 10, NH_RATE_BURST => -1 }, 'NH_RATE_BURST'],
    [{ NH_PROVIDER_NAME => 'bad name' }, 'NH_PROVIDER_NAME'],
    [{ NH_FALLBACK_MAILGUN_URL => 'ftp://127.0.0.1' }, 'fallback provider'],
    [{ NH_FALLBACK_MAILGUN_DOMAIN => 'other.example',
       NH_FALLBACK_PROVIDER_NAME => 'mailgun' },
     'NH_FALLBACK_PROVIDER_NAME'],
);

for my $case (@bad) {
    my ($env, $expected) = @$case;
    my $label = join ' ', map { "$_=$env->{$_}" } sort keys %$env;

    local @ENV{keys %$env} = values %$env;

    my ($out) = NotifyHub::Test::run_command([$worker_bin], merge => 1);
    my $status = $? >> 8;

    is($status, 1, "$label: the worker exits with status 1");
    like($out, qr/invalid configuration.*\Q$expected\E/,
        "$label: the message names $expected");
}

done_testing();

__DATA__

=== TEST 1: a deferred notification, sent after recovery
--- request
GET /api/notifications/$DEFERRED_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$DEFERRED_ID", "status": "SENT", "attempts": 1,
 "provider": "mailgun", "lastError": null, "nextAttemptAt": null}


=== TEST 2: its delivery log starts with the deferral
--- request
GET /api/notifications/$DEFERRED_ID/logs
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"attempt": 1, "status": "RETRYING", "provider": "mailgun",
           "httpStatus": null,
           "error": "circuit breaker of provider mailgun is open",
           "nextAttemptAt": "~$TIME_RE"},
          "..."]}
