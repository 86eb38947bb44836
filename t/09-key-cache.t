# The shared-memory API-key cache: a change to a key or its tenant reaches
# every nginx worker process quickly, unknown keys stay unknown, and
# last_used_at is written in batches. Each change is made in the database
# directly, as any other nginx node or an operator could make it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Time::HiRes qw(time sleep);
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Key cache');
my $key = $tenant->{key};
my ($key_id) = psql('SELECT id FROM api_keys WHERE tenant_id = $1',
    $tenant->{tenant_id});
$key_id = $key_id->[0];

my %email = (
    channel => 'EMAIL',
    to      => { email => unique_email('cache') },
    content => { subject => 'Cache', body => 'Cache' },
);

sub send_one {
    my ($k) = @_;
    return api('POST', '/api/notifications', key => $k // $key,
        json => \%email);
}

# nginx runs two worker processes and a keep-alive-free client lands on
# either, so a change is only seen everywhere when several requests in a
# row agree.
sub all_agree {
    my ($status, $code, $k) = @_;

    for (1 .. 6) {
        my $r = send_one($k);
        return 0 if $r->{status} != $status;
        return 0 if defined $code
            && ($r->{json}{error}{code} // '') ne $code;
    }

    return 1;
}

# Waits for every worker to agree and returns the seconds it took.
sub seconds_until {
    my ($status, $code, $k) = @_;
    my $start = time;

    return undef unless wait_for(sub { all_agree($status, $code, $k) },
        timeout => 5, interval => 0.05);

    return time - $start;
}

ok(all_agree(202), 'key accepted by every worker before any change');

# --- revocation -------------------------------------------------------------

psql("UPDATE api_keys SET status = 'REVOKED' WHERE id = \$1", $key_id);
my $revoked = seconds_until(401, 'api_key_revoked');
ok(defined $revoked, 'revoked key is rejected with api_key_revoked');
cmp_ok($revoked // 99, '<', 2, 'revocation reaches every worker quickly');
note(sprintf 'revocation took %.3f s', $revoked // -1);

psql("UPDATE api_keys SET status = 'ACTIVE' WHERE id = \$1", $key_id);
ok(defined seconds_until(202), 'reactivated key is accepted again');

# --- tenant suspension --------------------------------------------------------

psql("UPDATE tenants SET status = 'SUSPENDED' WHERE id = \$1",
    $tenant->{tenant_id});
ok(defined seconds_until(403, 'forbidden'),
    'key of a suspended tenant is rejected with forbidden');

psql("UPDATE tenants SET status = 'ACTIVE' WHERE id = \$1",
    $tenant->{tenant_id});
ok(defined seconds_until(202), 'key works again after the tenant is active');

# --- scopes -------------------------------------------------------------------

psql("UPDATE api_keys SET scopes = ARRAY['notifications:read']"
    . " WHERE id = \$1", $key_id);
ok(defined seconds_until(403, 'forbidden'),
    'read-only key cannot send notifications');

{
    my $before = table_count('notifications');
    my $r = send_one();

    is($r->{status}, 403, 'read-only key gets 403 on send');
    is_deeply($r->{json}{error}{details},
        [{ field => 'notifications:write', issue => 'missing_scope' }],
        'details name the missing scope');
    is(table_count('notifications'), $before, 'nothing stored on 403');

    my $fake = '01a242c7-0000-7000-8000-000000000000';
    my $get = api('GET', "/api/notifications/$fake", key => $key);
    is($get->{status}, 404, 'read-only key may read notifications');
}

psql("UPDATE api_keys SET scopes = ARRAY['*'] WHERE id = \$1", $key_id);
ok(defined seconds_until(202), 'key with every scope sends again');

# --- expiry -------------------------------------------------------------------

psql("UPDATE api_keys SET expires_at = now() + interval '2 seconds'"
    . " WHERE id = \$1", $key_id);
ok(defined seconds_until(202), 'key is accepted before it expires');
ok(defined wait_for(sub { all_agree(401, 'api_key_expired') },
        timeout => 6, interval => 0.2),
    'key is rejected with api_key_expired once the time has passed');

psql("UPDATE api_keys SET expires_at = NULL WHERE id = \$1", $key_id);
ok(defined seconds_until(202), 'key without expiry is accepted again');

# --- unknown keys -------------------------------------------------------------

{
    my $unknown = 'nh_' . ('A' x 43);
    my $before = table_count('notifications');

    for my $n (1 .. 3) {
        my $r = send_one($unknown);
        is($r->{status}, 401, "unknown key rejected, try $n");
        is($r->{json}{error}{code}, 'unauthorized',
            "unknown key has code unauthorized, try $n");
    }

    is(table_count('notifications'), $before, 'unknown key stores nothing');
}

# --- last_used_at -------------------------------------------------------------

ok(wait_for(sub {
        psql('SELECT last_used_at IS NOT NULL FROM api_keys WHERE id = $1',
            $key_id) eq 't';
    }, timeout => 15),
    'last_used_at is written within a few seconds of use');

# --- reload -------------------------------------------------------------------

{
    my $dir = "$ENV{NH_STACK_DIR}/nginx";
    my ($out) = NotifyHub::Test::run_command(['/usr/sbin/nginx', '-p', $dir,
        '-c', "$dir/nginx.conf", '-e', "$dir/error.log", '-s', 'reload'],
        merge => 1);
    is($?, 0, 'nginx reloads') or diag($out);

    ok(defined seconds_until(202), 'key works after a reload');
}

# --- tenant deletion ------------------------------------------------------------

psql('DELETE FROM tenants WHERE id = $1', $tenant->{tenant_id});
ok(defined seconds_until(401, 'unauthorized'),
    'key of a deleted tenant is rejected with unauthorized');

done_testing();
