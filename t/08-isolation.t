# Owners see and change only their own tenants and keys. A second owner,
# and a second tenant of the same owner, try every tenant and key endpoint
# with the first owner's ids: each gets 404 and nothing changes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use NotifyHub::Test;

require_stack();

my $alice = signup_owner(name => 'Alice');
my $bob = signup_owner(name => 'Bob');

my $a1 = create_tenant_full($alice->{token}, name => 'Alice One');
my $a2 = create_tenant_full($alice->{token}, name => 'Alice Two');
my $b1 = create_tenant_full($bob->{token}, name => 'Bob One');

my $a1_key = api('POST', "/api/tenants/$a1->{tenant_id}/api-keys",
    token => $alice->{token},
    json => { name => 'second', scopes => ['notifications:read'] })->{json};

ok($a1_key && $a1_key->{id}, "Alice's tenant has a second key");



# Everything the requests below could change: the tenants of both owners
# and their keys.
sub state {
    my @owners = ($alice->{user}{id}, $bob->{user}{id});

    return rows_text('SELECT id, owner_id, name, plan, status,'
            . ' settings::text, updated_at FROM tenants'
            . ' WHERE owner_id IN ($1, $2) ORDER BY id', @owners)
        . "\n" . rows_text('SELECT a.id, a.tenant_id, a.name,'
            . ' a.scopes::text, a.status, a.expires_at FROM api_keys a'
            . ' JOIN tenants t ON t.id = a.tenant_id'
            . ' WHERE t.owner_id IN ($1, $2) ORDER BY a.id', @owners);
}


my %replacement = (name => 'Taken Over', plan => 'ENTERPRISE',
    status => 'SUSPENDED', settings => { owner => 'not you' });
my %new_key = (name => 'Stolen', scopes => ['*']);

# [who, method, path, body]: requests with ids that the caller does not own.
my @attempts = (
    ['Bob', 'GET', "/api/tenants/$a1->{tenant_id}"],
    ['Bob', 'PUT', "/api/tenants/$a1->{tenant_id}", \%replacement],
    ['Bob', 'DELETE', "/api/tenants/$a1->{tenant_id}"],
    ['Bob', 'POST', "/api/tenants/$a1->{tenant_id}/api-keys", \%new_key],
    ['Bob', 'GET', "/api/tenants/$a1->{tenant_id}/api-keys"],
    ['Bob', 'DELETE',
        "/api/tenants/$a1->{tenant_id}/api-keys/$a1->{api_key}{id}"],
    ['Bob', 'DELETE', "/api/tenants/$a1->{tenant_id}/api-keys/$a1_key->{id}"],
    ['Bob', 'DELETE',
        "/api/tenants/$b1->{tenant_id}/api-keys/$a1->{api_key}{id}"],
    ['Alice', 'DELETE',
        "/api/tenants/$a2->{tenant_id}/api-keys/$a1->{api_key}{id}"],
    ['Alice', 'DELETE',
        "/api/tenants/$a2->{tenant_id}/api-keys/$a1_key->{id}"],
    ['Alice', 'DELETE',
        "/api/tenants/$a1->{tenant_id}/api-keys/$b1->{api_key}{id}"],
    ['Alice', 'GET', "/api/tenants/$b1->{tenant_id}"],
    ['Alice', 'PUT', "/api/tenants/$b1->{tenant_id}", \%replacement],
    ['Alice', 'DELETE', "/api/tenants/$b1->{tenant_id}"],
    ['Alice', 'POST', "/api/tenants/$b1->{tenant_id}/api-keys", \%new_key],
    ['Alice', 'GET', "/api/tenants/$b1->{tenant_id}/api-keys"],
);

my %tokens = (Alice => $alice->{token}, Bob => $bob->{token});

like(state(), qr/\Q$a1_key->{id}\E/, 'the compared state holds the keys');

for my $attempt (@attempts) {
    my ($who, $method, $path, $body) = @$attempt;
    my $name = "$who: $method $path";
    my $before = state();
    my $r = api($method, $path, token => $tokens{$who},
        $body ? (json => $body) : ());

    is($r->{status}, 404, "$name is 404") or diag($r->{body});
    is($r->{json}{error}{code}, 'not_found', "$name: code not_found");
    ok(!exists $r->{json}{id} && !exists $r->{json}{data}
            && !exists $r->{json}{key},
        "$name: reply shows nothing of the resource");
    is(state(), $before, "$name: nothing changed");
}

{
    my $bob_list = api('GET', '/api/tenants?limit=100', token => $bob->{token});
    my @ids = map { $_->{id} } @{ $bob_list->{json}{data} // [] };

    is_deeply(\@ids, [$b1->{tenant_id}], "Bob's list has only Bob's tenant");

    my $alice_list = api('GET', '/api/tenants?limit=100',
        token => $alice->{token});
    my @alice_ids = sort map { $_->{id} } @{ $alice_list->{json}{data} // [] };

    is_deeply(\@alice_ids, [sort $a1->{tenant_id}, $a2->{tenant_id}],
        "Alice's list has only Alice's tenants");

    my $a2_keys = api('GET', "/api/tenants/$a2->{tenant_id}/api-keys",
        token => $alice->{token});
    my @key_ids = map { $_->{id} } @{ $a2_keys->{json}{data} // [] };

    is_deeply(\@key_ids, [$a2->{api_key}{id}],
        "the key list of Alice's second tenant has only its own key");

    is(api('GET', '/api/profile', token => $bob->{token})->{json}{email},
        $bob->{email}, "Bob's profile is Bob's");
}

# The keys that the attempts aimed at still work.
{
    my %email = (
        channel => 'EMAIL',
        to      => { email => unique_email('isolation') },
        content => { subject => 'Still here', body => 'Nothing changed' },
    );

    is(api('POST', '/api/notifications', key => $a1->{key},
        json => \%email)->{status}, 202, "Alice's key still sends");
    is(api('POST', '/api/notifications', key => $b1->{key},
        json => \%email)->{status}, 202, "Bob's key still sends");
    is(psql('SELECT status FROM api_keys WHERE id = $1', $a1_key->{id}),
        'ACTIVE', "Alice's second key is still active");
}

done_testing();
