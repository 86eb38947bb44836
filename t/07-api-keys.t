# POST, GET and DELETE /api/tenants/{id}/api-keys: keys shown once and
# stored as hashes, every rejected input (with the tenant's keys compared
# before and after), the limit of 100 active keys, and what revocation,
# expiry, scopes and a suspended tenant do to POST /api/notifications.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Keys Tenant');
my $run = int(time) . "-$$";

my %vars = (
    RUN        => $run,
    TOKEN      => $owner->{token},
    TENANT_ID  => $tenant->{tenant_id},
    DEFAULT_ID => $tenant->{api_key}{id},
);

run_blocks(vars => \%vars);



sub keys_state {
    my ($tenant_id) = @_;

    return rows_text('SELECT id, name, prefix, encode(key_hash, $2),'
        . ' scopes::text, status, expires_at FROM api_keys'
        . ' WHERE tenant_id = $1 ORDER BY id', $tenant_id, 'hex');
}


sub create_key {
    my ($token, $tenant_id, $body) = @_;

    return api('POST', "/api/tenants/$tenant_id/api-keys", token => $token,
        json => $body);
}


# Formats a Unix time as RFC 3339 in UTC with milliseconds.
sub rfc3339 {
    my ($t) = @_;

    return strftime('%Y-%m-%dT%H:%M:%S', gmtime int $t)
        . sprintf('.%03dZ', ($t - int $t) * 1000);
}


my %email = (
    channel => 'EMAIL',
    to      => { email => unique_email('keys') },
    content => { subject => 'Key check', body => 'Checking a key' },
);


# --- Creation ---------------------------------------------------------------

{
    my $expires = rfc3339(time + 86400);
    my $r = create_key($owner->{token}, $tenant->{tenant_id},
        { name => 'Reporting', scopes => ['notifications:read'],
          expiresAt => $expires, unknown => 'ignored' });

    is($r->{status}, 201, 'key creation is 201') or diag($r->{body});

    my $k = $r->{json} // {};
    my @errors = json_subset($k, {
        id => '~' . var('UUID_RE'), name => 'Reporting',
        prefix => '~^nh_[A-Za-z0-9_-]{8}$', scopes => ['notifications:read'],
        status => 'ACTIVE', expiresAt => $expires, lastUsedAt => undef,
        createdAt => '~' . var('TIME_RE'), key => '~^nh_[A-Za-z0-9_-]{43}$',
        '!keyHash' => undef, '!unknown' => undef,
    });
    ok(!@errors, 'created key has every field') or diag(join "\n", @errors);
    is(index($k->{key} // '', $k->{prefix} // 'none'), 0,
        'key starts with its prefix');

    my ($row) = psql('SELECT encode(key_hash, $2), prefix, name, status'
        . ' FROM api_keys WHERE id = $1', $k->{id}, 'hex');
    is($row->[0], sha256_hex($k->{key} // ''),
        'stored hash is SHA-256 of the key');
    is(psql('SELECT count(*) FROM api_keys WHERE tenant_id = $1'
            . ' AND position(convert_to($2, $3) in key_hash) > 0',
            $tenant->{tenant_id}, $k->{key}, 'UTF8'),
        0, 'the key itself is not stored');

    my $list = api('GET', "/api/tenants/$tenant->{tenant_id}/api-keys",
        token => $owner->{token});
    my ($listed) = grep { $_->{id} eq $k->{id} } @{ $list->{json}{data} };
    ok($listed && !exists $listed->{key}, 'listed key shows no secret');
}

{
    my $r = create_key($owner->{token}, $tenant->{tenant_id},
        { name => 'Offset', scopes => ['*'],
          expiresAt => '2099-06-01T12:00:00.5+02:00' });

    is($r->{status}, 201, 'expiresAt with an offset is accepted')
        or diag($r->{body});
    is($r->{json}{expiresAt}, '2099-06-01T10:00:00.500Z',
        'expiresAt is stored in UTC');

    my @all = qw(notifications:read notifications:write templates:read
        templates:write recipients:read recipients:write webhooks:read
        webhooks:write metrics:read *);
    my $every = create_key($owner->{token}, $tenant->{tenant_id},
        { name => 'Every scope', scopes => \@all });

    is($every->{status}, 201, 'every known scope at once is accepted')
        or diag($every->{body});
    is_deeply($every->{json}{scopes}, \@all, 'scopes keep their order');

    my $never = create_key($owner->{token}, $tenant->{tenant_id},
        { name => 'n' x 100, scopes => ['metrics:read'], expiresAt => undef });
    is($never->{status}, 201, 'name of 100 characters, null expiresAt')
        or diag($never->{body});
    is($never->{json}{expiresAt}, undef, 'null expiresAt never expires');
}


# --- Rejected creations -----------------------------------------------------

{
    my %valid = (name => 'Valid', scopes => ['notifications:write']);
    my @eleven = ('notifications:read') x 11;

    like(keys_state($tenant->{tenant_id}), qr/\Q$tenant->{api_key}{id}\E/,
        'the compared state holds the keys');

    my @rejected = (
        ['empty object', {},
            ['<any order>', { field => 'name', issue => 'required' },
             { field => 'scopes', issue => 'required' }]],
        ['missing name', { scopes => ['*'] },
            [{ field => 'name', issue => 'required' }]],
        ['empty name', { %valid, name => '' },
            [{ field => 'name', issue => 'required' }]],
        ['name of 101 characters', { %valid, name => 'n' x 101 },
            [{ field => 'name', issue => 'too_long' }]],
        ['number as name', { %valid, name => 5 },
            [{ field => 'name', issue => 'invalid_type' }]],
        ['missing scopes', { name => 'x' },
            [{ field => 'scopes', issue => 'required' }]],
        ['empty scopes', { %valid, scopes => [] },
            [{ field => 'scopes', issue => 'required' }]],
        ['string as scopes', { %valid, scopes => '*' },
            [{ field => 'scopes', issue => 'invalid_type' }]],
        ['object as scopes', { %valid, scopes => { '*' => 1 } },
            [{ field => 'scopes', issue => 'invalid_type' }]],
        ['unknown scope', { %valid,
            scopes => ['notifications:read', 'metrics:read', 'admin'] },
            [{ field => 'scopes[2]', issue => 'invalid_value' }]],
        ['upper-case scope', { %valid, scopes => ['NOTIFICATIONS:READ'] },
            [{ field => 'scopes[0]', issue => 'invalid_value' }]],
        ['number in scopes', { %valid, scopes => ['*', 3] },
            [{ field => 'scopes[1]', issue => 'invalid_type' }]],
        ['duplicate scope',
            { %valid, scopes => ['metrics:read', '*', 'metrics:read'] },
            [{ field => 'scopes[2]', issue => 'duplicate' }]],
        ['eleven scopes', { %valid, scopes => \@eleven },
            [{ field => 'scopes', issue => 'too_long' }]],
        ['expiresAt in the past',
            { %valid, expiresAt => '2020-01-01T00:00:00.000Z' },
            [{ field => 'expiresAt', issue => 'in_past' }]],
        ['expiresAt a second ago', { %valid, expiresAt => rfc3339(time - 1) },
            [{ field => 'expiresAt', issue => 'in_past' }]],
        ['expiresAt that is not a time', { %valid, expiresAt => 'tomorrow' },
            [{ field => 'expiresAt', issue => 'invalid_format' }]],
        ['expiresAt without a zone',
            { %valid, expiresAt => '2099-01-01T00:00:00' },
            [{ field => 'expiresAt', issue => 'invalid_format' }]],
        ['number as expiresAt', { %valid, expiresAt => 4102444800 },
            [{ field => 'expiresAt', issue => 'invalid_type' }]],
        ['every field invalid',
            { name => '', scopes => ['x'], expiresAt => 'soon' },
            ['<any order>', { field => 'name', issue => 'required' },
             { field => 'scopes[0]', issue => 'invalid_value' },
             { field => 'expiresAt', issue => 'invalid_format' }]],
    );

    for my $case (@rejected) {
        my ($name, $body, $details) = @$case;
        my $before = keys_state($tenant->{tenant_id});
        my $r = create_key($owner->{token}, $tenant->{tenant_id}, $body);

        is($r->{status}, 400, "key with $name is 400") or diag($r->{body});
        my @errors = json_subset($r->{json}, { error => {
            code => 'invalid_request', message => '~.+',
            details => $details }, '!key' => undef });
        ok(!@errors, "key with $name details") or diag(join "\n", @errors);
        is(keys_state($tenant->{tenant_id}), $before,
            "key with $name stores nothing");
    }
}


# --- Limit of 100 active keys -----------------------------------------------

{
    my $o = signup_owner();
    my $t = create_tenant_full($o->{token}, name => 'Full');
    my $id = $t->{tenant_id};
    my $expiry = time + 8;
    my $short = create_key($o->{token}, $id,
        { name => 'short-lived', scopes => ['*'],
          expiresAt => rfc3339($expiry) });
    my @statuses;

    is($short->{status}, 201, 'short-lived key is created');

    # The default key and the short-lived one count: 98 more make 100.
    for my $i (1 .. 98) {
        push @statuses, create_key($o->{token}, $id,
            { name => "key $i", scopes => ['*'] })->{status};
    }

    is(scalar(grep { $_ == 201 } @statuses), 98, '100 active keys are created');

    my $before = keys_state($id);
    my $full = create_key($o->{token}, $id, { name => 'one too many',
        scopes => ['*'] });

    is($full->{status}, 409, '101st active key is 409') or diag($full->{body});
    my @errors = json_subset($full->{json}, { error => {
        code => 'conflict', message => '~.+',
        details => [{ field => 'apiKeys', issue => 'limit_reached' }] } });
    ok(!@errors, '101st key details') or diag(join "\n", @errors);
    is(keys_state($id), $before, '101st key stores nothing');

    # An expired key does not count.
    ok(time < $expiry, 'the short-lived key was active while counted');
    sleep $expiry - time + 0.2;

    my $after_expiry = create_key($o->{token}, $id,
        { name => 'after expiry', scopes => ['*'] });
    is($after_expiry->{status}, 201, 'an expired key frees a place')
        or diag($after_expiry->{body});

    is(create_key($o->{token}, $id, { name => 'full again',
        scopes => ['*'] })->{status}, 409, 'the tenant is full again');

    my $revoke = api('DELETE',
        "/api/tenants/$id/api-keys/$t->{api_key}{id}", token => $o->{token});
    is($revoke->{status}, 204, 'a key is revoked');

    is(create_key($o->{token}, $id, { name => 'after revoke',
        scopes => ['*'] })->{status}, 201, 'a revoked key frees a place');
}


# --- List and revoke --------------------------------------------------------

{
    my $o = signup_owner();
    my $t = create_tenant_full($o->{token}, name => 'Listed');
    my $id = $t->{tenant_id};
    my $second = create_key($o->{token}, $id,
        { name => 'second', scopes => ['notifications:read'] })->{json};
    my $third = create_key($o->{token}, $id,
        { name => 'third', scopes => ['metrics:read'] })->{json};

    my $revoke = api('DELETE', "/api/tenants/$id/api-keys/$second->{id}",
        token => $o->{token});
    is($revoke->{status}, 204, 'revocation is 204') or diag($revoke->{body});
    is($revoke->{body}, '', 'revocation reply has no body');
    is(psql('SELECT status FROM api_keys WHERE id = $1', $second->{id}),
        'REVOKED', 'revoked key is stored as REVOKED');

    my $again = api('DELETE', "/api/tenants/$id/api-keys/$second->{id}",
        token => $o->{token});
    is($again->{status}, 204, 'revoking a revoked key is 204 again');

    my $list = api('GET', "/api/tenants/$id/api-keys", token => $o->{token});
    is($list->{status}, 200, 'key list is 200');

    my @errors = json_subset($list->{json}, {
        data => [
            { id => $third->{id}, name => 'third', status => 'ACTIVE',
              scopes => ['metrics:read'], prefix => $third->{prefix},
              expiresAt => undef, lastUsedAt => undef,
              createdAt => $third->{createdAt}, '!key' => undef },
            { id => $second->{id}, name => 'second', status => 'REVOKED',
              '!key' => undef },
            { id => $t->{api_key}{id}, name => 'default', scopes => ['*'],
              status => 'ACTIVE', '!key' => undef },
        ],
        nextCursor => undef,
    });
    ok(!@errors, 'key list has every key, newest first, without secrets')
        or diag(join "\n", @errors);

    my $before = keys_state($id);

    for my $case (
        ['unknown key id', '01932c07-a2b1-7c3d-8e4f-0123456789ab'],
        ['key id that is not a UUID', 'not-a-uuid'],
    ) {
        my ($name, $key_id) = @$case;
        my $r = api('DELETE', "/api/tenants/$id/api-keys/$key_id",
            token => $o->{token});

        is($r->{status}, 404, "revocation of an $name is 404");
        is($r->{json}{error}{code}, 'not_found', "$name code");
    }

    is(keys_state($id), $before, 'failed revocations change no key');
}


# --- Key checks on revoked, expired, narrow and suspended keys -----------

{
    my $o = signup_owner();
    my $t = create_tenant_full($o->{token}, name => 'Checked');
    my $id = $t->{tenant_id};
    my $last;

    my $victim = create_key($o->{token}, $id,
        { name => 'to revoke', scopes => ['*'] })->{json};
    is(api('POST', '/api/notifications', key => $victim->{key},
        json => \%email)->{status}, 202, 'key works before revocation');

    api('DELETE', "/api/tenants/$id/api-keys/$victim->{id}",
        token => $o->{token});

    ok(wait_for(sub {
            $last = api('POST', '/api/notifications', key => $victim->{key},
                json => \%email);
            return $last->{status} == 401;
        }, timeout => 3, interval => 0.2),
        'revoked key gets 401 within 3 seconds')
        or diag("last reply: $last->{status} $last->{body}");
    is($last->{json}{error}{code}, 'api_key_revoked',
        'revoked key: code api_key_revoked');

    my $short = create_key($o->{token}, $id,
        { name => 'short-lived', scopes => ['*'],
          expiresAt => rfc3339(time + 3) })->{json};
    is(api('POST', '/api/notifications', key => $short->{key},
        json => \%email)->{status}, 202, 'key works before it expires');

    ok(wait_for(sub {
            $last = api('POST', '/api/notifications', key => $short->{key},
                json => \%email);
            return $last->{status} == 401;
        }, timeout => 8, interval => 0.25),
        'expired key gets 401')
        or diag("last reply: $last->{status} $last->{body}");
    is($last->{json}{error}{code}, 'api_key_expired',
        'expired key: code api_key_expired');

    my $reader = create_key($o->{token}, $id,
        { name => 'reader', scopes => ['notifications:read'] })->{json};
    my $denied = api('POST', '/api/notifications', key => $reader->{key},
        json => \%email);

    is($denied->{status}, 403, 'read-only key cannot send');
    is($denied->{json}{error}{code}, 'forbidden', 'read-only key: forbidden');
    like(encode_json_text($denied->{json}{error}{details} // []),
        qr/notifications:write/, 'read-only key: details name the scope');
    is(api('GET', '/api/notifications/01932c07-a2b1-7c3d-8e4f-0123456789ab',
        key => $reader->{key})->{status}, 404,
        'read-only key may read notifications');

    my $suspend = api('PUT', "/api/tenants/$id", token => $o->{token},
        json => { name => 'Checked', plan => 'FREE', status => 'SUSPENDED' });
    is($suspend->{status}, 200, 'tenant is suspended');

    ok(wait_for(sub {
            $last = api('POST', '/api/notifications', key => $t->{key},
                json => \%email);
            return $last->{status} == 403;
        }, timeout => 3, interval => 0.2),
        'key of a suspended tenant gets 403 within 3 seconds')
        or diag("last reply: $last->{status} $last->{body}");
    is($last->{json}{error}{code}, 'forbidden',
        'suspended tenant: code forbidden');

    api('PUT', "/api/tenants/$id", token => $o->{token},
        json => { name => 'Checked', plan => 'FREE', status => 'active' });

    ok(wait_for(sub {
            $last = api('POST', '/api/notifications', key => $t->{key},
                json => \%email);
            return $last->{status} == 202;
        }, timeout => 3, interval => 0.2),
        'key works again once the tenant is active')
        or diag("last reply: $last->{status} $last->{body}");
}

done_testing();

__DATA__

=== TEST 1: key list of a new tenant has its default key
--- request
GET /api/tenants/$TENANT_ID/api-keys
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 200
--- response_json
{"data": [{"id": "$DEFAULT_ID", "name": "default", "prefix": "~^nh_",
           "scopes": ["*"], "status": "ACTIVE", "expiresAt": null,
           "lastUsedAt": null, "createdAt": "~$TIME_RE",
           "!key": null, "!keyHash": null}],
 "nextCursor": null}


=== TEST 2: key list without a token
--- request
GET /api/tenants/$TENANT_ID/api-keys
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!data": null}


=== TEST 3: key list of a tenant id that is not a UUID
--- request
GET /api/tenants/nope/api-keys
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "tenant not found"}}


=== TEST 4: key list of an unknown tenant
--- request
GET /api/tenants/01932c07-a2b1-7c3d-8e4f-0123456789ab/api-keys
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 5: key creation without a token
--- request
POST /api/tenants/$TENANT_ID/api-keys
--- more_headers
Content-Type: application/json
--- request_body
{"name": "x", "scopes": ["*"]}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!key": null}
--- db_unchanged: api_keys


=== TEST 6: key creation for an unknown tenant
--- request
POST /api/tenants/01932c07-a2b1-7c3d-8e4f-0123456789ab/api-keys
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "scopes": ["*"]}
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}, "!key": null}
--- db_unchanged: api_keys


=== TEST 7: key creation for a tenant id that is not a UUID
--- request
POST /api/tenants/not-a-uuid/api-keys
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "scopes": ["*"]}
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}
--- db_unchanged: api_keys


=== TEST 8: key creation with malformed JSON
--- request
POST /api/tenants/$TENANT_ID/api-keys
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "scopes": [
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: api_keys


=== TEST 9: key creation without a content type
--- request
POST /api/tenants/$TENANT_ID/api-keys
--- more_headers
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "scopes": ["*"]}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type"}}
--- db_unchanged: api_keys


=== TEST 10: key revocation without a token
--- request
DELETE /api/tenants/$TENANT_ID/api-keys/$DEFAULT_ID
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}


=== TEST 11: key revocation of a tenant id that is not a UUID
--- request
DELETE /api/tenants/not-a-uuid/api-keys/$DEFAULT_ID
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}


=== TEST 12: key with GET by id is not allowed
--- request
GET /api/tenants/$TENANT_ID/api-keys/$DEFAULT_ID
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 405
--- response_headers
Allow: DELETE
--- response_json
{"error": {"code": "method_not_allowed"}}
