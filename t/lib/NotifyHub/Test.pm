package NotifyHub::Test;

# Integration test harness for NotifyHub in the data-driven style of
# Test::Nginx, built on core Perl, Test::More and JSON::XS (or JSON::PP).
#
# A test file fills a hash of variables in Perl, calls
# run_blocks(vars => \%vars) and ends with __DATA__ and blocks such as
#
#     === TEST 1: missing key is rejected
#     --- request
#     POST /api/notifications
#     --- more_headers
#     Content-Type: application/json
#     --- request_body
#     {"channel": "EMAIL"}
#     --- error_code: 401
#     --- response_json
#     {"error": {"code": "unauthorized"}}
#     --- db_unchanged: notifications
#
# Block sections:
#
#   request            "METHOD /path", then optionally a blank line and a body
#   more_headers       "Name: value" lines added to the request
#   request_body       the request body (replaces a body given in "request")
#   raw_request        the request head as lines, sent as written with CRLF
#                      line ends, then a blank line and the body if present;
#                      no header is added, not even Content-Length
#   error_code         expected status code
#   response_headers   "Name: value" (exact), "Name: ~regex" or "!Name"
#                      (the header must be absent); names are case-insensitive
#   response_json      expected JSON, matched as a subset (see json_subset)
#   response_body      expected body, exactly
#   response_body_like regex the body must match (with the /s flag)
#   db_unchanged       comma-separated tables whose row counts must be the
#                      same before and after the request
#   capture            "NAME = /json/pointer" lines: store values of the
#                      response JSON as variables for later blocks
#   timeout            seconds to wait for the response (default 15)
#   no_request_id_check  skip the checks applied to every response: an
#                      X-Request-Id header, and an error body's requestId
#                      equal to that header
#   SKIP, ONLY         skip this block, or run only the blocks marked ONLY
#
# "$NAME" in any section is replaced by the variable NAME ([A-Z][A-Z0-9_]*);
# "\$NAME" keeps the text as written, and an unknown variable fails the
# block. A section header with the modifier "eval", as in
# "--- request_body eval", is evaluated as Perl code instead, without
# variable replacement; the code can call var('NAME').
#
# Built-in variables: UUID_RE and TIME_RE are regexes (without backslashes,
# so they fit into JSON strings) for a UUID version 7 and an RFC 3339 UTC
# time with milliseconds, used as "~$UUID_RE".
#
# The stack is found through the environment variables that scripts/stack
# writes to var/$NH_PROFILE/env (profile "test" by default). The file
# supplies every variable missing from %ENV.

use strict;
use warnings;

use B ();
use Cwd qw(abs_path);
use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use File::Basename qw(dirname);
use File::Temp qw(tempfile);
use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Test::More ();
use Time::HiRes qw(time sleep);

use Exporter 'import';
use POSIX ();
use Scalar::Util ();

our @EXPORT = qw(
    run_blocks var require_stack load_env base_url
    api http_request signup_owner create_tenant create_tenant_full
    unique_email psql rows_text table_count wait_for mailgun_messages stack
    start_email_worker log_since
    json_subset json_pointer decode_json_text encode_json_text
    parse_blocks
);

our $JSON;

BEGIN {
    if (eval { require JSON::XS; 1 }) {
        $JSON = JSON::XS->new->utf8->allow_nonref->canonical;
    } else {
        require JSON::PP;
        $JSON = JSON::PP->new->utf8->allow_nonref->canonical;
    }
}

our $ROOT = abs_path(dirname(__FILE__) . '/../../..');

our %BUILTIN_VARS = (
    UUID_RE => '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}'
        . '-[0-9a-f]{12}$',
    TIME_RE => '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
        . '[.][0-9]{3}Z$',
);

our %VARS = %BUILTIN_VARS;

my $unique_counter = 0;

# Section names a block may use; parse_blocks rejects any other name, so a
# misspelt expectation cannot be skipped silently.
my %KNOWN_SECTIONS = map { $_ => 1 } qw(
    request more_headers request_body raw_request error_code
    response_headers response_json response_body response_body_like
    db_unchanged capture timeout no_request_id_check SKIP ONLY
);


# ---------------------------------------------------------------------------
# Environment

sub load_env {
    my $profile = $ENV{NH_PROFILE} // 'test';
    my $file = "$ROOT/var/$profile/env";

    return 0 unless -r $file;

    open my $fh, '<', $file or die "cannot open $file: $!\n";

    while (my $line = <$fh>) {
        chomp $line;
        next if $line =~ /^\s*(#|$)/;
        next
            unless $line =~ /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

        my ($name, $value) = ($1, shell_unquote($2));
        $ENV{$name} //= $value;
    }

    close $fh;
    $ENV{NH_PROFILE} //= $profile;

    return 1;
}


# Decodes one shell word as the env file writes it: bare, 'single' quoted
# (with '\'' for a quote) or "double" quoted.
sub shell_unquote {
    my ($text) = @_;
    my $out = '';

    $text =~ s/\s+$//;

    while (length $text) {
        if ($text =~ s/^'([^']*)'//) {
            $out .= $1;
        } elsif ($text =~ s/^"((?:[^"\\]|\\.)*)"//) {
            my $part = $1;
            $part =~ s/\\([\$`"\\])/$1/g;
            $out .= $part;
        } elsif ($text =~ s/^\\(.)//) {
            $out .= $1;
        } elsif ($text =~ s/^([^'"\\\s]+)//) {
            $out .= $1;
        } else {
            last;
        }
    }

    return $out;
}


sub base_url {
    load_env() unless defined $ENV{NH_BASE_URL};

    my $url = $ENV{NH_BASE_URL};
    die "NH_BASE_URL is not set and var/"
        . ($ENV{NH_PROFILE} // 'test')
        . "/env is missing: start the stack with scripts/stack test start\n"
        unless defined $url;

    return $url;
}


# Splits a base URL into host and port and rejects hosts that are not
# loopback addresses, because the tests talk only to servers on this
# machine.
sub url_host_port {
    my ($url) = @_;

    $url =~ m{^http://([^/:]+)(?::(\d+))?(/.*)?$}
        or die "unsupported base URL \"$url\": expected http://HOST:PORT\n";

    my ($host, $port, $prefix) = ($1, $2 // 80, $3 // '');

    die "base URL \"$url\" is not on a loopback address\n"
        unless $host eq 'localhost' || $host =~ /^127\.\d+\.\d+\.\d+$/;

    $prefix =~ s{/$}{};

    return ($host, $port, $prefix);
}


# Skips the whole test file when the stack is not running, or bails out of
# the test run when CI or NH_REQUIRE_STACK is set, because there a missing
# stack is an error rather than a reason to skip.
sub require_stack {
    load_env();

    my $reason;

    if (!defined $ENV{NH_BASE_URL}) {
        $reason = 'var/' . ($ENV{NH_PROFILE} // 'test') . '/env is missing'
            . ' and NH_BASE_URL is not set';
    } else {
        my ($host, $port) = url_host_port($ENV{NH_BASE_URL});
        my $sock = IO::Socket::INET->new(
            PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
            Timeout => 3,
        );

        $reason = "nothing listens on $host:$port" unless $sock;
    }

    return 1 unless defined $reason;

    $reason = "stack not running: $reason (run scripts/stack test start)";

    if ($ENV{CI} || $ENV{NH_REQUIRE_STACK}) {
        Test::More::BAIL_OUT($reason);
    }

    Test::More::plan(skip_all => $reason);
}


# ---------------------------------------------------------------------------
# HTTP client
#
# Each request uses its own connection with "Connection: close", so the
# response ends at EOF. A raw socket client is used instead of HTTP::Tiny
# because some tests send requests that ordinary clients never produce
# (a POST without Content-Length, a hand-written chunked body).

# Sends one request and returns a hash reference:
#   status, reason, headers (lower-case name => values joined with ", "),
#   header_list ([name, value] pairs as received), body, json (the decoded
#   body, or undef when it is not JSON), json_error (the decoder's message),
#   raw_head.
# Options: method, path, headers (array of [name, value] or a hash),
# body, raw (a complete request as bytes), timeout (seconds, default 15),
# base_url.
sub http_request {
    my (%opts) = @_;
    my ($host, $port, $prefix) = url_host_port($opts{base_url} // base_url());
    my $timeout = $opts{timeout} // 15;
    my $request;

    if (defined $opts{raw}) {
        $request = $opts{raw};
    } else {
        $request = build_request($host, $port, $prefix, %opts);
    }

    my $deadline = time + $timeout;
    my $sock = IO::Socket::INET->new(
        PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
        Timeout => $timeout,
    ) or die "cannot connect to $host:$port: $@\n";

    $sock->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    $sock->blocking(0);

    write_all($sock, $request, $deadline);
    my $raw = read_all($sock, $deadline);
    close $sock;

    die "no response within ${timeout}s\n" if !defined $raw;
    die "connection closed without a response\n" if $raw eq '';

    return parse_response($raw);
}


sub build_request {
    my ($host, $port, $prefix, %opts) = @_;
    my $method = $opts{method} // 'GET';
    my $path = $prefix . ($opts{path} // '/');
    my @headers = header_pairs($opts{headers});
    my $body = $opts{body};
    my %present = map { lc $_->[0] => 1 } @headers;

    unshift @headers, ['Host', "$host:$port"] unless $present{host};
    push @headers, ['Connection', 'close'] unless $present{connection};

    if (defined $body && !$present{'content-length'}
        && !$present{'transfer-encoding'})
    {
        push @headers, ['Content-Length', length $body];
    }

    my $head = "$method $path HTTP/1.1\r\n";
    $head .= "$_->[0]: $_->[1]\r\n" for @headers;

    return $head . "\r\n" . ($body // '');
}


sub header_pairs {
    my ($headers) = @_;

    return () unless $headers;
    return map { [@$_] } @$headers if ref $headers eq 'ARRAY';
    return map { [$_, $headers->{$_}] } sort keys %$headers;
}


# Writes the whole request unless the server closes the connection first:
# a server may answer 413 and close before a large body is sent, and the
# response is still read afterwards.
sub write_all {
    my ($sock, $data, $deadline) = @_;
    my $offset = 0;
    my $select = IO::Select->new($sock);

    local $SIG{PIPE} = 'IGNORE';

    while ($offset < length $data) {
        my $left = $deadline - time;
        die "timed out while sending the request\n" if $left <= 0;
        next unless $select->can_write($left);

        my $n = syswrite($sock, $data, 65536, $offset);

        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return 0;
        }

        $offset += $n;
    }

    return 1;
}


# Reads until EOF. Returns undef on timeout, and what was read so far when
# the peer resets the connection.
sub read_all {
    my ($sock, $deadline) = @_;
    my $data = '';
    my $select = IO::Select->new($sock);

    while (1) {
        my $left = $deadline - time;
        return undef if $left <= 0;
        next unless $select->can_read($left);

        my $n = sysread($sock, my $buf, 65536);

        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return $data;
        }

        return $data if $n == 0;
        $data .= $buf;
    }
}


sub parse_response {
    my ($raw) = @_;
    my $rest = $raw;
    my ($head, $status, $reason);

    # Interim 1xx responses precede the final one.
    while (1) {
        my $end = index $rest, "\r\n\r\n";
        die "incomplete response head: " . excerpt($rest) . "\n" if $end < 0;

        $head = substr $rest, 0, $end;
        $rest = substr $rest, $end + 4;

        $head =~ m{^HTTP/\d\.\d (\d{3})(?: ([^\r\n]*))?}
            or die "invalid status line: " . excerpt($head) . "\n";
        ($status, $reason) = ($1, $2 // '');

        last unless $status =~ /^1/;
    }

    my @lines = split /\r\n/, $head;
    shift @lines;

    my (@header_list, %headers);

    for my $line (@lines) {
        my ($name, $value) = $line =~ /^([^:]+):\s*(.*?)\s*$/
            or die "invalid header line: " . excerpt($line) . "\n";
        push @header_list, [$name, $value];
        push @{ $headers{lc $name} }, $value;
    }

    my $body = $rest;

    if (($headers{'transfer-encoding'}[0] // '') =~ /chunked/i) {
        $body = decode_chunked($rest);
    } elsif (defined $headers{'content-length'}) {
        my $length = $headers{'content-length'}[0];
        $body = substr $rest, 0, $length if length $rest > $length;
    }

    my %joined = map { $_ => join(', ', @{ $headers{$_} }) } keys %headers;
    my $response = {
        status      => $status + 0,
        reason      => $reason,
        headers     => \%joined,
        header_list => \@header_list,
        body        => $body,
        raw_head    => $head,
    };

    if (length $body) {
        my $data = eval { $JSON->decode($body) };

        if ($@) {
            $response->{json_error} = $@;
            $response->{json_error} =~ s/ at \S+ line \d+.*\z//s;
        } else {
            $response->{json} = $data;
        }
    } else {
        $response->{json_error} = 'empty body';
    }

    return $response;
}


sub decode_chunked {
    my ($data) = @_;
    my $body = '';

    while ($data =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $size = hex $1;
        last if $size == 0;
        $body .= substr $data, 0, $size;
        substr($data, 0, $size + 2) = '';
    }

    return $body;
}


sub excerpt {
    my ($text, $max) = @_;

    $max //= 2000;
    $text //= '';

    return length $text > $max
        ? substr($text, 0, $max) . '... (' . length($text) . ' bytes)'
        : $text;
}


# Formats a response for diagnostics: status line, headers and body.
sub describe_response {
    my ($response) = @_;

    return "no response" unless $response;
    return $response->{raw_head} . "\n\n" . excerpt($response->{body});
}


# ---------------------------------------------------------------------------
# Helpers for flow tests

# Sends an API request. Options:
#   json    => data, encoded as the body with Content-Type application/json
#   body    => raw body bytes
#   headers => extra headers (hash or array of pairs)
#   key     => API key, sent as X-API-Key
#   token   => bearer token, sent as Authorization: Bearer
#   timeout => seconds
#   base_url => server to send the request to (default $NH_BASE_URL)
# Returns the hash described at http_request.
sub api {
    my ($method, $path, %opts) = @_;
    my @headers = header_pairs($opts{headers});
    my $body = $opts{body};

    if (exists $opts{json}) {
        $body = $JSON->encode($opts{json});
        push @headers, ['Content-Type', 'application/json']
            unless grep { lc $_->[0] eq 'content-type' } @headers;
    }

    push @headers, ['X-API-Key', $opts{key}] if defined $opts{key};
    push @headers, ['Authorization', "Bearer $opts{token}"]
        if defined $opts{token};

    return http_request(
        method   => $method,
        path     => $path,
        headers  => \@headers,
        body     => $body,
        timeout  => $opts{timeout},
        base_url => $opts{base_url},
    );
}


# Returns an email address that no earlier test run has used.
sub unique_email {
    my ($label) = @_;

    $unique_counter++;
    return sprintf '%s-%d-%d-%d@example.com', $label // 'user',
        int(time * 1000), $$, $unique_counter;
}


# Signs up a new owner and returns {email, password, name, token, user}.
# Dies with the response when the signup fails.
sub signup_owner {
    my (%opts) = @_;
    my %owner = (
        email    => $opts{email} // unique_email('owner'),
        password => $opts{password} // 'correct horse battery staple',
        name     => $opts{name} // 'Test Owner',
    );
    my $r = api('POST', '/api/auth/signup', json => \%owner);

    die "signup of $owner{email} failed: " . describe_response($r) . "\n"
        unless $r->{status} == 201 && ref $r->{json} eq 'HASH'
            && defined $r->{json}{token};

    return { %owner, token => $r->{json}{token}, user => $r->{json}{user} };
}


# Creates a tenant as the owner with this session token and returns the
# whole reply: {key, tenant_id, tenant, api_key}. Dies when it fails.
sub create_tenant_full {
    my ($token, %opts) = @_;
    my %request = (name => $opts{name} // 'Test Tenant');

    $request{plan} = $opts{plan} if defined $opts{plan};

    my $r = api('POST', '/api/tenants', token => $token, json => \%request);

    die "tenant creation failed: " . describe_response($r) . "\n"
        unless $r->{status} == 201 && ref $r->{json} eq 'HASH'
            && defined $r->{json}{apiKey}{key};

    return {
        key       => $r->{json}{apiKey}{key},
        tenant_id => $r->{json}{tenant}{id},
        tenant    => $r->{json}{tenant},
        api_key   => $r->{json}{apiKey},
    };
}


# Creates a tenant and returns its API key.
sub create_tenant {
    my ($token, %opts) = @_;

    return create_tenant_full($token, %opts)->{key};
}


# Runs SQL through psql against $NH_PG_DSN, for test assertions only.
# Placeholders $1, $2, ... become psql variables (:'p1', ...), so values
# are quoted by psql. In list context returns the rows as array
# references; in scalar context returns the first column of the first row.
# NULL becomes undef. Dies with psql's message when the statement fails.
sub psql {
    my ($sql, @params) = @_;

    load_env() unless defined $ENV{NH_PG_DSN};
    die "NH_PG_DSN is not set\n" unless defined $ENV{NH_PG_DSN};

    my @vars;

    for my $i (1 .. @params) {
        my $value = $params[$i - 1];
        die "psql parameter \$$i is undef\n" unless defined $value;
        push @vars, '-v', "p$i=$value";
    }

    $sql =~ s/\$(\d+)\b/:'p$1'/g;

    my ($fh, $file) = tempfile('nh-psql-XXXXXX', TMPDIR => 1, UNLINK => 1);
    print {$fh} $sql, ";\n";
    close $fh;

    my $null = "\x{1}NULL\x{1}";
    my @command = (
        'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
        '-F', "\x1f", '-R', "\x1e", '-P', "null=$null",
        '-d', $ENV{NH_PG_DSN}, @vars, '-f', $file,
    );

    my ($out, $err) = run_command(\@command);

    die "psql failed: $err\nSQL: $sql\n" if $? != 0;

    $out =~ s/\n\z//;

    my @rows = map {
        [map { $_ eq $null ? undef : $_ } split /\x1f/, $_, -1]
    } grep { length } split /\x1e/, $out;

    return @rows if wantarray;
    return @rows ? $rows[0][0] : undef;
}


# Runs a command without a shell and returns its standard output and
# standard error; with merge => 1 both go to the first value. $? holds the
# exit status afterwards.
sub run_command {
    my ($command, %opts) = @_;
    my ($err_fh, $err_file) = tempfile('nh-cmd-XXXXXX', TMPDIR => 1,
        UNLINK => 1);

    my $pid = open my $out_fh, '-|';
    die "cannot fork to run $command->[0]: $!\n" unless defined $pid;

    if (!$pid) {
        open STDERR, '>&', ($opts{merge} ? \*STDOUT : $err_fh)
            or POSIX::_exit(127);
        { no warnings 'exec'; exec { $command->[0] } @$command; }
        print STDERR "cannot run $command->[0]: $!\n";
        POSIX::_exit(127);
    }

    my $out = do { local $/; <$out_fh> } // '';
    close $out_fh;

    my $status = $?;

    open my $read_err, '<', $err_file or die "cannot read $err_file: $!\n";
    my $err = do { local $/; <$read_err> } // '';
    close $read_err;

    $? = $status;

    return ($out, $err);
}


# Returns the rows of a query as one string, to compare two states: one
# line per row, "|" between values, "(null)" for NULL.
sub rows_text {
    my @rows = psql(@_);

    return join "\n", map { join '|', map { $_ // '(null)' } @$_ } @rows;
}


sub table_count {
    my ($table) = @_;

    die "invalid table name \"$table\"\n"
        unless $table =~ /^[a-z_][a-z0-9_]*$/;

    return scalar psql("SELECT count(*) FROM $table");
}


# Returns the text of $file from byte $offset on, '' when it cannot be
# read: what a log gained since its size was $offset.
sub log_since {
    my ($file, $offset) = @_;

    open my $fh, '<', $file or return '';
    seek $fh, $offset, 0;
    my $text = do { local $/; <$fh> } // '';
    close $fh;

    return $text;
}


# Starts build/notifyhub-email in the background, in addition to the
# stack's workers, with the test profiles' retry settings and its output
# appended to $log. %env sets more variables, and a variable given as
# undef is removed from the worker's environment. Returns the pid.
sub start_email_worker {
    my ($log, %env) = @_;
    my $pid = fork // die "cannot fork: $!\n";

    if (!$pid) {
        open STDOUT, '>>', $log or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
        @ENV{qw(NH_MAX_ATTEMPTS NH_RETRY_BASE_MS NH_RETRY_MAX_MS
                NH_LEASE_SECONDS)} = (3, 200, 1000, 12);

        for my $name (keys %env) {
            if (defined $env{$name}) {
                $ENV{$name} = $env{$name};
            } else {
                delete $ENV{$name};
            }
        }

        exec "$ROOT/build/notifyhub-email" or POSIX::_exit(1);
    }

    return $pid;
}


# Calls $check every `interval` seconds (default 0.25) until it returns a
# true value or `timeout` seconds (default 20) pass. Returns the true value,
# or undef on timeout. Exceptions from $check are retried until the
# timeout and the last one is shown with diag.
sub wait_for {
    my ($check, %opts) = @_;
    my $timeout = $opts{timeout} // 20;
    my $interval = $opts{interval} // 0.25;
    my $deadline = time + $timeout;
    my $error;

    while (1) {
        my $value = eval { $check->() };

        $error = $@ if $@;
        return $value if !$@ && $value;
        last if time >= $deadline;
        sleep $interval;
    }

    Test::More::diag("wait_for: last error: $error") if defined $error;

    return undef;
}


# Returns the messages the fake Mailgun accepted, oldest first, from its
# GET /messages. Option `to` keeps the messages with that recipient address.
# Each message has id, from, to, subject, text, html, variables (the v:
# fields without the prefix), options and receivedAt.
sub mailgun_messages {
    my (%opts) = @_;

    load_env() unless defined $ENV{NH_MAILGUN_URL};
    die "NH_MAILGUN_URL is not set\n" unless defined $ENV{NH_MAILGUN_URL};

    my $path = '/messages';

    if (defined $opts{to}) {
        my $to = $opts{to};
        $to =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ge;
        $path .= "?to=$to";
    }

    my $r = http_request(
        method   => 'GET',
        path     => $path,
        base_url => $ENV{NH_MAILGUN_URL},
    );

    die "GET $path on the fake Mailgun returned $r->{status}: "
        . excerpt($r->{body}) . "\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH'
            && ref $r->{json}{items} eq 'ARRAY';

    return @{ $r->{json}{items} };
}


# Runs scripts/stack $NH_PROFILE @args. Returns true when it exits with 0;
# otherwise shows its output with diag and returns false.
sub stack {
    my (@args) = @_;

    load_env();

    my $profile = $ENV{NH_PROFILE} // 'test';
    my ($output) = run_command(["$ROOT/scripts/stack", $profile, @args],
        merge => 1);
    my $status = $?;

    Test::More::note("scripts/stack $profile @args:\n$output");

    if ($status != 0) {
        Test::More::diag("scripts/stack $profile @args exited with status "
            . ($status >> 8) . ":\n$output");
        return 0;
    }

    return 1;
}


# ---------------------------------------------------------------------------
# JSON

sub decode_json_text {
    my ($text) = @_;

    return $JSON->decode($text);
}


sub encode_json_text {
    my ($data) = @_;

    return $JSON->encode($data);
}


# Returns the value at an RFC 6901 JSON pointer ("/a/0/b"), or undef.
sub json_pointer {
    my ($data, $pointer) = @_;

    return $data if $pointer eq '';

    for my $token (split m{/}, substr($pointer, 1), -1) {
        $token =~ s/~1/\//g;
        $token =~ s/~0/~/g;

        if (ref $data eq 'HASH') {
            return undef unless exists $data->{$token};
            $data = $data->{$token};
        } elsif (ref $data eq 'ARRAY') {
            return undef unless $token =~ /^\d+$/ && $token < @$data;
            $data = $data->[$token];
        } else {
            return undef;
        }
    }

    return $data;
}


sub json_type {
    my ($value) = @_;

    return 'null' unless defined $value;
    return 'boolean'
        if Scalar::Util::blessed($value) && $value->isa('JSON::PP::Boolean');
    return 'object' if ref $value eq 'HASH';
    return 'array' if ref $value eq 'ARRAY';

    # Since Perl 5.36, stringifying a number sets only the private POK
    # flag, so the public flag still tells a number from a string.
    my $flags = B::svref_2object(\$value)->FLAGS;

    return 'string' if $flags & B::SVf_POK;
    return 'number' if $flags & (B::SVf_IOK | B::SVf_NOK);
    return 'string';
}


sub show_value {
    my ($value) = @_;
    my $type = json_type($value);

    return 'null' if $type eq 'null';
    return $value ? 'true' : 'false' if $type eq 'boolean';
    return "$value" if $type eq 'number';

    my $text = eval { $JSON->encode($value) } // "$value";

    return excerpt($text, 300);
}


# Matches decoded JSON against an expected value and returns the list of
# mismatches (empty when it matches). The rules:
#   - an object matches when every expected key matches; extra keys in the
#     actual object are allowed, but the expected empty object {} matches
#     only an empty object; an expected key "!name" requires the key "name"
#     to be absent (its value is ignored);
#   - an array matches element by element and must have the same length;
#     a last expected element "..." allows more actual elements, and a
#     first expected element "<any order>" matches the elements in any
#     order (each expected element against a different actual one);
#   - a string starting with "~" is a regex the actual string or number must
#     match; "~~" stands for one literal "~";
#   - other values match by type and value: numbers numerically, strings
#     exactly, true/false only booleans, null only null.
# The path of each mismatch is written like $.error.details[0].field.
sub json_subset {
    my ($actual, $expected, $path) = @_;

    $path //= '$';

    my $etype = json_type($expected);
    my $atype = json_type($actual);

    if ($etype eq 'string' && $expected =~ /^~(?!~)(.*)$/s) {
        my $regex = $1;

        return "$path: expected a string matching /$regex/, got "
            . show_value($actual)
            unless $atype eq 'string' || $atype eq 'number';

        my $ok = eval { "$actual" =~ /$regex/ };

        return "$path: invalid regex /$regex/: $@" if $@;
        return "$path: expected a string matching /$regex/, got "
            . show_value($actual)
            unless $ok;

        return ();
    }

    if ($etype eq 'string') {
        my $literal = $expected;
        $literal =~ s/^~~/~/;

        return "$path: expected \"$literal\", got " . show_value($actual)
            unless $atype eq 'string' && $actual eq $literal;

        return ();
    }

    return "$path: expected $etype " . show_value($expected) . ", got "
        . show_value($actual)
        unless $atype eq $etype;

    if ($etype eq 'null') {
        return ();
    }

    if ($etype eq 'boolean') {
        return "$path: expected " . show_value($expected) . ", got "
            . show_value($actual)
            unless !!$expected == !!$actual;

        return ();
    }

    if ($etype eq 'number') {
        return "$path: expected $expected, got $actual"
            unless $expected == $actual;

        return ();
    }

    if ($etype eq 'object') {
        return object_subset($actual, $expected, $path);
    }

    return array_subset($actual, $expected, $path);
}


sub object_subset {
    my ($actual, $expected, $path) = @_;
    my @errors;

    if (!%$expected && %$actual) {
        return "$path: expected an empty object, got "
            . show_value($actual);
    }

    for my $key (sort keys %$expected) {
        if ($key =~ /^!(.+)$/s) {
            push @errors, "$path.$1: expected no such key, got "
                . show_value($actual->{$1})
                if exists $actual->{$1};
            next;
        }

        if (!exists $actual->{$key}) {
            push @errors, "$path.$key: missing (expected "
                . show_value($expected->{$key}) . ")";
            next;
        }

        push @errors,
            json_subset($actual->{$key}, $expected->{$key}, "$path.$key");
    }

    return @errors;
}


sub array_subset {
    my ($actual, $expected, $path) = @_;
    my @want = @$expected;
    my $any_order = 0;
    my $open_end = 0;

    if (@want && json_type($want[0]) eq 'string'
        && $want[0] eq '<any order>')
    {
        shift @want;
        $any_order = 1;
    }

    if (@want && json_type($want[-1]) eq 'string' && $want[-1] eq '...') {
        pop @want;
        $open_end = 1;
    }

    if ($open_end ? @$actual < @want : @$actual != @want) {
        return "$path: expected " . ($open_end ? 'at least ' : '')
            . scalar(@want) . " elements, got " . scalar(@$actual) . ": "
            . show_value($actual);
    }

    if (!$any_order) {
        return map { json_subset($actual->[$_], $want[$_], "$path\[$_\]") }
            0 .. $#want;
    }

    return () if match_any_order($actual, \@want, 0, {});

    return "$path: no assignment of the actual elements "
        . show_value($actual) . " matches the expected elements "
        . show_value(\@want) . " in any order";
}


# Finds, by backtracking, a distinct actual element for every expected
# element starting at index $i.
sub match_any_order {
    my ($actual, $want, $i, $used) = @_;

    return 1 if $i == @$want;

    for my $j (0 .. $#$actual) {
        next if $used->{$j};
        next if json_subset($actual->[$j], $want->[$i], '$');

        local $used->{$j} = 1;
        return 1 if match_any_order($actual, $want, $i + 1, $used);
    }

    return 0;
}


# ---------------------------------------------------------------------------
# Data-driven blocks

sub var {
    my ($name) = @_;

    die "unknown variable \$$name\n" unless exists $VARS{$name};
    return $VARS{$name};
}


sub interpolate {
    my ($text) = @_;

    return undef unless defined $text;

    $text =~ s{(\\?)\$([A-Z][A-Z0-9_]*)}{
        $1 ? "\\\$$2" : var($2)
    }ge;

    return $text;
}


# "--- name", "--- name modifier..." or "--- name: one-line value".
my $SECTION_HEADER = qr/
    ^---\s*
    ([A-Za-z_]+)                # section name
    ((?:\s+[a-z_]+)*)           # modifiers such as "eval"
    \s*(?::\s*(.*?))?\s*$       # one-line value after a colon
/x;


# Parses blocks from the text after __DATA__. Returns a list of
# {name, line, sections => {name => {value, modifiers, line}}}.
sub parse_blocks {
    my ($text) = @_;
    my (@blocks, $block, $section);
    my $line_number = 0;

    for my $line (split /\n/, $text, -1) {
        $line_number++;

        if ($line =~ /^===\s*(.*?)\s*$/) {
            $block = { name => $1, line => $line_number, sections => {} };
            push @blocks, $block;
            undef $section;
            next;
        }

        next unless $block;

        if ($line =~ $SECTION_HEADER) {
            my ($name, $modifiers, $inline) = ($1, $2, $3);

            die "line $line_number: unknown section \"$name\" in block "
                . "\"$block->{name}\"\n"
                unless $KNOWN_SECTIONS{$name};
            die "line $line_number: section \"$name\" appears twice in block "
                . "\"$block->{name}\"\n"
                if $block->{sections}{$name};

            $section = {
                value     => defined $inline ? $inline : '',
                inline    => defined $inline,
                modifiers => { map { $_ => 1 } split ' ', $modifiers },
                line      => $line_number,
            };
            $block->{sections}{$name} = $section;
            next;
        }

        next unless $section;

        if ($section->{inline}) {
            next if $line =~ /^\s*$/;
            die "line $line_number: text after the one-line section in block "
                . "\"$block->{name}\"\n";
        }

        $section->{value} .= ($section->{value} eq '' && !$section->{started}
            ? '' : "\n") . $line;
        $section->{started} = 1;
    }

    for my $b (@blocks) {
        for my $s (values %{ $b->{sections} }) {
            $s->{value} =~ s/\A(?:[ \t]*\n)+//;
            $s->{value} =~ s/\s+\z//;
            delete $s->{started};
            delete $s->{inline};
        }
    }

    return @blocks;
}


sub read_data {
    my ($package) = @_;
    my $fh = do { no strict 'refs'; \*{"${package}::DATA"} };

    die "no __DATA__ section in package $package\n"
        unless defined fileno $fh;

    local $/;
    return scalar <$fh>;
}


# Runs the blocks after the caller's __DATA__ (or options `data`), each as a
# subtest named after the block. Options:
#   vars     => {NAME => value}   variables for "$NAME"
#   data     => text              blocks to run instead of __DATA__
#   base_url => url               server to send requests to
sub run_blocks {
    my (%opts) = @_;
    my $package = caller;
    my $text = $opts{data} // read_data($package);
    my @blocks = parse_blocks($text);

    %VARS = (%BUILTIN_VARS, %{ $opts{vars} || {} });

    if (grep { $_->{sections}{ONLY} } @blocks) {
        @blocks = grep { $_->{sections}{ONLY} } @blocks;
        Test::More::diag('running only the blocks marked ONLY');
    }

    for my $block (@blocks) {
        if ($block->{sections}{SKIP}) {
            SKIP: {
                Test::More::skip("$block->{name}: marked SKIP", 1);
            }
            next;
        }

        Test::More::subtest($block->{name}, sub {
            run_block($block, \%opts);
        });
    }

    return 1;
}


sub section_value {
    my ($block, $name) = @_;
    my $section = $block->{sections}{$name};

    return undef unless $section;

    if ($section->{modifiers}{eval}) {
        my $value = eval "package main; no strict; $section->{value}";
        die "eval of section \"$name\" failed: $@" if $@;
        return $value;
    }

    return interpolate($section->{value});
}


sub run_block {
    my ($block, $opts) = @_;
    my $name = $block->{name};
    my $response;

    my $ok = eval {
        $response = run_block_checks($block, $opts);
        1;
    };

    if (!$ok) {
        my $error = $@;
        $error =~ s/\s+$//;
        Test::More::fail("$name: $error");
    }

    if (!Test::More->builder->is_passing && $response) {
        Test::More::diag("$name: response was:\n"
            . describe_response($response));
    }

    Test::More::done_testing();
}


sub run_block_checks {
    my ($block, $opts) = @_;
    my $name = $block->{name};
    my $s = $block->{sections};
    my %request = (timeout => section_value($block, 'timeout') // 15);

    $request{base_url} = $opts->{base_url} if defined $opts->{base_url};

    if ($s->{raw_request}) {
        $request{raw} = raw_request_bytes(section_value($block, 'raw_request'),
            $s->{raw_request}{modifiers}{eval});
    } elsif ($s->{request}) {
        my $text = section_value($block, 'request');
        my ($line, $body) = split /\n[ \t]*\n/, $text, 2;

        $line =~ /^\s*([A-Z]+)\s+(\S+)\s*$/
            or die "request line \"$line\" is not \"METHOD /path\"\n";
        @request{qw(method path body)} = ($1, $2, $body);

        $request{body} = section_value($block, 'request_body')
            if $s->{request_body};
        $request{headers} = [parse_header_lines(
            section_value($block, 'more_headers') // '')];
    } else {
        die "block has neither a request nor a raw_request section\n";
    }

    my @tables = map { s/^\s+|\s+$//gr }
        split /,/, section_value($block, 'db_unchanged') // '';
    my %before = map { $_ => table_count($_) } @tables;

    my $response = http_request(%request);

    check_status($block, $response);
    check_request_id($block, $response) unless $s->{no_request_id_check};
    check_headers($block, $response) if $s->{response_headers};
    check_json($block, $response) if $s->{response_json};

    if ($s->{response_body}) {
        Test::More::is($response->{body},
            section_value($block, 'response_body'), "$name: response body");
    }

    if ($s->{response_body_like}) {
        my $regex = section_value($block, 'response_body_like');
        Test::More::like($response->{body}, qr/$regex/s,
            "$name: response body matches");
    }

    for my $table (@tables) {
        Test::More::is(table_count($table), $before{$table},
            "$name: row count of $table unchanged");
    }

    capture_vars($block, $response) if $s->{capture};

    return $response;
}


# Joins the raw request's head lines with CRLF; the body follows the first
# blank line unchanged. An eval section is sent exactly as returned.
sub raw_request_bytes {
    my ($text, $is_eval) = @_;

    return $text if $is_eval;

    my ($head, $body) = split /\n[ \t]*\n/, $text, 2;

    return join("\r\n", split /\n/, $head) . "\r\n\r\n" . ($body // '');
}


sub parse_header_lines {
    my ($text) = @_;
    my @headers;

    for my $line (split /\n/, $text) {
        next if $line =~ /^\s*$/;
        $line =~ /^\s*([^:\s]+)\s*:\s?(.*?)\s*$/
            or die "header line \"$line\" is not \"Name: value\"\n";
        push @headers, [$1, $2];
    }

    return @headers;
}


sub check_status {
    my ($block, $response) = @_;
    my $expected = section_value($block, 'error_code');

    return unless defined $expected;

    Test::More::is($response->{status}, $expected,
        "$block->{name}: status code");
}


# Every response carries X-Request-Id, and an error body repeats it as
# requestId.
sub check_request_id {
    my ($block, $response) = @_;
    my $name = $block->{name};
    my $id = $response->{headers}{'x-request-id'};

    Test::More::ok(defined $id && length $id,
        "$name: X-Request-Id header present");

    my $json = $response->{json};

    return unless ref $json eq 'HASH' && exists $json->{error};

    Test::More::is($json->{requestId}, $id,
        "$name: error body requestId equals X-Request-Id");
}


sub check_headers {
    my ($block, $response) = @_;
    my $name = $block->{name};
    my $text = section_value($block, 'response_headers');

    for my $line (split /\n/, $text) {
        next if $line =~ /^\s*$/;

        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            my $header = $1;
            Test::More::ok(!exists $response->{headers}{lc $header},
                "$name: header $header absent")
                or Test::More::diag("  got $header: "
                    . $response->{headers}{lc $header});
            next;
        }

        my ($header, $want) = $line =~ /^\s*([^:\s]+)\s*:\s?(.*?)\s*$/
            or die "response_headers line \"$line\" is not \"Name: value\","
                . " \"Name: ~regex\" or \"!Name\"\n";
        my $got = $response->{headers}{lc $header};

        if ($want =~ /^~(.*)$/) {
            my $regex = $1;
            Test::More::like($got // '', qr/$regex/,
                "$name: header $header matches /$regex/")
                or Test::More::diag(defined $got ? ''
                    : "  header $header is missing");
        } else {
            Test::More::is($got, $want, "$name: header $header");
        }
    }
}


sub check_json {
    my ($block, $response) = @_;
    my $name = $block->{name};
    my $text = section_value($block, 'response_json');
    my $expected = ref $text ? $text
        : eval { $JSON->decode($text) };

    die "response_json section is not valid JSON: $@" unless defined $expected
        || $text eq 'null';

    if (!exists $response->{json}) {
        Test::More::fail("$name: response body is JSON");
        Test::More::diag("  $response->{json_error}");
        return;
    }

    my @errors = json_subset($response->{json}, $expected);

    Test::More::ok(!@errors, "$name: response JSON matches")
        or Test::More::diag(join '', map { "  $_\n" } @errors);
}


sub capture_vars {
    my ($block, $response) = @_;
    my $text = section_value($block, 'capture');

    for my $line (split /\n/, $text) {
        next if $line =~ /^\s*$/;

        my ($var, $pointer) = $line =~ /^\s*([A-Z][A-Z0-9_]*)\s*=\s*(\S*)\s*$/
            or die "capture line \"$line\" is not \"NAME = /json/pointer\"\n";
        my $value = json_pointer($response->{json}, $pointer);

        die "capture: no value at \"$pointer\" in the response JSON\n"
            unless defined $value;

        $VARS{$var} = $value;
    }
}


1;
