# GET /readyz: 200 while this nginx worker has a PostgreSQL connection and
# has seen a Kafka broker, 503 with the state of each while PostgreSQL is
# down, and 200 again after PostgreSQL is back.
#
# This file stops and starts the pg service of the stack, so it must not
# run in parallel with other test files.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);

use NotifyHub::Test;

require_stack();


# Asks /readyz until it answers with the status, and returns the last
# reply. Each nginx worker process answers for itself, so the reply must
# be stable for a few requests in a row.
sub readyz_until {
    my ($status, $timeout) = @_;
    my ($last, $streak) = (undef, 0);

    wait_for(sub {
        $last = api('GET', '/readyz');
        $streak = $last->{status} == $status ? $streak + 1 : 0;
        return $streak >= 5;
    }, timeout => $timeout, interval => 0.1);

    return $last;
}


my $pg_stopped = 0;

# Starts PostgreSQL again if this file stops early, so that later test
# files find a whole stack.
END {
    local $?;

    stack('start', 'pg') if $pg_stopped;
}

{
    my $started = time;
    my $ready = readyz_until(200, 30);

    is($ready->{status}, 200, '/readyz is 200 with the whole stack up')
        or diag("last reply: $ready->{status} $ready->{body}");
    note(sprintf 'ready after %.1f s', time - $started);
}

run_blocks(vars => {});

ok(stack('stop', 'pg'), 'PostgreSQL stopped')
    or die "cannot stop PostgreSQL\n";
$pg_stopped = 1;

{
    my $down = readyz_until(503, 20);

    is($down->{status}, 503, '/readyz is 503 while PostgreSQL is down')
        or diag("last reply: $down->{status} $down->{body}");
    is($down->{json}{checks}{postgresql}, 'down',
        'the reply says PostgreSQL is down');
    is($down->{json}{status}, 'not_ready', 'the reply says not_ready');
    like($down->{headers}{'retry-after'} // '', qr/^[0-9]+$/,
        'the 503 has Retry-After');
    like($down->{json}{checks}{kafka} // '', qr/^(up|down)$/,
        'the reply still names the Kafka state');
}

run_blocks(vars => {}, data => <<'EOF');
=== TEST 5: not ready without PostgreSQL
--- request
GET /readyz
--- error_code: 503
--- response_headers
Retry-After: ~^[0-9]+$
Content-Type: ~^application/json
X-Request-Id: ~^[A-Za-z0-9._:-]+$
--- response_json
{"status": "not_ready", "checks": {"postgresql": "down"}}


=== TEST 6: HEAD while not ready
--- request
HEAD /readyz
--- error_code: 503
--- response_headers
Retry-After: ~^[0-9]+$
--- response_body
EOF

ok(stack('start', 'pg'), 'PostgreSQL started')
    or die "cannot start PostgreSQL\n";
$pg_stopped = 0;

{
    my $started = time;
    my $ready = readyz_until(200, 30);

    is($ready->{status}, 200, '/readyz is 200 again after the restart')
        or diag("last reply: $ready->{status} $ready->{body}");
    is_deeply($ready->{json},
        { status => 'ready', checks => { postgresql => 'up', kafka => 'up' } },
        'the reply says both are up');
    note(sprintf 'ready %.1f s after the restart', time - $started);
}

done_testing();

__DATA__

=== TEST 1: ready with the whole stack up
--- request
GET /readyz
--- error_code: 200
--- response_headers
Content-Type: ~^application/json
!Retry-After
--- response_body_like
^\{"status":"ready","checks":\{"postgresql":"up","kafka":"up"\}\}\n$


=== TEST 2: no credentials are needed, and sent ones are not checked
--- request
GET /readyz
--- more_headers
X-API-Key: nh_thisKeyWasNeverIssued000000000000000
--- error_code: 200
--- response_json
{"status": "ready"}


=== TEST 3: HEAD
--- request
HEAD /readyz
--- error_code: 200
--- response_body


=== TEST 4: readyz takes only GET and HEAD
--- request
POST /readyz
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_json
{"error": {"code": "method_not_allowed"}}
