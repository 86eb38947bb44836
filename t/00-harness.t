# Self-test of the harness in t/lib/NotifyHub/Test.pm: the JSON subset
# matcher, the block parser, variable replacement, and the block runner
# against a small HTTP server on 127.0.0.1 that this file starts. Needs no
# NotifyHub stack.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use POSIX ();
use Test2::API qw(intercept);
use Test::More;

use NotifyHub::Test;


sub decode { decode_json_text($_[0]) }

sub matches {
    my ($actual, $expected) = @_;
    return !json_subset(decode($actual), decode($expected));
}


# --- JSON subset matcher: cases that must match -----------------------------

my @matching = (
    ['{"a": 1, "b": 2}', '{"a": 1}', 'extra keys allowed'],
    ['{"a": {"b": "x", "c": 1}}', '{"a": {"b": "x"}}', 'nested subset'],
    ['{"a": "abc123"}', '{"a": "~^abc[0-9]+$"}', 'regex on string'],
    ['{"a": 42}', '{"a": "~^4"}', 'regex on number'],
    ['{"a": "~x"}', '{"a": "~~x"}', 'escaped literal tilde'],
    ['[1, 2, 3]', '[1, 2, 3]', 'array equal'],
    ['[1, 2, 3]', '[1, 2, "..."]', 'open-ended array'],
    ['[1, 2]', '[1, 2, "..."]', 'open-ended array without extras'],
    ['[{"f": "b"}, {"f": "a"}]', '["<any order>", {"f": "a"}, {"f": "b"}]',
        'array in any order'],
    ['[{"f": "b"}, {"f": "c"}, {"f": "a"}]', '["<any order>", {"f": "a"}, "..."]',
        'array containing an element'],
    ['{"a": null}', '{"a": null}', 'null matches null'],
    ['{"a": true}', '{"a": true}', 'true matches true'],
    ['{"a": false}', '{"a": false}', 'false matches false'],
    ['{"a": 1.5}', '{"a": 1.50}', 'numbers compare numerically'],
    ['{"a": 1}', '{"!b": null}', 'absent key'],
    ['{}', '{}', 'empty object matches empty object'],
    ['[]', '[]', 'empty array matches empty array'],
    ['{"a": {"b": [{"c": "d"}]}}', '{"a": {"b": [{"c": "d"}]}}',
        'deep structure'],
    ['"text"', '"text"', 'top-level string'],
);

for my $case (@matching) {
    my ($actual, $expected, $name) = @$case;
    my @errors = json_subset(decode($actual), decode($expected));

    ok(!@errors, "json_subset matches: $name")
        or diag(join "\n", @errors);
}


# --- JSON subset matcher: cases that must not match -------------------------

my @mismatching = (
    ['{"a": 1}', '{"b": 1}', 'missing key', qr/^\$\.b: missing/],
    ['{"a": 1}', '{"a": 2}', 'different number', qr/^\$\.a: expected 2/],
    ['{"a": "x"}', '{"a": "y"}', 'different string', qr/^\$\.a:/],
    ['{"a": "1"}', '{"a": 1}', 'string is not a number', qr/expected number/],
    ['{"a": 1}', '{"a": "1"}', 'number is not a string', qr/expected "1"/],
    ['{"a": 1}', '{"a": true}', 'number is not a boolean',
        qr/expected boolean/],
    ['{"a": false}', '{"a": true}', 'false is not true', qr/expected true/],
    ['{"a": "null"}', '{"a": null}', 'string is not null',
        qr/expected null/],
    ['{}', '{"a": null}', 'missing key is not null', qr/missing/],
    ['{"a": "abc"}', '{"a": "~^b"}', 'regex does not match',
        qr/matching \/\^b\//],
    ['{"a": null}', '{"a": "~.*"}', 'regex does not match null',
        qr/got null/],
    ['{"a": {"b": 1}}', '{"a": "~.*"}', 'regex does not match object',
        qr/matching/],
    ['{"a": "~x"}', '{"a": "~~y"}', 'escaped literal tilde differs',
        qr/expected "~y"/],
    ['[1, 2, 3]', '[1, 2]', 'array longer than expected',
        qr/expected 2 elements, got 3/],
    ['[1]', '[1, 2]', 'array shorter than expected',
        qr/expected 2 elements, got 1/],
    ['[1]', '[1, 2, "..."]', 'open-ended array too short',
        qr/at least 2 elements/],
    ['[2, 1]', '[1, 2]', 'array order matters', qr/^\$\[0\]/],
    ['[{"f": "a"}, {"f": "a"}]', '["<any order>", {"f": "a"}, {"f": "b"}]',
        'any order needs distinct elements', qr/in any order/],
    ['[{"f": "b"}, {"f": "c"}]', '["<any order>", {"f": "a"}, "..."]',
        'array not containing an element', qr/in any order/],
    ['{"a": 1, "b": 2}', '{"!b": null}', 'present key that must be absent',
        qr/^\$\.b: expected no such key/],
    ['{"a": {"x": 1}}', '{"a": {}}', 'empty object matches only empty',
        qr/expected an empty object/],
    ['{"a": [1]}', '{"a": []}', 'empty array matches only empty',
        qr/expected 0 elements/],
    ['{"a": [1]}', '{"a": {}}', 'array is not an object',
        qr/expected object/],
    ['{"e": {"d": [{"f": "x"}]}}', '{"e": {"d": [{"f": "y"}]}}',
        'mismatch path names the element', qr/^\$\.e\.d\[0\]\.f:/],
);

for my $case (@mismatching) {
    my ($actual, $expected, $name, $message) = @$case;
    my @errors = json_subset(decode($actual), decode($expected));

    ok(scalar @errors, "json_subset rejects: $name");
    like($errors[0] // '', $message, "json_subset message: $name");
}

{
    my $data = decode('{"n": 7, "s": "7"}');
    my $text = "$data->{n}";
    my $number = $data->{s} + 0;

    ok(!json_subset($data, decode('{"n": 7, "s": "7"}')),
        'json_subset types survive stringifying and numifying');
}

is_deeply(
    [json_subset(decode('{"a": 1, "b": 2}'), decode('{"a": 0, "b": 0}'))],
    ['$.a: expected 0, got 1', '$.b: expected 0, got 2'],
    'json_subset lists every mismatch');


# --- JSON pointer -----------------------------------------------------------

{
    my $data = decode('{"a": {"b": [10, {"c/d": "x", "e~f": "y"}]}}');

    is(json_pointer($data, '/a/b/0'), 10, 'json_pointer array index');
    is(json_pointer($data, '/a/b/1/c~1d'), 'x', 'json_pointer escaped slash');
    is(json_pointer($data, '/a/b/1/e~0f'), 'y', 'json_pointer escaped tilde');
    is(json_pointer($data, '/a/x'), undef, 'json_pointer missing key');
    is(json_pointer($data, '/a/b/7'), undef, 'json_pointer index too large');
}


# --- Block parser ----------------------------------------------------------

{
    my $text = <<'EOT';
=== TEST 1: first block
--- request
POST /api/x

{"a": 1}
--- more_headers
Content-Type: application/json
X-One: 1
--- error_code: 202
--- db_unchanged: notifications, tenants


=== TEST 2: second block
--- request_body eval
"x" x 3
--- response_json
{"a":
  1}
--- SKIP
EOT

    my @blocks = parse_blocks($text);

    is(scalar @blocks, 2, 'parse_blocks finds two blocks');
    is($blocks[0]{name}, 'TEST 1: first block', 'parse_blocks block name');
    is($blocks[0]{sections}{request}{value}, "POST /api/x\n\n{\"a\": 1}",
        'parse_blocks keeps the blank line inside request');
    is($blocks[0]{sections}{more_headers}{value},
        "Content-Type: application/json\nX-One: 1",
        'parse_blocks multi-line section');
    is($blocks[0]{sections}{error_code}{value}, '202',
        'parse_blocks one-line section');
    is($blocks[0]{sections}{db_unchanged}{value}, 'notifications, tenants',
        'parse_blocks drops blank lines between blocks');
    ok($blocks[1]{sections}{request_body}{modifiers}{eval},
        'parse_blocks reads the eval modifier');
    is($blocks[1]{sections}{response_json}{value}, "{\"a\":\n  1}",
        'parse_blocks keeps indentation');
    ok($blocks[1]{sections}{SKIP}, 'parse_blocks reads SKIP');

    ok(!eval { parse_blocks("=== T\n--- respnse_json\n{}\n"); 1 },
        'parse_blocks rejects an unknown section');
    like($@, qr/unknown section "respnse_json"/,
        'parse_blocks names the unknown section');
    ok(!eval {
            parse_blocks("=== T\n--- error_code: 1\n--- error_code: 2\n");
            1;
        },
        'parse_blocks rejects a repeated section');
}


# --- Variables -------------------------------------------------------------

{
    local %NotifyHub::Test::VARS = (%NotifyHub::Test::BUILTIN_VARS,
        KEY => 'nh_abc', ID_2 => 'x');

    is(NotifyHub::Test::interpolate('Bearer $KEY/$ID_2'), 'Bearer nh_abc/x',
        'interpolate replaces variables');
    is(NotifyHub::Test::interpolate('^a$'), '^a$',
        'interpolate leaves a regex anchor alone');
    is(NotifyHub::Test::interpolate('\$KEY'), '\$KEY',
        'interpolate keeps an escaped variable');
    ok(!eval { NotifyHub::Test::interpolate('$MISSING'); 1 },
        'interpolate rejects an unknown variable');
    like($@, qr/unknown variable \$MISSING/,
        'interpolate names the unknown variable');

    my $uuid = NotifyHub::Test::var('UUID_RE');
    my $time = NotifyHub::Test::var('TIME_RE');

    like('01932c07-a2b1-7c3d-8e4f-0123456789ab', qr/$uuid/,
        'UUID_RE matches a UUIDv7');
    unlike('01932c07-a2b1-4c3d-8e4f-0123456789ab', qr/$uuid/,
        'UUID_RE rejects a UUIDv4');
    like('2026-12-04T19:15:05.123Z', qr/$time/, 'TIME_RE matches');
    unlike('2026-12-04T19:15:05Z', qr/$time/,
        'TIME_RE rejects a time without milliseconds');
    unlike('2026-12-04T19:15:05.123+01:00', qr/$time/,
        'TIME_RE rejects an offset');
}


# --- Environment file ------------------------------------------------------

is(NotifyHub::Test::shell_unquote(q{'a b'}), 'a b', 'shell_unquote single');
is(NotifyHub::Test::shell_unquote(q{'it'\''s'}), q{it's},
    'shell_unquote escaped single quote');
is(NotifyHub::Test::shell_unquote(q{"x \"y\""}), 'x "y"',
    'shell_unquote double');
is(NotifyHub::Test::shell_unquote(q{plain}), 'plain', 'shell_unquote bare');
is(NotifyHub::Test::shell_unquote(q{host=1\ port=2}), 'host=1 port=2',
    'shell_unquote backslash');

ok(!eval { NotifyHub::Test::url_host_port('http://192.0.2.1:80'); 1 },
    'base URL must be on loopback');


# --- Block runner against a local HTTP server ------------------------------

my $server = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1,
    Proto => 'tcp',
) or die "cannot listen on 127.0.0.1: $!\n";
my $port = $server->sockport;
my $server_pid = fork // die "cannot fork: $!\n";

if (!$server_pid) {
    serve($server);
    POSIX::_exit(0);
}

close $server;

END {
    local $?;

    if ($server_pid) {
        kill 'TERM', $server_pid;
        waitpid $server_pid, 0;
    }
}

my $base_url = "http://127.0.0.1:$port";

my $good_blocks = <<'EOT';
=== TEST 1: echo request with headers and body
--- request
POST /echo?x=$VALUE

{"k": "$VALUE"}
--- more_headers
Content-Type: application/json
X-Key: $KEY
--- error_code: 200
--- response_headers
X-Request-Id: ~^echo-[0-9]+$
Content-Type: application/json
!Idempotent-Replayed
--- response_json
{"method": "POST", "path": "/echo?x=v1",
 "headers": {"x-key": "k1", "content-length": "11"},
 "body": "{\"k\": \"v1\"}"}
--- capture
ECHOED_PATH = /path


=== TEST 2: captured variable is usable
--- request
GET /echo
--- more_headers
X-Path: $ECHOED_PATH
--- response_json
{"headers": {"x-path": "/echo?x=v1"}}


=== TEST 3: error body repeats the request id
--- request
GET /error
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized", "message": "~.+"}, "requestId": "r-1"}


=== TEST 4: body checks and chunked response
--- request
GET /chunked
--- response_body
hello chunked
--- response_body_like
^hello\s+chunked$


=== TEST 5: raw request without Content-Length
--- raw_request
POST /echo HTTP/1.1
Host: 127.0.0.1
Connection: close
--- response_json
{"method": "POST", "headers": {"!content-length": null}}


=== TEST 6: chunked request body
--- raw_request eval
"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
--- response_json
{"body": "abcde", "headers": {"transfer-encoding": "chunked"}}


=== TEST 7: eval request body
--- request
PUT /echo
--- request_body eval
"z" x 70000
--- response_json
{"method": "PUT", "bodyLength": 70000}


=== TEST 8: skipped block
--- request
GET /nowhere
--- error_code: 599
--- SKIP
EOT

{
    my $events = intercept {
        run_blocks(data => $good_blocks, base_url => $base_url,
            vars => { VALUE => 'v1', KEY => 'k1' });
    };
    my @subtests = grep { $_->isa('Test2::Event::Subtest') } @$events;
    my @skips = grep { $_->isa('Test2::Event::Skip') } @$events;

    is(scalar @subtests, 7, 'run_blocks runs every block as a subtest');
    is(scalar @skips, 1, 'run_blocks skips the block marked SKIP');
    like($skips[0] ? $skips[0]->reason : '', qr/^TEST 8: skipped block/,
        'skipped block keeps its name');

    for my $subtest (@subtests) {
        ok($subtest->pass, "passing block passes: " . $subtest->name)
            or diag(explain_subtest($subtest));
    }
}

# Each block below must fail, and the failing assertion must name the
# block and the check.
my @failing = (
    ['status mismatch', "--- request\nGET /echo\n--- error_code: 201",
        qr/status code/],
    ['header value mismatch',
        "--- request\nGET /echo\n--- response_headers\nX-Request-Id: nope",
        qr/header X-Request-Id/],
    ['header regex mismatch',
        "--- request\nGET /echo\n--- response_headers\nX-Request-Id: ~^r-",
        qr/header X-Request-Id matches/],
    ['header that must be absent',
        "--- request\nGET /echo\n--- response_headers\n!X-Request-Id",
        qr/header X-Request-Id absent/],
    ['missing header',
        "--- request\nGET /echo\n--- response_headers\nAllow: ~GET",
        qr/header Allow matches/],
    ['json mismatch',
        "--- request\nGET /echo\n--- response_json\n{\"method\": \"POST\"}",
        qr/response JSON matches/],
    ['json on a non-JSON body',
        "--- request\nGET /chunked\n--- response_json\n{}",
        qr/response body is JSON/],
    ['body mismatch',
        "--- request\nGET /chunked\n--- response_body\nhello",
        qr/response body/],
    ['body regex mismatch',
        "--- request\nGET /chunked\n--- response_body_like\n^bye",
        qr/response body matches/],
    ['missing X-Request-Id',
        "--- request\nGET /no-id\n--- error_code: 200",
        qr/X-Request-Id header present/],
    ['error requestId differs from header',
        "--- request\nGET /bad-request-id\n--- error_code: 400",
        qr/requestId equals X-Request-Id/],
    ['unknown variable',
        "--- request\nGET /echo/\$NOPE\n--- error_code: 200",
        qr/unknown variable \$NOPE/],
    ['capture of a missing value',
        "--- request\nGET /echo\n--- capture\nX = /nothing",
        qr/capture: no value at "\/nothing"/],
    ['no request section',
        "--- error_code: 200",
        qr/neither a request nor a raw_request/],
);

for my $case (@failing) {
    my ($label, $sections, $message) = @$case;
    my $name = "TEST 1: $label";
    my $events = intercept {
        run_blocks(data => "=== $name\n$sections\n", base_url => $base_url);
    };
    my ($subtest) = grep { $_->isa('Test2::Event::Subtest') } @$events;

    ok($subtest && !$subtest->pass, "failing block fails: $label")
        or next;

    my @failures = grep { $_->isa('Test2::Event::Ok') && !$_->pass }
        @{ $subtest->subevents };

    ok(scalar(grep { index($_->name, "$name:") == 0 } @failures),
        "failure names the block: $label")
        or diag(explain_subtest($subtest));
    ok(scalar(grep { $_->name =~ $message } @failures),
        "failure names the check: $label")
        or diag(explain_subtest($subtest));
}

{
    my $events = intercept {
        run_blocks(base_url => $base_url, data => <<'EOT');
=== TEST 1: not run
--- request
GET /echo
--- error_code: 599

=== TEST 2: only this one
--- request
GET /echo
--- error_code: 200
--- ONLY
EOT
    };
    my @subtests = grep { $_->isa('Test2::Event::Subtest') } @$events;

    is(scalar @subtests, 1, 'ONLY limits the run to the marked block');
    ok(@subtests && $subtests[0]->pass, 'ONLY block passes');
}

{
    my $r = api('POST', '/echo', json => { a => [1] }, key => 'k',
        token => 't', headers => { 'X-Extra' => 'e' }, base_url => $base_url);

    is($r->{status}, 200, 'api returns the status');
    is($r->{json}{headers}{'content-type'}, 'application/json',
        'api sets the JSON content type');
    is($r->{json}{headers}{'x-api-key'}, 'k', 'api sends the key');
    is($r->{json}{headers}{authorization}, 'Bearer t', 'api sends the token');
    is($r->{json}{headers}{'x-extra'}, 'e', 'api sends extra headers');
    is($r->{json}{body}, '{"a":[1]}', 'api encodes the JSON body');
    like($r->{headers}{'x-request-id'}, qr/^echo-/, 'api returns headers');
}

{
    my $count = 0;
    my $value = wait_for(sub { ++$count >= 3 ? "done" : 0 },
        timeout => 5, interval => 0.01);

    is($value, 'done', 'wait_for returns the first true value');
    is($count, 3, 'wait_for polls until the value is true');

    is(wait_for(sub { 0 }, timeout => 0.2, interval => 0.05), undef,
        'wait_for returns undef on timeout');
}

done_testing();


sub explain_subtest {
    my ($subtest) = @_;

    return join "\n", map {
        ($_->pass ? 'ok' : 'not ok') . ' - ' . ($_->name // '')
    } grep { $_->isa('Test2::Event::Ok') } @{ $subtest->subevents };
}


# A minimal HTTP/1.1 server for the runner tests. Paths:
#   /echo*           200 JSON describing the request
#   /error           401 error body whose requestId equals the header
#   /bad-request-id  400 error body whose requestId differs from the header
#   /no-id           200 text without X-Request-Id
#   /chunked         200 text in chunked transfer encoding
sub serve {
    my ($listener) = @_;
    my $count = 0;

    while (my $client = $listener->accept) {
        $count++;
        my ($method, $path, $headers, $body) = read_request($client);

        if (!defined $method) {
            close $client;
            next;
        }

        my ($status, $extra, $content, $type) = respond($method, $path,
            $headers, $body, $count);

        my $head = "HTTP/1.1 $status\r\nConnection: close\r\n$extra";

        if ($path eq '/chunked') {
            print {$client} $head, "Content-Type: text/plain\r\n",
                "Transfer-Encoding: chunked\r\n\r\n",
                "6\r\nhello \r\n7\r\nchunked\r\n0\r\n\r\n";
        } else {
            print {$client} $head, "Content-Type: $type\r\n",
                'Content-Length: ', length($content), "\r\n\r\n", $content;
        }

        close $client;
    }
}


sub respond {
    my ($method, $path, $headers, $body, $count) = @_;

    if ($path =~ m{^/echo}) {
        my $json = encode_json_text({
            method => $method, path => $path, headers => $headers,
            body => $body, bodyLength => length $body,
        });
        return ('200 OK', "X-Request-Id: echo-$count\r\n", $json,
            'application/json');
    }

    if ($path eq '/error') {
        return ('401 Unauthorized', "X-Request-Id: r-1\r\n",
            '{"error":{"code":"unauthorized","message":"no key"},'
                . '"requestId":"r-1"}',
            'application/json');
    }

    if ($path eq '/bad-request-id') {
        return ('400 Bad Request', "X-Request-Id: r-2\r\n",
            '{"error":{"code":"invalid_json","message":"m"},'
                . '"requestId":"other"}',
            'application/json');
    }

    if ($path eq '/no-id') {
        return ('200 OK', '', 'plain', 'text/plain');
    }

    return ('200 OK', "X-Request-Id: r-3\r\n", 'other', 'text/plain');
}


sub read_request {
    my ($client) = @_;
    my $head = '';

    while (my $line = <$client>) {
        $head .= $line;
        last if $line eq "\r\n";
    }

    my ($method, $path) = $head =~ m{^(\S+) (\S+) HTTP/1\.1\r\n}
        or return;
    my %headers;

    for my $line (split /\r\n/, $head) {
        $headers{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
    }

    my $body = '';

    if (defined $headers{'content-length'}) {
        read $client, $body, $headers{'content-length'};
    } elsif (($headers{'transfer-encoding'} // '') eq 'chunked') {
        while (my $size_line = <$client>) {
            $size_line =~ s/\s+$//;
            my $size = hex $size_line;
            last if $size == 0;
            my $chunk;
            read $client, $chunk, $size;
            $body .= $chunk;
            <$client>;
        }
        <$client>;
    }

    return ($method, $path, \%headers, $body);
}
