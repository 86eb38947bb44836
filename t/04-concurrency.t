# Many concurrent requests: every one gets a correct reply, and no query
# waits in the module until a timeout. A lost wake-up in the PostgreSQL
# pool (the database answered but nginx did not notice) shows up here as a
# 503 or as a "timed out" line in nginx's error log.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempfile);
use Test::More;

use NotifyHub::Test;

require_stack();

plan skip_all => 'wrk is not installed' unless grep { -x "$_/wrk" }
    split /:/, $ENV{PATH};

my $tenant = create_tenant_full(signup_owner()->{token},
    name => 'Concurrency');
my $key = $tenant->{key};

my $created = api('POST', '/api/notifications', key => $key,
    json => { channel => 'EMAIL', to => { email => unique_email('load') },
              content => { subject => 'Load', body => 'Load' } });
is($created->{status}, 202, 'notification for the read load accepted');

my $id = $created->{json}{id};
my $log = "$ENV{NH_STACK_DIR}/nginx/error.log";
my $log_size = -s $log // 0;

my $before = table_count('notifications');

# wrk counts replies that are not 2xx, and the Lua script below counts the
# POST replies that are not 202.
my ($lua_fh, $lua) = tempfile('nh-wrk-XXXXXX', SUFFIX => '.lua',
    TMPDIR => 1, UNLINK => 1);
print {$lua_fh} <<LUA;
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$key"
wrk.body = '{"channel": "EMAIL", "to": {"email": "load\@example.com"},'
    .. ' "content": {"subject": "s", "body": "b"}}'
LUA
close $lua_fh;

my $base = base_url();

my $reads = `wrk -t2 -c64 -d3s -H 'X-API-Key: $key' $base/api/notifications/$id 2>&1`;
my $writes = `wrk -t2 -c64 -d2s -s $lua $base/api/notifications 2>&1`;

for my $run (['reads', $reads], ['writes', $writes]) {
    my ($name, $out) = @$run;
    my ($total) = $out =~ /(\d+) requests in/;

    ok(defined $total && $total > 0, "$name: wrk made requests")
        or diag($out);
    unlike($out, qr/Non-2xx or 3xx responses/, "$name: every reply is 2xx")
        or diag($out);
    unlike($out, qr/Socket errors:.*timeout [1-9]/,
        "$name: no request timed out") or diag($out);

    if ($name eq 'writes') {
        # wrk stops after its last replies, so every counted request is
        # stored; requests still in flight at the end may add a few rows.
        my $stored = table_count('notifications') - $before;
        cmp_ok($stored, '>=', $total, 'writes: every accepted POST stored')
            or diag($out);
    }
}

# The load leaves thousands of notifications queued for delivery. They are
# cancelled, so the worker skips them and later tests do not wait on them.
psql("UPDATE notifications SET status = 'CANCELLED'"
    . " WHERE tenant_id = \$1 AND status = 'PENDING'", $tenant->{tenant_id});

open my $fh, '<', $log or die "cannot open $log: $!\n";
seek $fh, $log_size, 0;
my @lines = grep { /notifyhub/ && /timed out|giving up|alert/ } <$fh>;
close $fh;

is(scalar(@lines), 0, 'no query timed out or waited too long')
    or diag(join '', @lines[0 .. ($#lines < 9 ? $#lines : 9)]);

done_testing();
