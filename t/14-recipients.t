# /api/recipients: create, list, read, update and delete recipients, their
# preferences and their devices; every rejected input (with the tables
# unchanged), uniqueness under concurrent requests, the plan's
# max_recipients, tenant isolation and scopes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Recipients A');
my $other = create_tenant_full($owner->{token}, name => 'Recipients B');
my $key = $tenant->{key};
my $run = int(time) . "-$$";

my %vars = (
    RUN       => $run,
    KEY       => $key,
    OTHER_KEY => $other->{key},
    LONG_NAME => 'n' x 201,
    MAX_NAME  => 'm' x 200,
    LONG_EXTERNAL_ID => 'e' x 256,
);

run_blocks(vars => \%vars);

my %captured = %NotifyHub::Test::VARS;



sub recipients_state {
    my ($tenant_id) = @_;

    return rows_text('SELECT r.id, r.external_id, r.email, r.phone, r.name,'
            . ' r.timezone, r.locale, r.updated_at FROM recipients r'
            . ' WHERE r.tenant_id = $1 ORDER BY r.id', $tenant_id)
        . "\n--\n"
        . rows_text('SELECT d.id, d.recipient_id, d.token, d.platform,'
            . ' d.deactivated_at, d.updated_at FROM devices d'
            . ' WHERE d.tenant_id = $1 ORDER BY d.id', $tenant_id)
        . "\n--\n"
        . rows_text('SELECT p.recipient_id, p.email_enabled, p.sms_enabled,'
            . ' p.push_enabled, p.quiet_start, p.quiet_end, p.quiet_timezone,'
            . ' p.updated_at FROM recipient_preferences p'
            . ' WHERE p.tenant_id = $1 ORDER BY p.recipient_id', $tenant_id);
}


sub create_recipient {
    my ($api_key, %fields) = @_;

    return api('POST', '/api/recipients', key => $api_key, json => \%fields);
}


# Creates a recipient and returns its reply object. Dies when it fails.
sub must_create {
    my ($api_key, %fields) = @_;
    my $r = create_recipient($api_key, %fields);

    die "recipient creation failed: $r->{status} $r->{body}\n"
        unless $r->{status} == 201;

    return $r->{json};
}


# Expects a 400 invalid_request with exactly these details and no change in
# the tenant's recipients, devices and preferences.
sub rejects {
    my ($method, $path, $body, $details, $name) = @_;
    my $before = recipients_state($tenant->{tenant_id});
    my $r = api($method, $path, key => $key, json => $body);

    is($r->{status}, 400, "$name: status 400") or diag($r->{body});
    is($r->{json}{error}{code}, 'invalid_request', "$name: code");
    is_deeply($r->{json}{error}{details}, $details, "$name: details");
    is(recipients_state($tenant->{tenant_id}), $before,
        "$name: nothing stored");
}


# Runs $request in $n child processes at once and returns a hash of
# status code => how many requests got it.
sub concurrently {
    my ($n, $request) = @_;
    my @pids;

    for (1 .. $n) {
        my $pid = fork;
        die "fork failed: $!\n" unless defined $pid;

        if ($pid == 0) {
            my $r = $request->();
            POSIX::_exit($r->{status} == 201 ? 0
                : $r->{status} == 409 ? 1
                : $r->{status} == 403 ? 2
                : $r->{status} == 200 ? 3 : 4);
        }

        push @pids, $pid;
    }

    my %codes = (201 => 0, 409 => 0, 403 => 0, 200 => 0, other => 0);
    my @names = (201, 409, 403, 200, 'other');

    for my $pid (@pids) {
        waitpid $pid, 0;
        $codes{ $names[$? >> 8] // 'other' }++;
    }

    return \%codes;
}


# --- Created by the blocks ---------------------------------------------------

my $ada_id = $captured{ADA_ID};

{
    my ($row) = psql('SELECT tenant_id, external_id, email, phone, name,'
        . ' timezone, locale FROM recipients WHERE id = $1', $ada_id);

    is_deeply($row, [$tenant->{tenant_id}, "ada-$run", 'ada@example.com',
        '+4915112345678', 'Ada Lovelace', 'Europe/Berlin', 'de-Latn-CH'],
        'recipient stored normalized');

    my @devices = psql('SELECT token, platform, deactivated_at'
        . ' FROM devices WHERE recipient_id = $1 ORDER BY token', $ada_id);

    is_deeply(\@devices, [['fcm:token-1', 'ANDROID', undef],
        ['web-token.2', 'WEB', undef]],
        'devices of deviceTokens created with the recipient');
}


# --- Field checks -------------------------------------------------------------

{
    for my $zone ('UTC', 'Etc/GMT+5', 'America/Argentina/ComodRivadavia',
        'Asia/Kolkata', 'America/Indiana/Indianapolis')
    {
        my $r = create_recipient($key, externalId => "tz-$zone-$run",
            timezone => $zone);
        is($r->{status}, 201, "timezone $zone accepted")
            or diag($r->{body});
        is($r->{json}{timezone}, $zone, "timezone $zone stored as given");
    }

    for my $zone ('europe/berlin', 'Europe/Atlantis', 'Europe/', '/UTC',
        'Europe//Berlin', '../zoneinfo/UTC', 'Europe/Berlin ', '',
        'posixrules', 'tzdata.zi', 'Z' x 65)
    {
        rejects('POST', '/api/recipients',
            { externalId => "tz-bad-$run", timezone => $zone },
            [{ field => 'timezone',
               issue => $zone eq '' ? 'required'
                      : length $zone > 64 ? 'too_long' : 'invalid_value' }],
            "timezone \"$zone\"");
    }

    my %locales = (
        'en'            => 'en',
        'EN-us'         => 'en-US',
        'de-latn-ch'    => 'de-Latn-CH',
        'es-419'        => 'es-419',
        'zh-Hant-TW'    => 'zh-Hant-TW',
        'sl-rozaj-1994' => 'sl-rozaj-1994',
        'de-CH-1901'    => 'de-CH-1901',
        'haw'           => 'haw',
    );

    for my $tag (sort keys %locales) {
        my $r = create_recipient($key, externalId => "locale-$tag-$run",
            locale => $tag);
        is($r->{status}, 201, "locale $tag accepted") or diag($r->{body});
        is($r->{json}{locale}, $locales{$tag},
            "locale $tag stored as $locales{$tag}");
    }

    for my $tag ('e', 'englishes-us', 'en_US', 'en-', '-en', 'en--US',
        'en-Latn-Latn', 'en-US-GB', 'zh-yue', 'en-u-ca-gregory', 'x-private',
        '1en', 'en-US-ab', 'de-CH-1901-' . 'a' x 30)
    {
        rejects('POST', '/api/recipients',
            { externalId => "locale-bad-$run", locale => $tag },
            [{ field => 'locale',
               issue => length $tag > 35 ? 'too_long' : 'invalid_format' }],
            "locale \"$tag\"");
    }

    for my $phone ('+4915199999999', '+12025550123') {
        my $r = create_recipient($key, phone => $phone);
        is($r->{status}, 201, "phone $phone accepted") or diag($r->{body});
    }

    for my $phone ('4915112345678', '+0123456', '+1', '+1234567890123456',
        '+49 151 1234')
    {
        rejects('POST', '/api/recipients', { phone => $phone },
            [{ field => 'phone',
               issue => length $phone > 16 ? 'too_long' : 'invalid_format' }],
            "phone \"$phone\"");
    }

    my $max = create_recipient($key, externalId => 'x' x 255,
        name => "\x{e9}" x 200);
    is($max->{status}, 201, 'externalId of 255 and name of 200 characters')
        or diag($max->{body});

    rejects('POST', '/api/recipients',
        { email => 'ok@example.com', deviceTokens => [map {
              { token => "many-$_", platform => 'IOS' } } 1 .. 21] },
        [{ field => 'deviceTokens', issue => 'too_many' }],
        '21 device tokens');

    my $twenty = create_recipient($key, deviceTokens => [map {
        { token => "twenty-$run-$_", platform => 'WEB' } } 1 .. 20]);
    is($twenty->{status}, 201, '20 device tokens accepted')
        or diag($twenty->{body});
    is(scalar psql('SELECT count(*) FROM devices WHERE recipient_id = $1',
        $twenty->{json}{id} // '00000000-0000-0000-0000-000000000000'), 20,
        '20 devices stored');

    rejects('POST', '/api/recipients',
        { deviceTokens => 'token' },
        [{ field => 'deviceTokens', issue => 'invalid_type' }],
        'deviceTokens not an array');

    rejects('POST', '/api/recipients',
        { deviceTokens => [ 'token', { platform => 'IOS' },
            { token => 'ok-1', platform => 'PHONE' },
            { token => 'x' x 4097, platform => 'WEB' } ] },
        [{ field => 'deviceTokens[0]', issue => 'invalid_type' },
         { field => 'deviceTokens[1].token', issue => 'required' },
         { field => 'deviceTokens[2].platform', issue => 'invalid_value' },
         { field => 'deviceTokens[3].token', issue => 'too_long' }],
        'invalid device tokens');
}


# --- Plan limit ----------------------------------------------------------------

{
    my $plan = 'RECIPIENTS_TEST_' . $$;
    psql('INSERT INTO plans (name, monthly_quota, rate_per_second, burst,'
        . ' max_bulk_size, max_templates, max_recipients, max_webhooks)'
        . ' VALUES ($1, 1000, 10, 20, 100, 10, 3, 2)', $plan);

    my $limited = create_tenant_full($owner->{token}, name => 'Limited');
    my $put = api('PUT', "/api/tenants/$limited->{tenant_id}",
        token => $owner->{token},
        json => { name => 'Limited', plan => $plan, status => 'ACTIVE' });
    is($put->{status}, 200, 'tenant moved to a plan of 3 recipients')
        or diag($put->{body});

    my @ids = map { must_create($limited->{key}, externalId => "limit-$_")->{id} }
        1 .. 2;

    # Six concurrent creates for the one free place: one wins.
    my $codes = concurrently(6, sub {
        state_free_create($limited->{key});
    });
    is($codes->{201}, 1, 'one of six concurrent creates takes the last place');
    is($codes->{403}, 5, 'the other five are 403');
    is(scalar psql('SELECT count(*) FROM recipients WHERE tenant_id = $1',
        $limited->{tenant_id}), 3, 'the tenant has 3 recipients');

    my $before = recipients_state($limited->{tenant_id});
    my $over = create_recipient($limited->{key}, externalId => 'limit-over');

    is($over->{status}, 403, 'create over max_recipients is 403');
    is($over->{json}{error}{code}, 'forbidden', 'plan limit: code');
    is_deeply($over->{json}{error}{details},
        [{ field => 'recipients', issue => 'plan_limit', max => 3 }],
        'plan limit: details');
    is(recipients_state($limited->{tenant_id}), $before,
        'plan limit: nothing stored');

    is(api('DELETE', "/api/recipients/$ids[0]", key => $limited->{key})
        ->{status}, 204, 'a recipient deleted');
    is(create_recipient($limited->{key}, externalId => 'limit-again')
        ->{status}, 201, 'a deleted recipient frees its place');

    psql('UPDATE tenants SET plan = $1 WHERE id = $2', 'FREE',
        $limited->{tenant_id});
    psql('DELETE FROM plans WHERE name = $1', $plan);
}


# A create with an externalId that no other request uses.
sub state_free_create {
    my ($api_key) = @_;

    return create_recipient($api_key,
        externalId => 'race-' . int(rand 1e9) . "-$$");
}


# --- Uniqueness under concurrency ------------------------------------------------

{
    my $email = "race-$run\@example.com";
    my $codes = concurrently(8, sub {
        create_recipient($key, email => $email);
    });

    is($codes->{201}, 1, 'one of eight concurrent creates of an email wins');
    is($codes->{409}, 7, 'the other seven are 409');
    is(scalar psql('SELECT count(*) FROM recipients WHERE tenant_id = $1'
        . ' AND email = $2', $tenant->{tenant_id}, $email), 1,
        'one row for the raced email');

    my $dup = create_recipient($key, email => uc $email);
    is_deeply($dup->{json}{error}{details},
        [{ field => 'email', issue => 'duplicate' }],
        'an email differing in case is a duplicate');

    my $same = create_recipient($other->{key}, email => $email);
    is($same->{status}, 201, 'another tenant may use the same email');
}


# --- Update ------------------------------------------------------------------

{
    my $r = must_create($key, externalId => "patch-$run",
        email => "patch-$run\@example.com", name => 'Before',
        timezone => 'Europe/Paris', locale => 'fr');
    my $path = "/api/recipients/$r->{id}";

    my $patch = api('PATCH', $path, key => $key,
        json => { name => 'After', locale => undef, phone => '+33612345678' });
    is($patch->{status}, 200, 'PATCH returns 200') or diag($patch->{body});
    my @errors = json_subset($patch->{json}, {
        id => $r->{id}, externalId => "patch-$run",
        email => "patch-$run\@example.com", name => 'After',
        timezone => 'Europe/Paris', locale => undef,
        phone => '+33612345678', createdAt => $r->{createdAt},
    });
    ok(!@errors, 'PATCH changes the fields given and keeps the others')
        or diag(join "\n", @errors);

    rejects('PATCH', $path, {}, [{ field => 'body', issue => 'required' }],
        'empty PATCH');
    rejects('PATCH', $path, { email => 'nope', timezone => 'Mars/Olympus' },
        [{ field => 'email', issue => 'invalid_format' },
         { field => 'timezone', issue => 'invalid_value' }],
        'PATCH with invalid fields');
    rejects('PATCH', $path,
        { deviceTokens => [{ token => 't', platform => 'IOS' }] },
        [{ field => 'deviceTokens', issue => 'not_allowed' }],
        'PATCH with deviceTokens');

    my $before = recipients_state($tenant->{tenant_id});
    my $dup = api('PATCH', $path, key => $key,
        json => { externalId => "ada-$run" });
    is($dup->{status}, 409, 'PATCH onto a used externalId is 409');
    is_deeply($dup->{json}{error}{details},
        [{ field => 'externalId', issue => 'duplicate' }],
        'PATCH duplicate: details');
    is(recipients_state($tenant->{tenant_id}), $before,
        'PATCH duplicate: nothing changed');

    my $clear = api('PATCH', $path, key => $key,
        json => { externalId => undef, email => undef, phone => undef });
    is($clear->{status}, 400, 'clearing every address is 400');
    is_deeply($clear->{json}{error}{details},
        [{ field => 'body', issue => 'missing_identifier' }],
        'clearing every address: details');
    is(recipients_state($tenant->{tenant_id}), $before,
        'clearing every address: nothing changed');

    my $device = api('POST', "$path/devices", key => $key,
        json => { token => "patch-device-$run", platform => 'IOS' });
    is($device->{status}, 201, 'device added');

    $clear = api('PATCH', $path, key => $key,
        json => { externalId => undef, email => undef, phone => undef });
    is($clear->{status}, 200, 'a recipient with a device may drop addresses')
        or diag($clear->{body});

    is(api('PATCH', "/api/recipients/$r->{id}", key => $other->{key},
        json => { name => 'Stolen' })->{status}, 404,
        'PATCH of another tenant\'s recipient is 404');
}


# --- List and pagination -------------------------------------------------------

{
    my $paged = create_tenant_full($owner->{token}, name => 'Paged');
    my @created = map {
        must_create($paged->{key}, externalId => "page-$_")->{id}
    } 1 .. 5;
    my (@seen, $cursor);

    for my $page (1 .. 3) {
        my $path = '/api/recipients?limit=2'
            . (defined $cursor ? "&cursor=$cursor" : '');
        my $r = api('GET', $path, key => $paged->{key});

        is($r->{status}, 200, "page $page: 200");
        push @seen, map { $_->{id} } @{ $r->{json}{data} // [] };
        $cursor = $r->{json}{nextCursor};
        last unless defined $cursor;
    }

    is_deeply(\@seen, [reverse @created], 'pages list every recipient, '
        . 'newest first');
    ok(!defined $cursor, 'the last page has no nextCursor');

    my $first = api('GET', '/api/recipients?limit=2', key => $paged->{key});
    my $good = $first->{json}{nextCursor};
    (my $bad = $good) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;

    is(api('GET', "/api/recipients?cursor=$bad", key => $paged->{key})
        ->{status}, 400, 'a changed cursor is 400');

    my $devices = api('GET', "/api/recipients/$created[0]/devices"
        . "?cursor=$good", key => $paged->{key});
    is($devices->{status}, 400, 'a recipients cursor is 400 on devices');
    is_deeply($devices->{json}{error}{details},
        [{ field => 'cursor', issue => 'invalid_value' }],
        'foreign cursor: details');

    my $filtered = api('GET', '/api/recipients?externalId=page-3&limit=1',
        key => $paged->{key});
    is_deeply([map { $_->{id} } @{ $filtered->{json}{data} // [] }],
        [$created[2]], 'externalId filter');

    my $none = api('GET', '/api/recipients?externalId=page-3',
        key => $key);
    is_deeply($none->{json}{data}, [], 'filters see only the own tenant');

    # An email matches at most one row, so the plan that finds it is
    # checked without the list order, which on a table this small the
    # planner may prefer to get from the list index.
    my $plan = rows_text('SET enable_seqscan = off; EXPLAIN (COSTS OFF)'
        . ' SELECT * FROM recipients x WHERE x.tenant_id = $1'
        . ' AND x.email = $2',
        $paged->{tenant_id}, 'a@example.com');
    like($plan, qr/recipients_tenant_email_key/,
        'the email filter reads its unique index');

    # A table this small is read faster without the index, so the plan
    # that a large table gets is forced here.
    $plan = rows_text('SET enable_seqscan = off; SET enable_bitmapscan = off;'
        . ' EXPLAIN (COSTS OFF)'
        . ' SELECT * FROM recipients x WHERE x.tenant_id = $1'
        . ' ORDER BY x.created_at DESC, x.id DESC LIMIT 21',
        $paged->{tenant_id});
    like($plan, qr/Index Scan using recipients_tenant_created_idx/,
        'the list can read its index in list order');
    unlike($plan, qr/Sort/, 'the list needs no sort');
}


# --- Devices -----------------------------------------------------------------

{
    my $one = must_create($key, externalId => "dev-one-$run");
    my $two = must_create($key, externalId => "dev-two-$run");
    my $token = "fcm-$run:move";

    my $first = api('POST', "/api/recipients/$one->{id}/devices", key => $key,
        json => { token => $token, platform => 'android' });
    is($first->{status}, 201, 'device registered');

    my $again = api('POST', "/api/recipients/$one->{id}/devices", key => $key,
        json => { token => $token, platform => 'ANDROID' });
    is($again->{status}, 200, 'the same token again is 200');
    is($again->{json}{id}, $first->{json}{id}, 'with the same device');
    is($again->{json}{updatedAt}, $first->{json}{updatedAt},
        'and the device unchanged');

    my $moved = api('POST', "/api/recipients/$two->{id}/devices", key => $key,
        json => { token => $token, platform => 'ANDROID' });
    is($moved->{status}, 200, 'the token on another recipient is 200');
    is($moved->{json}{id}, $first->{json}{id}, 'the device keeps its id');
    is(scalar psql('SELECT recipient_id FROM devices WHERE id = $1',
        $first->{json}{id}), $two->{id}, 'the device moved');

    my $list_one = api('GET', "/api/recipients/$one->{id}/devices",
        key => $key);
    is_deeply($list_one->{json}{data}, [], 'the old recipient lost it');

    is(scalar psql('SELECT nh_device_deactivate($1, $2)',
            $other->{tenant_id}, $token), 0,
        'nh_device_deactivate leaves another tenant alone');
    is(scalar psql('SELECT nh_device_deactivate($1, $2)',
            $tenant->{tenant_id}, $token), 1,
        'nh_device_deactivate changes one device');
    is(scalar psql('SELECT nh_device_deactivate($1, $2)',
            $tenant->{tenant_id}, $token), 0,
        'a second deactivation changes nothing');

    my $list = api('GET', "/api/recipients/$two->{id}/devices", key => $key);
    is(scalar @{ $list->{json}{data} // [] }, 1, 'the device is listed');
    ok(!$list->{json}{data}[0]{active}, 'the device is listed as inactive');

    my $back = api('POST', "/api/recipients/$two->{id}/devices", key => $key,
        json => { token => $token, platform => 'ANDROID' });
    is($back->{status}, 200, 'registering a deactivated token is 200');
    ok($back->{json}{active}, 'and makes it active again');

    my $race = "race-token-$run";
    my $codes = concurrently(6, sub {
        api('POST', "/api/recipients/$one->{id}/devices", key => $key,
            json => { token => $race, platform => 'IOS' });
    });
    is($codes->{201}, 1, 'one of six concurrent registrations creates');
    is($codes->{200}, 5, 'the other five get the device with 200');
    is(scalar psql('SELECT count(*) FROM devices WHERE token = $1', $race),
        1, 'one row for the raced token');

    my $three = create_recipient($key, externalId => "dev-three-$run",
        deviceTokens => [{ token => $race, platform => 'IOS' }]);
    is($three->{status}, 201, 'create with a token of another recipient');
    is(scalar psql('SELECT recipient_id FROM devices WHERE token = $1',
        $race), $three->{json}{id}, 'the token moved to the new recipient');

    rejects('POST', "/api/recipients/$two->{id}/devices",
        { token => 'bad token', platform => 'BLACKBERRY' },
        [{ field => 'token', issue => 'invalid_format' },
         { field => 'platform', issue => 'invalid_value' }],
        'invalid device');
    rejects('POST', "/api/recipients/$two->{id}/devices", {},
        [{ field => 'token', issue => 'required' },
         { field => 'platform', issue => 'required' }],
        'device without fields');

    my $foreign = api('POST', "/api/recipients/$two->{id}/devices",
        key => $other->{key}, json => { token => 'x', platform => 'IOS' });
    is($foreign->{status}, 404, 'device on another tenant\'s recipient: 404');

    my $path = "/api/recipients/$two->{id}/devices/$first->{json}{id}";
    is(api('DELETE', $path, key => $other->{key})->{status}, 404,
        'device delete by another tenant is 404');
    is(api('DELETE', "/api/recipients/$one->{id}/devices/$first->{json}{id}",
        key => $key)->{status}, 404, 'device delete under the wrong recipient'
        . ' is 404');
    is(api('DELETE', $path, key => $key)->{status}, 204, 'device deleted');

    my $gone = api('DELETE', $path, key => $key);
    is($gone->{status}, 404, 'deleting it again is 404');
    is($gone->{json}{error}{message}, 'device not found',
        'with "device not found"');
    is(api('DELETE', "/api/recipients/$two->{id}/devices/nope", key => $key)
        ->{status}, 404, 'a device id that is not a UUID is 404');
}


# --- Delete --------------------------------------------------------------------

{
    my $r = must_create($key, externalId => "delete-$run",
        deviceTokens => [{ token => "delete-$run", platform => 'IOS' }]);
    my $path = "/api/recipients/$r->{id}";

    is(api('PUT', "$path/preferences", key => $key,
        json => { channels => { SMS => \0 } })->{status}, 200,
        'preferences stored');

    my $notification = '01932c07-a2b1-7c3d-8e4f-' . sprintf '%012d', $$;
    psql('INSERT INTO notifications (id, tenant_id, channel, status,'
        . ' recipient_id) VALUES ($1, $2, $3, $4, $5)', $notification,
        $tenant->{tenant_id}, 'EMAIL', 'SENT', $r->{id});

    is(api('DELETE', $path, key => $other->{key})->{status}, 404,
        'delete by another tenant is 404');
    is(api('DELETE', $path, key => $key)->{status}, 204, 'recipient deleted');
    is(api('GET', $path, key => $key)->{status}, 404, 'then it is 404');
    is(api('DELETE', $path, key => $key)->{status}, 404,
        'deleting it again is 404');
    is(scalar psql('SELECT count(*) FROM devices WHERE recipient_id = $1',
        $r->{id}), 0, 'its devices are deleted');
    is(scalar psql('SELECT count(*) FROM recipient_preferences'
        . ' WHERE recipient_id = $1', $r->{id}), 0,
        'its preferences are deleted');
    is(scalar psql('SELECT recipient_id FROM notifications WHERE id = $1',
        $notification), $r->{id}, 'its notifications keep recipient_id');

    psql('DELETE FROM notifications WHERE id = $1', $notification);

    for my $sub ('', '/preferences', '/devices') {
        is(api('GET', "$path$sub", key => $key)->{status}, 404,
            "GET $sub of a deleted recipient is 404");
    }
}


# --- Scopes --------------------------------------------------------------------

{
    my $r = must_create($key, externalId => "scopes-$run");
    my %keys;

    for my $scope (qw(recipients:read notifications:write)) {
        my $k = api('POST', "/api/tenants/$tenant->{tenant_id}/api-keys",
            token => $owner->{token},
            json => { name => $scope, scopes => [$scope] });
        die "key creation failed: $k->{body}\n" unless $k->{status} == 201;
        $keys{$scope} = $k->{json}{key};
    }

    my $read = $keys{'recipients:read'};

    for my $get ('', '/preferences', '/devices') {
        is(api('GET', "/api/recipients/$r->{id}$get", key => $read)
            ->{status}, 200, "recipients:read can GET $get");
    }

    my $before = recipients_state($tenant->{tenant_id});

    for my $request (
        ['POST', '/api/recipients', { externalId => "denied-$run" }],
        ['PATCH', "/api/recipients/$r->{id}", { name => 'denied' }],
        ['DELETE', "/api/recipients/$r->{id}", undef],
        ['PUT', "/api/recipients/$r->{id}/preferences", {}],
        ['DELETE', "/api/recipients/$r->{id}/preferences", undef],
        ['POST', "/api/recipients/$r->{id}/devices",
         { token => 'denied', platform => 'IOS' }],
    ) {
        my ($method, $path, $body) = @$request;
        my $denied = api($method, $path, key => $read,
            defined $body ? (json => $body) : ());

        is($denied->{status}, 403, "$method $path without recipients:write");
        is_deeply($denied->{json}{error}{details},
            [{ field => 'recipients:write', issue => 'missing_scope' }],
            "$method without recipients:write: details");
    }

    is(api('GET', '/api/recipients', key => $keys{'notifications:write'})
        ->{status}, 403, 'list without recipients:read is 403');
    is(recipients_state($tenant->{tenant_id}), $before,
        'requests without the scope change nothing');
}

done_testing();

__DATA__

=== TEST 1: recipient created with devices
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"externalId": "ada-$RUN", "email": "Ada@Example.COM",
 "phone": "+4915112345678", "name": "Ada Lovelace",
 "timezone": "Europe/Berlin", "locale": "de-latn-ch",
 "deviceTokens": [{"token": "fcm:token-1", "platform": "android"},
                  {"token": "web-token.2", "platform": "Web"}]}
--- error_code: 201
--- response_json
{"id": "~$UUID_RE", "externalId": "ada-$RUN", "email": "ada@example.com",
 "phone": "+4915112345678", "name": "Ada Lovelace",
 "timezone": "Europe/Berlin", "locale": "de-Latn-CH",
 "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE"}
--- capture
ADA_ID = /id


=== TEST 2: recipient read
--- request
GET /api/recipients/$ADA_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$ADA_ID", "externalId": "ada-$RUN", "email": "ada@example.com",
 "name": "Ada Lovelace", "!deviceTokens": null}


=== TEST 3: recipient of another tenant
--- request
GET /api/recipients/$ADA_ID
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "recipient not found"}}


=== TEST 4: recipient id that is not a UUID
--- request
GET /api/recipients/ada
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "recipient not found"}}


=== TEST 5: recipient id that does not exist
--- request
GET /api/recipients/01932c07-a2b1-7c3d-8e4f-0123456789ab
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "recipient not found"}}


=== TEST 6: duplicate email in another case
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"email": "ADA@example.com"}
--- error_code: 409
--- response_json
{"error": {"code": "conflict",
           "details": [{"field": "email", "issue": "duplicate"}]}}
--- db_unchanged: recipients, devices


=== TEST 7: duplicate externalId
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"externalId": "ada-$RUN", "deviceTokens": [{"token": "dup-$RUN", "platform": "IOS"}]}
--- error_code: 409
--- response_json
{"error": {"code": "conflict",
           "details": [{"field": "externalId", "issue": "duplicate"}]}}
--- db_unchanged: recipients, devices


=== TEST 8: duplicate phone
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"phone": "+4915112345678", "email": "new-$RUN@example.com"}
--- error_code: 409
--- response_json
{"error": {"code": "conflict",
           "details": [{"field": "phone", "issue": "duplicate"}]}}
--- db_unchanged: recipients


=== TEST 9: every invalid field is reported
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"externalId": "$LONG_EXTERNAL_ID", "email": "not-an-email",
 "phone": "015112345678", "name": "$LONG_NAME", "timezone": "Mars/Olympus",
 "locale": "en_GB", "deviceTokens": [{"token": "a b", "platform": "IOS"},
 {"token": "same", "platform": "WEB"}, {"token": "same", "platform": "WEB"}]}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "message": "invalid field externalId: too_long (see details for the other fields)",
           "details": [{"field": "externalId", "issue": "too_long"},
                       {"field": "email", "issue": "invalid_format"},
                       {"field": "phone", "issue": "invalid_format"},
                       {"field": "name", "issue": "too_long"},
                       {"field": "timezone", "issue": "invalid_value"},
                       {"field": "locale", "issue": "invalid_format"},
                       {"field": "deviceTokens[0].token", "issue": "invalid_format"},
                       {"field": "deviceTokens[2].token", "issue": "duplicate"}]}}
--- db_unchanged: recipients, devices, recipient_counts


=== TEST 10: wrong types
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"externalId": 42, "email": ["a@example.com"], "name": {}, "timezone": true}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "externalId", "issue": "invalid_type"},
                       {"field": "email", "issue": "invalid_type"},
                       {"field": "name", "issue": "invalid_type"},
                       {"field": "timezone", "issue": "invalid_type"}]}}
--- db_unchanged: recipients


=== TEST 11: recipient without any address
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "Nobody", "timezone": "UTC", "email": null, "deviceTokens": []}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "message": "a recipient needs at least one of externalId, email, phone or deviceTokens",
           "details": [{"field": "body", "issue": "missing_identifier"}]}}
--- db_unchanged: recipients, recipient_counts


=== TEST 12: body that is not JSON
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"email": 
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: recipients


=== TEST 13: body without a JSON content type
--- request
POST /api/recipients
--- more_headers
X-API-Key: $KEY
Content-Type: text/plain
--- request_body
{"email": "text@example.com"}
--- error_code: 415
--- db_unchanged: recipients


=== TEST 14: create without a key
--- request
POST /api/recipients
--- more_headers
Content-Type: application/json
--- request_body
{"email": "nokey@example.com"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: recipients


=== TEST 15: list filtered by email in any case
--- request
GET /api/recipients?email=ADA%40example.COM
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$ADA_ID", "email": "ada@example.com"}], "nextCursor": null}


=== TEST 16: list filtered by phone with a literal plus
--- request
GET /api/recipients?phone=+4915112345678&externalId=ada-$RUN
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "$ADA_ID"}], "nextCursor": null}


=== TEST 17: list with filters that match nothing
--- request
GET /api/recipients?email=nobody%40example.com
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_body_like
^\{"data":\[\],"nextCursor":null\}\s*$


=== TEST 18: list with invalid filters and limit
--- request
GET /api/recipients?email=nope&phone=12&externalId=&limit=101
--- more_headers
X-API-Key: $KEY
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "limit", "issue": "invalid_value"},
                       {"field": "email", "issue": "invalid_value"},
                       {"field": "phone", "issue": "invalid_value"},
                       {"field": "externalId", "issue": "invalid_value"}]}}


=== TEST 19: preferences of a recipient without a row are the defaults
--- request
GET /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"recipientId": "$ADA_ID",
 "channels": {"EMAIL": true, "SMS": true, "PUSH": true},
 "quietHours": null, "updatedAt": null}


=== TEST 20: preferences replaced
--- request
PUT /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"channels": {"sms": false, "PUSH": true},
 "quietHours": {"start": "22:00", "end": "07:00", "timezone": "America/New_York"}}
--- error_code: 200
--- response_json
{"recipientId": "$ADA_ID",
 "channels": {"EMAIL": true, "SMS": false, "PUSH": true},
 "quietHours": {"start": "22:00", "end": "07:00", "timezone": "America/New_York"},
 "updatedAt": "~$TIME_RE"}


=== TEST 21: preferences read back
--- request
GET /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"channels": {"EMAIL": true, "SMS": false, "PUSH": true},
 "quietHours": {"start": "22:00", "end": "07:00", "timezone": "America/New_York"}}


=== TEST 22: quiet hours without a time zone
--- request
PUT /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"channels": {"EMAIL": false},
 "quietHours": {"start": "00:00", "end": "23:59"}}
--- error_code: 200
--- response_json
{"channels": {"EMAIL": false, "SMS": true, "PUSH": true},
 "quietHours": {"start": "00:00", "end": "23:59", "timezone": null}}


=== TEST 23: invalid preferences
--- request
PUT /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"channels": {"FAX": true, "SMS": "no", "sms": false},
 "quietHours": {"start": "24:00", "end": "7:00", "timezone": "Nowhere/Land"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channels.FAX", "issue": "invalid_value"},
                       {"field": "channels.SMS", "issue": "invalid_type"},
                       {"field": "channels.sms", "issue": "duplicate"},
                       {"field": "quietHours.start", "issue": "invalid_format"},
                       {"field": "quietHours.end", "issue": "invalid_format"},
                       {"field": "quietHours.timezone", "issue": "invalid_value"}]}}
--- db_unchanged: recipient_preferences


=== TEST 24: quiet hours that start when they end
--- request
PUT /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"quietHours": {"start": "22:00", "end": "22:00"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "quietHours.end", "issue": "same_as_start"}]}}
--- db_unchanged: recipient_preferences


=== TEST 25: quiet hours without start and end, channels not an object
--- request
PUT /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"channels": ["EMAIL"], "quietHours": {"timezone": "UTC"}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "channels", "issue": "invalid_type"},
                       {"field": "quietHours.start", "issue": "required"},
                       {"field": "quietHours.end", "issue": "required"}]}}
--- db_unchanged: recipient_preferences


=== TEST 26: preferences of another tenant's recipient
--- request
PUT /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $OTHER_KEY
Content-Type: application/json
--- request_body
{"channels": {"EMAIL": false}}
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "recipient not found"}}
--- db_unchanged: recipient_preferences


=== TEST 27: preferences reset
--- request
DELETE /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
--- error_code: 204
--- response_body


=== TEST 28: preferences after the reset are the defaults
--- request
GET /api/recipients/$ADA_ID/preferences
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"channels": {"EMAIL": true, "SMS": true, "PUSH": true},
 "quietHours": null, "updatedAt": null}


=== TEST 29: devices of the recipient
--- request
GET /api/recipients/$ADA_ID/devices
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"data": [{"id": "~$UUID_RE", "token": "~^(fcm:token-1|web-token[.]2)$",
           "platform": "~^(ANDROID|WEB)$", "active": true,
           "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE"},
          {"id": "~$UUID_RE"}],
 "nextCursor": null}


=== TEST 30: devices of another tenant's recipient
--- request
GET /api/recipients/$ADA_ID/devices
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "recipient not found"}}


=== TEST 31: wrong method on a recipient
--- request
PUT /api/recipients/$ADA_ID
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "x"}
--- error_code: 405
--- response_headers
Allow: GET, HEAD, PATCH, DELETE
