# GET, PUT and DELETE /api/tenants[/{id}]: keyset pages with tamper-checked
# cursors, full replacement of a tenant, every rejected input (with the
# tenant rows compared before and after), and deletion of everything a
# tenant owns.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Tenant Alpha');
my $run = int(time) . "-$$";

my %vars = (
    RUN       => $run,
    TOKEN     => $owner->{token},
    TENANT_ID => $tenant->{tenant_id},
);

run_blocks(vars => \%vars);



sub tenants_state {
    my ($owner_id) = @_;

    return rows_text('SELECT id, name, plan, status, settings::text,'
        . ' created_at, updated_at FROM tenants WHERE owner_id = $1'
        . ' ORDER BY id', $owner_id);
}


sub list_tenants {
    my ($token, $query) = @_;

    return api('GET', '/api/tenants' . (defined $query ? "?$query" : ''),
        token => $token);
}


# --- Plans ------------------------------------------------------------------

{
    my %plans = map { $_->[0] => $_ } psql('SELECT name, monthly_quota,'
        . ' rate_per_second, burst, max_bulk_size, max_templates,'
        . ' max_recipients, max_webhooks FROM plans');

    is_deeply([sort keys %plans], [qw(BUSINESS ENTERPRISE FREE STARTER)],
        'plans table has the four plans');
    is($plans{FREE}[4], 100, 'FREE bulk size is 100');

    for my $plan (qw(STARTER BUSINESS ENTERPRISE)) {
        is($plans{$plan}[4], 1000, "$plan bulk size is 1000");
    }

    my @order = qw(FREE STARTER BUSINESS ENTERPRISE);

    for my $i (1 .. $#order) {
        my ($lower, $higher) = @plans{@order[$i - 1, $i]};

        for my $column (1 .. 3, 5 .. 7) {
            cmp_ok($higher->[$column], '>', $lower->[$column],
                "$order[$i] limit $column is above $order[$i - 1]");
        }
    }
}


# --- Lists ------------------------------------------------------------------

{
    my $o = signup_owner();
    my $r = list_tenants($o->{token});

    is($r->{status}, 200, 'list of an owner without tenants');
    is_deeply($r->{json}, { data => [], nextCursor => undef },
        'empty list has no data and no cursor');
}

# Five tenants in pages of two, newest first.
{
    my $o = signup_owner();
    my @created = map {
        create_tenant_full($o->{token}, name => "Paged $_")->{tenant_id}
    } 1 .. 5;
    my @newest_first = reverse @created;
    my (@seen, $cursor, @pages);

    do {
        my $r = list_tenants($o->{token},
            'limit=2' . (defined $cursor ? "&cursor=$cursor" : ''));

        is($r->{status}, 200, 'page ' . (@pages + 1) . ' is 200')
            or diag($r->{body});
        push @pages, scalar @{ $r->{json}{data} // [] };
        push @seen, map { $_->{id} } @{ $r->{json}{data} // [] };
        $cursor = $r->{json}{nextCursor};

        like($cursor, qr/^[A-Za-z0-9_-]+$/, 'nextCursor is base64url')
            if defined $cursor;
    } while (defined $cursor && @pages < 10);

    is_deeply(\@pages, [2, 2, 1], 'five tenants come in pages of 2, 2, 1');
    is_deeply(\@seen, \@newest_first, 'pages list every tenant, newest first');

    my $all = list_tenants($o->{token}, 'limit=5');
    is(scalar @{ $all->{json}{data} }, 5, 'limit=5 returns all five');
    is($all->{json}{nextCursor}, undef, 'an exact last page has no cursor');

    my $item = $all->{json}{data}[0];
    my @errors = json_subset($item, {
        id => '~' . var('UUID_RE'), name => 'Paged 5', plan => 'FREE',
        status => 'ACTIVE', settings => {},
        limits => { monthlyQuota => '~^[0-9]+$', ratePerSecond => '~^[0-9]+$',
                    burst => '~^[0-9]+$', maxBulkSize => 100,
                    maxTemplates => '~^[0-9]+$',
                    maxRecipients => '~^[0-9]+$',
                    maxWebhooks => '~^[0-9]+$' },
        createdAt => '~' . var('TIME_RE'), updatedAt => '~' . var('TIME_RE'),
    });
    ok(!@errors, 'listed tenant has the tenant fields')
        or diag(join "\n", @errors);

    # A cursor is only a position: a second owner using it sees only its
    # own tenants.
    my $first = list_tenants($o->{token}, 'limit=2');
    my $b = signup_owner();
    my $b_tenant = create_tenant_full($b->{token}, name => 'Owner B')
        ->{tenant_id};
    my $cross = list_tenants($b->{token},
        "cursor=$first->{json}{nextCursor}");

    is($cross->{status}, 200, 'another owner may send a cursor');
    ok(!grep({ my $id = $_->{id}; grep { $_ eq $id } @created }
            @{ $cross->{json}{data} // [] }),
        "another owner's cursor shows none of the first owner's tenants");

    # base64url needs no escaping, but a percent-encoded cursor still works.
    my $encoded = $first->{json}{nextCursor};
    $encoded =~ s/([-_])/sprintf '%%%02X', ord $1/ge;
    my $decoded = list_tenants($o->{token}, "limit=2&cursor=$encoded");
    is($decoded->{status}, 200, 'percent-encoded cursor is accepted')
        or diag($decoded->{body});
}

# The default page is 20 and the largest 100.
{
    my $o = signup_owner();

    create_tenant_full($o->{token}, name => "Many $_") for 1 .. 21;

    my $default = list_tenants($o->{token});
    is(scalar @{ $default->{json}{data} }, 20, 'default limit is 20');
    ok(defined $default->{json}{nextCursor}, 'default page has a cursor');

    my $rest = list_tenants($o->{token},
        "cursor=$default->{json}{nextCursor}");
    is(scalar @{ $rest->{json}{data} }, 1, 'second default page has 1');
    is($rest->{json}{data}[0]{name}, 'Many 1', 'oldest tenant comes last');

    my $max = list_tenants($o->{token}, 'limit=100');
    is($max->{status}, 200, 'limit=100 is accepted');
    is(scalar @{ $max->{json}{data} }, 21, 'limit=100 returns all 21');

    my $one = list_tenants($o->{token}, 'limit=1');
    is(scalar @{ $one->{json}{data} }, 1, 'limit=1 returns one tenant');
}

# Rejected limits and cursors.
{
    my $valid = list_tenants($owner->{token}, 'limit=1');
    create_tenant_full($owner->{token}, name => 'Second of A')
        unless defined $valid->{json}{nextCursor};
    $valid = list_tenants($owner->{token}, 'limit=1');

    my $cursor = $valid->{json}{nextCursor} // '';
    my $flipped = $cursor;
    substr($flipped, 10, 1) = substr($flipped, 10, 1) eq 'A' ? 'B' : 'A';
    my $tag_flipped = $cursor;
    substr($tag_flipped, -5, 1) = substr($tag_flipped, -5, 1) eq 'A'
        ? 'B' : 'A';

    ok(length $cursor, 'a valid cursor to tamper with');

    my @bad_limits = ('0', '101', '-1', 'abc', '1.5', '', '2x', '+5',
        '99999999999999999999');

    for my $limit (@bad_limits) {
        my $r = list_tenants($owner->{token}, "limit=$limit");

        is($r->{status}, 400, "limit=$limit is 400");
        my @errors = json_subset($r->{json}, { error => {
            code => 'invalid_request',
            details => [{ field => 'limit', issue => 'invalid_value' }] } });
        ok(!@errors, "limit=$limit details") or diag(join "\n", @errors);
    }

    my %bad_cursors = (
        'garbage'               => 'not-a-cursor',
        'empty'                 => '',
        'flipped position'      => $flipped,
        'flipped tag'           => $tag_flipped,
        'truncated'             => substr($cursor, 0, -1),
        'one character longer'  => $cursor . 'A',
        'padded'                => $cursor . '=',
        'invalid character'     => substr($cursor, 0, -1) . '*',
    );

    for my $name (sort keys %bad_cursors) {
        my $r = list_tenants($owner->{token}, "cursor=$bad_cursors{$name}");

        is($r->{status}, 400, "$name cursor is 400");
        my @errors = json_subset($r->{json}, { error => {
            code => 'invalid_request',
            details => [{ field => 'cursor', issue => 'invalid_value' }] } });
        ok(!@errors, "$name cursor details") or diag(join "\n", @errors);
    }

    my $both = list_tenants($owner->{token}, 'limit=0&cursor=x');
    my @errors = json_subset($both->{json}, { error => {
        code => 'invalid_request',
        details => ['<any order>',
                    { field => 'limit', issue => 'invalid_value' },
                    { field => 'cursor', issue => 'invalid_value' }] } });
    ok(!@errors, 'bad limit and bad cursor are both reported')
        or diag(join "\n", @errors);
}


# --- Replace ----------------------------------------------------------------

{
    my $o = signup_owner();
    my $t = create_tenant_full($o->{token}, name => 'Before')->{tenant};
    my $path = "/api/tenants/$t->{id}";

    sleep 0.01;

    my $r = api('PUT', $path, token => $o->{token},
        json => { name => 'After', plan => 'business', status => 'suspended',
                  settings => { locale => 'de', nested => { a => [1, 2] } },
                  unknown => 'ignored' });

    is($r->{status}, 200, 'PUT is 200') or diag($r->{body});

    my @errors = json_subset($r->{json}, {
        id => $t->{id}, name => 'After', plan => 'BUSINESS',
        status => 'SUSPENDED',
        settings => { locale => 'de', nested => { a => [1, 2] } },
        limits => { maxBulkSize => 1000 },
        createdAt => $t->{createdAt}, updatedAt => '~' . var('TIME_RE'),
        '!unknown' => undef,
    });
    ok(!@errors, 'PUT reply shows the new values') or diag(join "\n", @errors);
    isnt($r->{json}{updatedAt}, $t->{updatedAt}, 'PUT moves updatedAt');

    my ($row) = psql('SELECT name, plan, status, settings->>$2 FROM tenants'
        . ' WHERE id = $1', $t->{id}, 'locale');
    is_deeply($row, ['After', 'BUSINESS', 'SUSPENDED', 'de'],
        'PUT stores the new values');

    is_deeply(api('GET', $path, token => $o->{token})->{json}, $r->{json},
        'GET shows what PUT returned');

    my $plain = api('PUT', $path, token => $o->{token},
        json => { name => 'Plain', plan => 'FREE', status => 'ACTIVE' });

    is($plain->{status}, 200, 'PUT without settings is 200')
        or diag($plain->{body});
    is_deeply($plain->{json}{settings}, {}, 'PUT without settings sets {}');
    is($plain->{json}{limits}{maxBulkSize}, 100, 'limits follow the plan');

    my $null = api('PUT', $path, token => $o->{token},
        json => { name => 'Null', plan => 'FREE', status => 'ACTIVE',
                  settings => undef });
    is($null->{status}, 200, 'PUT with null settings is 200');
    is_deeply($null->{json}{settings}, {}, 'null settings become {}');
}

# Rejected replacements leave every tenant of the owner as it was.
{
    my $o = signup_owner();
    my $t = create_tenant_full($o->{token}, name => 'Unchanged',
        plan => 'STARTER')->{tenant};
    my %valid = (name => 'Valid', plan => 'FREE', status => 'ACTIVE');
    my $exact = 16 * 1024 - length('{"k":""}');

    like(tenants_state($o->{user}{id}), qr/\Q$t->{id}\E/,
        'the compared state holds the tenant');

    my @rejected = (
        ['empty object', {},
            ['<any order>', { field => 'name', issue => 'required' },
             { field => 'plan', issue => 'required' },
             { field => 'status', issue => 'required' }]],
        ['missing name', { %valid, name => undef },
            [{ field => 'name', issue => 'required' }]],
        ['empty name', { %valid, name => '' },
            [{ field => 'name', issue => 'required' }]],
        ['name of 201 characters', { %valid, name => 'n' x 201 },
            [{ field => 'name', issue => 'too_long' }]],
        ['number as name', { %valid, name => 7 },
            [{ field => 'name', issue => 'invalid_type' }]],
        ['missing plan', { name => 'x', status => 'ACTIVE' },
            [{ field => 'plan', issue => 'required' }]],
        ['unknown plan', { %valid, plan => 'GOLD' },
            [{ field => 'plan', issue => 'invalid_value' }]],
        ['empty plan', { %valid, plan => '' },
            [{ field => 'plan', issue => 'invalid_value' }]],
        ['number as plan', { %valid, plan => 1 },
            [{ field => 'plan', issue => 'invalid_type' }]],
        ['missing status', { name => 'x', plan => 'FREE' },
            [{ field => 'status', issue => 'required' }]],
        ['unknown status', { %valid, status => 'DELETED' },
            [{ field => 'status', issue => 'invalid_value' }]],
        ['boolean as status', { %valid, status => \1 },
            [{ field => 'status', issue => 'invalid_type' }]],
        ['array as settings', { %valid, settings => [1] },
            [{ field => 'settings', issue => 'invalid_type' }]],
        ['string as settings', { %valid, settings => '{}' },
            [{ field => 'settings', issue => 'invalid_type' }]],
        ['settings over 16 KiB',
            { %valid, settings => { k => 'x' x ($exact + 1) } },
            [{ field => 'settings', issue => 'too_long' }]],
    );

    for my $case (@rejected) {
        my ($name, $body, $details) = @$case;
        my $before = tenants_state($o->{user}{id});
        my $r = api('PUT', "/api/tenants/$t->{id}", token => $o->{token},
            json => $body);

        is($r->{status}, 400, "PUT $name is 400") or diag($r->{body});
        my @errors = json_subset($r->{json}, { error => {
            code => 'invalid_request', message => '~.+',
            details => $details } });
        ok(!@errors, "PUT $name details") or diag(join "\n", @errors);
        is(tenants_state($o->{user}{id}), $before,
            "PUT $name changes no tenant");
    }

    my $unknown = api('PUT', "/api/tenants/$t->{id}", token => $o->{token},
        json => { %valid, plan => 'gold' });
    like($unknown->{json}{error}{message} // '',
        qr/FREE, STARTER, BUSINESS, ENTERPRISE/,
        'unknown plan message lists the plans');

    my $fits = api('PUT', "/api/tenants/$t->{id}", token => $o->{token},
        json => { %valid, settings => { k => 'x' x $exact } });
    is($fits->{status}, 200, 'settings of exactly 16 KiB are accepted')
        or diag(substr $fits->{body}, 0, 300);
}


# --- Delete -----------------------------------------------------------------

{
    my $o = signup_owner();
    my $doomed = create_tenant_full($o->{token}, name => 'Doomed');
    my $kept = create_tenant_full($o->{token}, name => 'Kept');
    my $id = $doomed->{tenant_id};
    my %email = (
        channel => 'EMAIL',
        to      => { email => unique_email('doomed') },
        content => { subject => 'Before deletion', body => 'Soon gone' },
    );

    my $sent = api('POST', '/api/notifications', key => $doomed->{key},
        json => \%email, headers => { 'Idempotency-Key' => "doomed-$run" });
    is($sent->{status}, 202, 'doomed tenant sends a notification')
        or diag($sent->{body});

    my $extra = api('POST', "/api/tenants/$id/api-keys", token => $o->{token},
        json => { name => 'extra', scopes => ['*'] });
    is($extra->{status}, 201, 'doomed tenant gets a second key');

    ok(wait_for(sub {
            psql('SELECT count(*) FROM delivery_logs WHERE tenant_id = $1',
                $id) > 0
        }, timeout => 30),
        'the notification has a delivery log');

    my %owned = map { $_ => 'tenant_id' }
        qw(api_keys notifications idempotency_keys delivery_logs);

    for my $table (sort keys %owned) {
        cmp_ok(psql("SELECT count(*) FROM $table WHERE tenant_id = \$1", $id),
            '>', 0, "doomed tenant has rows in $table");
    }

    my $r = api('DELETE', "/api/tenants/$id", token => $o->{token});
    is($r->{status}, 204, 'DELETE is 204') or diag($r->{body});
    is($r->{body}, '', 'DELETE reply has no body');

    is(psql('SELECT count(*) FROM tenants WHERE id = $1', $id), 0,
        'tenant row is gone');

    for my $table (sort keys %owned) {
        is(psql("SELECT count(*) FROM $table WHERE tenant_id = \$1", $id), 0,
            "rows in $table are gone");
    }

    is(api('GET', "/api/tenants/$id", token => $o->{token})->{status}, 404,
        'deleted tenant is not found');
    is(api('DELETE', "/api/tenants/$id", token => $o->{token})->{status},
        404, 'second DELETE is 404');
    ok(!grep({ $_->{id} eq $id }
            @{ list_tenants($o->{token})->{json}{data} // [] }),
        'deleted tenant is not listed');

    my $last;
    my $rejected = wait_for(sub {
        $last = api('POST', '/api/notifications', key => $doomed->{key},
            json => \%email);
        return $last->{status} == 401;
    }, timeout => 3, interval => 0.2);

    ok($rejected, 'key of a deleted tenant gets 401 within 3 seconds')
        or diag("last reply: $last->{status} $last->{body}");
    is($last->{json}{error}{code}, 'unauthorized',
        'key of a deleted tenant: code unauthorized');

    my $still = api('POST', '/api/notifications', key => $kept->{key},
        json => \%email);
    is($still->{status}, 202, "the owner's other tenant still sends")
        or diag($still->{body});
    is(psql('SELECT count(*) FROM tenants WHERE id = $1', $kept->{tenant_id}),
        1, "the owner's other tenant is kept");
}

done_testing();

__DATA__

=== TEST 1: tenant of the owner
--- request
GET /api/tenants/$TENANT_ID
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 200
--- response_json
{"id": "$TENANT_ID", "name": "Tenant Alpha", "plan": "FREE",
 "status": "ACTIVE", "settings": {},
 "limits": {"monthlyQuota": 10000, "ratePerSecond": 10, "burst": 20,
            "maxBulkSize": 100, "maxTemplates": 10, "maxRecipients": 1000,
            "maxWebhooks": 2},
 "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE"}


=== TEST 2: tenant id that is not a UUID
--- request
GET /api/tenants/not-a-uuid
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "tenant not found"}}


=== TEST 3: tenant id that does not exist
--- request
GET /api/tenants/01932c07-a2b1-7c3d-8e4f-0123456789ab
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "tenant not found"}}


=== TEST 4: tenant without a token
--- request
GET /api/tenants/$TENANT_ID
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!id": null}


=== TEST 5: tenant with an unknown token
--- request
GET /api/tenants/$TENANT_ID
--- more_headers
Authorization: Bearer nhs_thisTokenWasNeverIssued0000000000
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!id": null}


=== TEST 6: tenant list without a token
--- request
GET /api/tenants
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!data": null}


=== TEST 7: tenant with PATCH is not allowed
--- request
PATCH /api/tenants/$TENANT_ID
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 405
--- response_headers
Allow: GET, HEAD, PUT, DELETE
--- response_json
{"error": {"code": "method_not_allowed"}}


=== TEST 8: tenant replacement with malformed JSON
--- request
PUT /api/tenants/$TENANT_ID
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "x",
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}


=== TEST 9: tenant replacement without a content type
--- request
PUT /api/tenants/$TENANT_ID
--- more_headers
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "plan": "FREE", "status": "ACTIVE"}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type"}}


=== TEST 10: tenant replacement without a token
--- request
PUT /api/tenants/$TENANT_ID
--- more_headers
Content-Type: application/json
--- request_body
{"name": "x", "plan": "FREE", "status": "ACTIVE"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}


=== TEST 11: tenant replacement of an id that is not a UUID
--- request
PUT /api/tenants/not-a-uuid
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "plan": "FREE", "status": "ACTIVE"}
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}
--- db_unchanged: tenants


=== TEST 12: tenant replacement of an unknown id
--- request
PUT /api/tenants/01932c07-a2b1-7c3d-8e4f-0123456789ab
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "x", "plan": "FREE", "status": "ACTIVE"}
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}
--- db_unchanged: tenants


=== TEST 13: tenant deletion of an id that is not a UUID
--- request
DELETE /api/tenants/not-a-uuid
--- more_headers
Authorization: Bearer $TOKEN
--- error_code: 404
--- response_json
{"error": {"code": "not_found"}}
--- db_unchanged: tenants


=== TEST 14: tenant deletion without a token
--- request
DELETE /api/tenants/$TENANT_ID
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: tenants, api_keys


=== TEST 15: tenant creation shows the plan's limits
--- request
POST /api/tenants
--- more_headers
Content-Type: application/json
Authorization: Bearer $TOKEN
--- request_body
{"name": "Big Co", "plan": "Enterprise"}
--- error_code: 201
--- response_json
{"tenant": {"plan": "ENTERPRISE",
            "limits": {"monthlyQuota": 10000000, "ratePerSecond": 1000,
                       "burst": 2000, "maxBulkSize": 1000,
                       "maxTemplates": 1000, "maxRecipients": 5000000,
                       "maxWebhooks": 100}},
 "apiKey": {"key": "~^nh_"}}
