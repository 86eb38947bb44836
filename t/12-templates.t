# /api/templates: create, list, read, update (new versions), delete and
# render, every rejected input (with the template tables unchanged),
# tenant isolation, scopes, and notifications sent with a templateId.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Templates A',
    plan => 'STARTER');
my $other = create_tenant_full($owner->{token}, name => 'Templates B');
my $key = $tenant->{key};
my $run = int(time) . "-$$";

my %vars = (
    RUN       => $run,
    KEY       => $key,
    OTHER_KEY => $other->{key},
    LONG_NAME => 'n' x 201,
    MAX_NAME  => 'm' x 200,
);

run_blocks(vars => \%vars);

my %captured = %NotifyHub::Test::VARS;



sub templates_state {
    my ($tenant_id) = @_;

    return rows_text('SELECT t.id, t.name, t.channel, t.current_version,'
        . ' t.updated_at, t.deleted_at, v.version, v.subject, v.body, v.html,'
        . ' v.variables::text FROM templates t'
        . ' LEFT JOIN template_versions v ON v.template_id = t.id'
        . ' WHERE t.tenant_id = $1 ORDER BY t.id, v.version', $tenant_id);
}


sub create_template {
    my ($api_key, %fields) = @_;

    return api('POST', '/api/templates', key => $api_key, json => \%fields);
}


# Creates a template and returns its reply object. Dies when it fails.
sub must_create {
    my ($api_key, %fields) = @_;
    my $r = create_template($api_key, %fields);

    die "template creation failed: $r->{status} $r->{body}\n"
        unless $r->{status} == 201;

    return $r->{json};
}


# Expects a 400 invalid_request with exactly these details and no change in
# the tenant's templates.
sub rejects_update {
    my ($id, $body, $details, $name) = @_;
    my $before = templates_state($tenant->{tenant_id});
    my $r = api('PUT', "/api/templates/$id", key => $key, json => $body);

    is($r->{status}, 400, "$name: status 400") or diag($r->{body});
    is($r->{json}{error}{code}, 'invalid_request', "$name: code");
    is_deeply($r->{json}{error}{details}, $details, "$name: details");
    is(templates_state($tenant->{tenant_id}), $before,
        "$name: templates unchanged");
}


# --- Created by the blocks ---------------------------------------------------

my $email_id = $captured{EMAIL_ID};

{
    my ($row) = psql('SELECT tenant_id, current_version, deleted_at'
        . ' FROM templates WHERE id = $1', $email_id);

    is($row->[0], $tenant->{tenant_id}, 'template belongs to the tenant');
    is($row->[1], 1, 'new template is at version 1');
    is($row->[2], undef, 'new template is not deleted');

    my @versions = psql('SELECT version, subject, body, html,'
        . ' variables::text FROM template_versions WHERE template_id = $1',
        $email_id);

    is_deeply(\@versions, [[1, 'Hello {{ firstName }}',
        'Order {{ order.id }} for {{firstName}}, total {{order.total}}',
        '<p>{{ firstName }} &amp; {{ order.id }}</p>',
        '{firstName,order.id,order.total}']],
        'first version stored with its variables');
}


# --- Limits -----------------------------------------------------------------

{
    my $max = 'x' x (64 * 1024);
    my $r = create_template($key, name => "max-$run", channel => 'EMAIL',
        subject => 's' x 998, body => $max, html => $max);

    is($r->{status}, 201, 'body and html of 64 KiB accepted')
        or diag(substr $r->{body}, 0, 300);
    is(length($r->{json}{body} // ''), 64 * 1024, 'full body returned');

    my $before = templates_state($tenant->{tenant_id});

    for my $case (
        [body    => { body => $max . 'x' }],
        [html    => { body => 'b', html => $max . 'x' }],
        # 32769 two-byte characters are within 65536 characters but over
        # 65536 bytes.
        [body    => { body => "\x{e9}" x 32769 }],
        [subject => { body => 'b', subject => 's' x 999 }],
    ) {
        my ($field, $fields) = @$case;
        my $over = create_template($key, name => "over-$run",
            channel => 'EMAIL', subject => 's', %$fields);

        is($over->{status}, 400, "$field over the limit is 400");
        is_deeply($over->{json}{error}{details},
            [{ field => $field, issue => 'too_long' }],
            "$field over the limit: details");
    }

    is(templates_state($tenant->{tenant_id}), $before,
        'nothing stored for texts over the limit');

    my $push = create_template($key, name => "title-$run", channel => 'PUSH',
        subject => 't' x 257, body => 'b');
    is($push->{status}, 400, 'push title over 256 characters is 400');
    is_deeply($push->{json}{error}{details},
        [{ field => 'subject', issue => 'too_long' }],
        'push title over the limit: details');
}


# --- Malformed templates ----------------------------------------------------

{
    my $before = templates_state($tenant->{tenant_id});

    for my $case (
        ['body', "Hello\n  {{ name", 8, 2, 3, 'unclosed tag'],
        ['body', 'a }} b', 2, 1, 3, 'unexpected "}}" outside a tag'],
        ['body', 'x {{ }}', 2, 1, 3, 'empty path'],
        ['body', '{{a..b}}', 0, 1, 1, 'empty path segment'],
        ['body', '{{a b}}', 0, 1, 1, 'space inside path'],
        ['body', '{{{a}}}', 0, 1, 1, 'invalid character in path'],
        ['subject', 'Hi {{x', 3, 1, 4, 'unclosed tag'],
        ['html', "<p>\n<b>{{ order.id </b>", 7, 2, 4, 'unclosed tag'],
    ) {
        my ($field, $text, $offset, $line, $column, $reason) = @$case;
        my %fields = (name => "bad-$run", channel => 'EMAIL',
            subject => 'S', body => 'B', $field => $text);
        my $r = create_template($key, %fields);

        is($r->{status}, 400, "malformed $field ($reason) is 400");
        is($r->{json}{error}{code}, 'invalid_request',
            "malformed $field ($reason): code");
        is_deeply($r->{json}{error}{details}, [{
            field    => $field,
            issue    => 'invalid_template',
            position => { offset => $offset, line => $line,
                          column => $column },
            reason   => $reason,
        }], "malformed $field ($reason): details");
    }

    my $two = create_template($key, name => "bad-$run", channel => 'EMAIL',
        subject => '{{', body => 'ok', html => '}}');
    is_deeply([map { $_->{field} } @{ $two->{json}{error}{details} // [] }],
        ['subject', 'html'], 'every malformed text is reported');

    is(templates_state($tenant->{tenant_id}), $before,
        'nothing stored for malformed templates');
}


# --- Versions ---------------------------------------------------------------

{
    my $t = must_create($key, name => "versions-$run", channel => 'EMAIL',
        subject => 'v1 {{a}}', body => 'first {{ a }}');
    my $id = $t->{id};

    my $r = api('PUT', "/api/templates/$id", key => $key, json => {
        name => "versions-renamed-$run", channel => 'email',
        subject => 'v2 {{b.c}}', body => 'second {{ b.c }} {{d}}',
        html => '<i>{{d}}</i>' });

    is($r->{status}, 200, 'update is 200') or diag($r->{body});

    my @errors = json_subset($r->{json}, {
        id => $id, name => "versions-renamed-$run", channel => 'EMAIL',
        version => 2, subject => 'v2 {{b.c}}',
        body => 'second {{ b.c }} {{d}}', html => '<i>{{d}}</i>',
        variables => ['b.c', 'd'], createdAt => $t->{createdAt},
        updatedAt => '~' . var('TIME_RE'),
    });
    ok(!@errors, 'update returns the new version') or diag(join "\n", @errors);

    my $get = api('GET', "/api/templates/$id", key => $key);
    is($get->{json}{version}, 2, 'read returns the current version');
    is($get->{json}{body}, 'second {{ b.c }} {{d}}',
        'read returns the current body');

    my @versions = psql('SELECT version, subject, body, html,'
        . ' variables::text FROM template_versions WHERE template_id = $1'
        . ' ORDER BY version', $id);
    is_deeply(\@versions, [
        [1, 'v1 {{a}}', 'first {{ a }}', undef, '{a}'],
        [2, 'v2 {{b.c}}', 'second {{ b.c }} {{d}}', '<i>{{d}}</i>', '{b.c,d}'],
    ], 'old version kept beside the new one');

    my $third = api('PUT', "/api/templates/$id", key => $key, json => {
        name => "versions-sms-$run", channel => 'SMS', body => 'text {{a}}' });
    is($third->{status}, 200, 'channel may change on update');
    is($third->{json}{version}, 3, 'third version');
    is($third->{json}{subject}, undef, 'SMS version has no subject');
    is($third->{json}{channel}, 'SMS', 'channel changed');

    rejects_update($id, { name => "x-$run", channel => 'SMS', body => 'b',
        subject => 's' }, [{ field => 'subject', issue => 'not_allowed' }],
        'update with a subject for SMS');
    rejects_update($id, { channel => 'SMS', body => '{{' }, [
        { field => 'name', issue => 'required' },
        { field => 'body', issue => 'invalid_template',
          position => { offset => 0, line => 1, column => 1 },
          reason => 'unclosed tag' },
    ], 'update without a name and with a malformed body');
    rejects_update($id, {}, [
        { field => 'name', issue => 'required' },
        { field => 'channel', issue => 'required' },
        { field => 'body', issue => 'required' },
    ], 'update with an empty object');

    # Concurrent updates each get their own version number.
    my @pids;

    for my $n (1 .. 6) {
        my $pid = fork;
        die "fork failed: $!\n" unless defined $pid;

        if ($pid == 0) {
            my $u = api('PUT', "/api/templates/$id", key => $key, json => {
                name => "versions-sms-$run", channel => 'SMS',
                body => "parallel $n" });
            POSIX::_exit($u->{status} == 200 ? 0 : 1);
        }

        push @pids, $pid;
    }

    my $ok = 0;

    for my $pid (@pids) {
        waitpid $pid, 0;
        $ok++ if $? == 0;
    }

    is($ok, 6, 'six concurrent updates succeed');
    is_deeply([map { $_->[0] } psql('SELECT version FROM template_versions'
        . ' WHERE template_id = $1 ORDER BY version', $id)],
        [1 .. 9], 'concurrent updates make versions 4 to 9');
    is(scalar psql('SELECT current_version FROM templates WHERE id = $1',
        $id), 9, 'current version is the last one');
}


# --- Names ------------------------------------------------------------------

{
    my $name = "unique-$run";
    my $first = must_create($key, name => $name, channel => 'SMS',
        body => 'one');

    my $before = templates_state($tenant->{tenant_id});
    my $dup = create_template($key, name => $name, channel => 'sms',
        body => 'two');

    is($dup->{status}, 409, 'duplicate name in one channel is 409');
    is($dup->{json}{error}{code}, 'conflict', 'duplicate name: code');
    is_deeply($dup->{json}{error}{details},
        [{ field => 'name', issue => 'duplicate' }], 'duplicate name: details');
    is(templates_state($tenant->{tenant_id}), $before,
        'duplicate name: templates unchanged');

    my $push = create_template($key, name => $name, channel => 'PUSH',
        body => 'push');
    is($push->{status}, 201, 'same name in another channel is allowed');

    my $elsewhere = create_template($other->{key}, name => $name,
        channel => 'SMS', body => 'other tenant');
    is($elsewhere->{status}, 201, 'same name in another tenant is allowed');

    # Renaming onto an existing name is a conflict too.
    my $second = must_create($key, name => "rename-$run", channel => 'SMS',
        body => 'second');
    $before = templates_state($tenant->{tenant_id});

    my $rename = api('PUT', "/api/templates/$second->{id}", key => $key,
        json => { name => $name, channel => 'SMS', body => 'renamed' });
    is($rename->{status}, 409, 'rename onto a used name is 409');
    is_deeply($rename->{json}{error}{details},
        [{ field => 'name', issue => 'duplicate' }], 'rename conflict: details');
    is(templates_state($tenant->{tenant_id}), $before,
        'rename conflict: no new version');

    # Moving to a channel where the name is in use is a conflict.
    my $move = api('PUT', "/api/templates/$first->{id}", key => $key,
        json => { name => $name, channel => 'PUSH', body => 'moved' });
    is($move->{status}, 409, 'channel change onto a used name is 409');

    # Concurrent creates with one name: exactly one wins.
    my $race = "race-$run";
    my @pids;

    for (1 .. 8) {
        my $pid = fork;
        die "fork failed: $!\n" unless defined $pid;

        if ($pid == 0) {
            my $r = create_template($key, name => $race, channel => 'EMAIL',
                subject => 's', body => 'b');
            POSIX::_exit($r->{status} == 201 ? 0
                : $r->{status} == 409 ? 1 : 2);
        }

        push @pids, $pid;
    }

    my %codes;

    for my $pid (@pids) {
        waitpid $pid, 0;
        $codes{$? >> 8}++;
    }

    is($codes{0}, 1, 'one of eight concurrent creates wins');
    is($codes{1}, 7, 'the other seven are 409');
    is(scalar psql('SELECT count(*) FROM templates WHERE tenant_id = $1'
        . ' AND name = $2', $tenant->{tenant_id}, $race), 1,
        'one row for the raced name');
}


# --- Delete -----------------------------------------------------------------

{
    my $t = must_create($key, name => "delete-$run", channel => 'SMS',
        body => 'gone {{x}}');
    my $id = $t->{id};

    my $foreign = api('DELETE', "/api/templates/$id", key => $other->{key});
    is($foreign->{status}, 404, 'delete by another tenant is 404');
    is($foreign->{json}{error}{code}, 'not_found',
        'delete by another tenant: code');

    my $r = api('DELETE', "/api/templates/$id", key => $key);
    is($r->{status}, 204, 'delete is 204');
    is($r->{body}, '', 'delete has no body');

    for my $request (['GET', "/api/templates/$id", undef],
                     ['DELETE', "/api/templates/$id", undef],
                     ['PUT', "/api/templates/$id",
                      { name => "delete-$run", channel => 'SMS', body => 'b' }],
                     ['POST', "/api/templates/$id/render", { data => {} }])
    {
        my ($method, $path, $body) = @$request;
        my $again = api($method, $path, key => $key,
            defined $body ? (json => $body) : ());

        is($again->{status}, 404, "$method of a deleted template is 404");
        is($again->{json}{error}{message}, 'template not found',
            "$method of a deleted template: message");
    }

    my ($row) = psql('SELECT deleted_at IS NOT NULL, (SELECT count(*)'
        . ' FROM template_versions WHERE template_id = $1)'
        . ' FROM templates WHERE id = $1', $id);
    is_deeply($row, ['t', 1], 'deleted template keeps its row and version');

    my $list = api('GET', '/api/templates?limit=100', key => $key);
    ok(!grep({ $_->{id} eq $id } @{ $list->{json}{data} // [] }),
        'deleted template is not listed');

    my $reuse = create_template($key, name => "delete-$run",
        channel => 'SMS', body => 'new');
    is($reuse->{status}, 201, 'name of a deleted template can be reused');
}


# --- Plan limit -------------------------------------------------------------

# A FREE tenant has at most 10 templates. The 11th is a 403 that stores
# nothing, and a deleted template frees its place.
{
    my $owner3 = signup_owner();
    my $free = create_tenant_full($owner3->{token}, name => 'Templates FREE');
    my @ids;

    for my $n (1 .. 10) {
        my $r = api('POST', '/api/templates', key => $free->{key},
            json => { name => "limit-$n", channel => 'SMS', body => 'Hi' });
        die "template $n: " . describe_response($r) . "\n"
            unless $r->{status} == 201;
        push @ids, $r->{json}{id};
    }

    my $over = api('POST', '/api/templates', key => $free->{key},
        json => { name => 'limit-11', channel => 'SMS', body => 'Hi' });

    is($over->{status}, 403, 'the 11th template of a FREE tenant is 403');
    is($over->{json}{error}{code}, 'forbidden',
        'the 11th template has code forbidden');
    is_deeply($over->{json}{error}{details},
        [{ field => 'templates', issue => 'plan_limit', max => 10 }],
        'the 11th template names the plan limit');
    is(psql('SELECT count(*) FROM templates WHERE tenant_id = $1',
            $free->{tenant_id}), 10, 'the 11th template is not stored');

    is(api('DELETE', "/api/templates/$ids[0]", key => $free->{key})
        ->{status}, 204, 'a template is deleted');
    is(api('POST', '/api/templates', key => $free->{key},
        json => { name => 'limit-11', channel => 'SMS', body => 'Hi' })
        ->{status}, 201, 'a deleted template frees a place');
}


# --- List -------------------------------------------------------------------

{
    my $owner2 = signup_owner();
    my $lister = create_tenant_full($owner2->{token}, name => 'Lister');
    my @ids;

    for my $n (1 .. 5) {
        my $channel = $n % 2 ? 'SMS' : 'PUSH';
        push @ids, must_create($lister->{key}, name => "list-$n",
            channel => $channel, body => "body $n")->{id};
    }

    my @seen;
    my $path = '/api/templates?limit=2';

    for my $page (1 .. 4) {
        my $r = api('GET', $path, key => $lister->{key});

        is($r->{status}, 200, "list page $page is 200");
        push @seen, map { $_->{id} } @{ $r->{json}{data} // [] };

        last unless defined $r->{json}{nextCursor};
        $path = "/api/templates?limit=2&cursor=$r->{json}{nextCursor}";
    }

    is_deeply(\@seen, [reverse @ids], 'pages list every template newest first');

    my $sms = api('GET', '/api/templates?channel=sms', key => $lister->{key});
    is_deeply([map { $_->{id} } @{ $sms->{json}{data} // [] }],
        [@ids[4, 2, 0]], 'channel filter in any case');
    ok((grep { $_->{channel} eq 'SMS' } @{ $sms->{json}{data} }) == 3,
        'filtered list has only SMS templates');
    is($sms->{json}{nextCursor}, undef, 'single page has no next cursor');

    my $bad = api('GET', '/api/templates?channel=FAX&limit=0',
        key => $lister->{key});
    is($bad->{status}, 400, 'invalid channel and limit are 400');
    is_deeply($bad->{json}{error}{details}, [
        { field => 'limit', issue => 'invalid_value' },
        { field => 'channel', issue => 'invalid_value' },
    ], 'invalid list arguments: details');

    my $tampered = api('GET', '/api/templates?cursor=AAAA',
        key => $lister->{key});
    is($tampered->{status}, 400, 'invalid cursor is 400');

    my $empty = api('GET', '/api/templates', key => $other->{key});
    ok(!grep({ my $id = $_->{id}; grep { $_ eq $id } @ids }
             @{ $empty->{json}{data} // [] }),
        'another tenant lists none of these templates');
}


# --- Render -----------------------------------------------------------------

{
    my $t = must_create($key, name => "render-$run", channel => 'EMAIL',
        subject => 'Order {{ order.id }} for {{user.name}}',
        body => 'Hi {{user.name}} <{{ user.email }}>, items: {{ order.items.0 }}',
        html => '<p title="{{user.name}}">{{ user.name }} {{order.id}}</p>');
    my $id = $t->{id};

    is_deeply($t->{variables},
        ['order.id', 'user.name', 'user.email', 'order.items.0'],
        'variables in order of first use across subject, body and html');

    my $data = { user => { name => q{Tom & "Jerry" <b>'s}, email => 'a@b.c' },
                 order => { id => 42, items => ['<pen>'] } };
    my $r = api('POST', "/api/templates/$id/render", key => $key,
        json => { data => $data });

    is($r->{status}, 200, 'render is 200') or diag($r->{body});
    is_deeply($r->{json}, {
        subject => q{Order 42 for Tom & "Jerry" <b>'s},
        body    => q{Hi Tom & "Jerry" <b>'s <a@b.c>, items: <pen>},
        html    => '<p title="Tom &amp; &quot;Jerry&quot; &lt;b&gt;&#39;s">'
                   . 'Tom &amp; &quot;Jerry&quot; &lt;b&gt;&#39;s 42</p>',
    }, 'values escaped in html only');

    my $missing = api('POST', "/api/templates/$id/render", key => $key,
        json => { data => { user => { name => 'A' }, order => {} } });
    is($missing->{status}, 422, 'missing variables are 422');
    is($missing->{json}{error}{code}, 'missing_variables',
        'missing variables: code');
    is_deeply($missing->{json}{error}{details}, [
        { field => 'data.order.id', issue => 'missing' },
        { field => 'data.user.email', issue => 'missing' },
        { field => 'data.order.items.0', issue => 'missing' },
    ], 'every missing path in order of first use');
    is($missing->{json}{error}{message},
        'missing variables in data: order.id, user.email, order.items.0',
        'message lists the missing paths');

    my $nodata = api('POST', "/api/templates/$id/render", key => $key,
        json => {});
    is($nodata->{status}, 422, 'render without data is 422');
    is(scalar @{ $nodata->{json}{error}{details} // [] }, 4,
        'without data every variable is missing');

    my $plain = must_create($key, name => "plain-$run", channel => 'SMS',
        body => 'no variables');
    my $ok = api('POST', "/api/templates/$plain->{id}/render", key => $key,
        json => {});
    is($ok->{status}, 200, 'template without variables renders without data');
    is_deeply($ok->{json}, { subject => undef, body => 'no variables',
        html => undef }, 'absent parts render as null');

    my $invalid = api('POST', "/api/templates/$id/render", key => $key,
        json => { data => [1] });
    is($invalid->{status}, 400, 'data that is not an object is 400');
    is_deeply($invalid->{json}{error}{details},
        [{ field => 'data', issue => 'invalid_type' }],
        'data that is not an object: details');

    my $foreign = api('POST', "/api/templates/$id/render",
        key => $other->{key}, json => { data => $data });
    is($foreign->{status}, 404, 'render of another tenant\'s template is 404');

    # Each of 20 uses inserts 32 KiB, so the body would be 640 KiB.
    my $big = must_create($key, name => "big-$run", channel => 'SMS',
        body => '{{v}}' x 20);
    my $huge = api('POST', "/api/templates/$big->{id}/render", key => $key,
        json => { data => { v => 'x' x 32768 } });
    is($huge->{status}, 422, 'rendered output over 512 KiB is 422');
    is($huge->{json}{error}{code}, 'output_too_large',
        'rendered output over the limit: code');
    is_deeply($huge->{json}{error}{details},
        [{ field => 'body', issue => 'too_large' }],
        'rendered output over the limit: details');
}


# --- Scopes -----------------------------------------------------------------

{
    my $t = must_create($key, name => "scopes-$run", channel => 'SMS',
        body => 'scoped {{x}}');
    my %keys;

    for my $scope (qw(templates:read notifications:write)) {
        my $r = api('POST', "/api/tenants/$tenant->{tenant_id}/api-keys",
            token => $owner->{token},
            json => { name => $scope, scopes => [$scope] });
        die "key creation failed: $r->{body}\n" unless $r->{status} == 201;
        $keys{$scope} = $r->{json}{key};
    }

    my $read = $keys{'templates:read'};

    is(api('GET', "/api/templates/$t->{id}", key => $read)->{status}, 200,
        'templates:read can read');
    is(api('GET', '/api/templates', key => $read)->{status}, 200,
        'templates:read can list');
    is(api('POST', "/api/templates/$t->{id}/render", key => $read,
        json => { data => { x => 1 } })->{status}, 200,
        'templates:read can render');

    my $before = templates_state($tenant->{tenant_id});

    for my $request (
        ['POST', '/api/templates',
         { name => "denied-$run", channel => 'SMS', body => 'b' }],
        ['PUT', "/api/templates/$t->{id}",
         { name => "denied-$run", channel => 'SMS', body => 'b' }],
        ['DELETE', "/api/templates/$t->{id}", undef],
    ) {
        my ($method, $path, $body) = @$request;
        my $r = api($method, $path, key => $read,
            defined $body ? (json => $body) : ());

        is($r->{status}, 403, "$method without templates:write is 403");
        is_deeply($r->{json}{error}{details},
            [{ field => 'templates:write', issue => 'missing_scope' }],
            "$method without templates:write: details");
    }

    my $write = $keys{'notifications:write'};

    is(api('GET', "/api/templates/$t->{id}", key => $write)->{status}, 403,
        'read without templates:read is 403');
    is(templates_state($tenant->{tenant_id}), $before,
        'requests without the scope change nothing');
}

# --- Notifications with a templateId -----------------------------------------

sub send_notification {
    my ($api_key, $body, %opts) = @_;

    return api('POST', '/api/notifications', key => $api_key, json => $body,
        %opts);
}


# Expects an error reply with this status, code and details, and no new
# notification.
sub rejects_send {
    my ($body, $status, $code, $details, $name) = @_;
    my $before = table_count('notifications');
    my $r = send_notification($key, $body);

    is($r->{status}, $status, "$name: status $status") or diag($r->{body});
    is($r->{json}{error}{code}, $code, "$name: code");
    is_deeply($r->{json}{error}{details}, $details, "$name: details")
        if defined $details;
    is(table_count('notifications'), $before, "$name: nothing stored");

    return $r;
}


{
    my $t = must_create($key, name => "send-$run", channel => 'EMAIL',
        subject => 'Order {{ order.id }} shipped',
        body => "Hi {{ user.name }},\norder {{order.id}} is on its way.",
        html => '<p>Hi <b>{{ user.name }}</b>, order {{ order.id }}.</p>');
    my $address = unique_email('templated');
    my $data = { user => { name => 'Ada <Lovelace>' }, order => { id => 42 } };

    my $r = send_notification($key, { channel => 'email',
        to => { email => $address }, templateId => uc $t->{id},
        data => $data });

    is($r->{status}, 202, 'templated notification accepted')
        or diag($r->{body});

    my @errors = json_subset($r->{json}, {
        templateId => $t->{id}, templateVersion => 1,
        subject => 'Order 42 shipped',
        body => "Hi Ada <Lovelace>,\norder 42 is on its way.",
        html => '<p>Hi <b>Ada &lt;Lovelace&gt;</b>, order 42.</p>',
        data => $data, status => 'PENDING',
    });
    ok(!@errors, 'notification holds the rendered texts')
        or diag(join "\n", @errors);

    my $id = $r->{json}{id};
    my ($row) = psql('SELECT template_id, template_version, subject, body,'
        . ' html FROM notifications WHERE id = $1', $id);
    is_deeply($row, [$t->{id}, 1, 'Order 42 shipped',
        "Hi Ada <Lovelace>,\norder 42 is on its way.",
        '<p>Hi <b>Ada &lt;Lovelace&gt;</b>, order 42.</p>'],
        'stored row has the template version and rendered texts');

    # A later edit of the template leaves the accepted notification alone.
    my $edit = api('PUT', "/api/templates/$t->{id}", key => $key, json => {
        name => "send-$run", channel => 'EMAIL', subject => 'Changed {{x}}',
        body => 'Changed' });
    is($edit->{status}, 200, 'template edited after the send');

    my $get = api('GET', "/api/notifications/$id", key => $key);
    is($get->{json}{subject}, 'Order 42 shipped',
        'accepted notification keeps its subject after the edit');
    is($get->{json}{templateVersion}, 1,
        'accepted notification keeps its template version');

    my $message = wait_for(sub {
        my @found = mailgun_messages(to => $address);
        return $found[0];
    }, timeout => 30);

    ok($message, 'templated email reached the fake Mailgun');
    is($message->{subject}, 'Order 42 shipped', 'delivered subject');
    is($message->{text}, "Hi Ada <Lovelace>,\norder 42 is on its way.",
        'delivered text');
    is($message->{html}, '<p>Hi <b>Ada &lt;Lovelace&gt;</b>, order 42.</p>',
        'delivered html');

    my $v2 = send_notification($key, { channel => 'EMAIL',
        to => { email => $address }, templateId => $t->{id},
        data => { x => 'y' } });
    is($v2->{status}, 202, 'send after the edit accepted');
    is($v2->{json}{templateVersion}, 2, 'send after the edit uses version 2');
    is($v2->{json}{subject}, 'Changed y', 'send after the edit renders it');

    # The same idempotency key and body replay the first reply.
    my %repeat = (channel => 'EMAIL', to => { email => $address },
        templateId => $t->{id}, data => { x => 'z' },
        idempotencyKey => "tpl-$run");
    my $first = send_notification($key, \%repeat);
    my $again = send_notification($key, \%repeat);
    is($first->{status}, 202, 'templated send with a key accepted');
    is($again->{status}, 202, 'templated repeat replayed');
    is($again->{json}{id}, $first->{json}{id}, 'replay returns the first id');
    is($again->{headers}{'idempotent-replayed'}, 'true',
        'replay has Idempotent-Replayed');

    my %base = (channel => 'EMAIL', to => { email => $address },
        templateId => $t->{id}, data => { x => 1 });

    rejects_send({ %base, content => { subject => 's', body => 'b' } },
        400, 'invalid_request',
        [{ field => 'content', issue => 'conflicts_with_templateId' }],
        'templateId with content');
    rejects_send({ channel => 'EMAIL', to => { email => $address } },
        400, 'invalid_request', [{ field => 'content', issue => 'required' }],
        'neither templateId nor content');
    rejects_send({ %base, templateId => 'not-a-uuid' }, 400,
        'invalid_request',
        [{ field => 'templateId', issue => 'invalid_format' }],
        'templateId that is not a UUID');
    rejects_send({ %base, templateId => 7 }, 400, 'invalid_request',
        [{ field => 'templateId', issue => 'invalid_type' }],
        'templateId that is not a string');
    rejects_send({ %base, data => {} }, 422, 'missing_variables',
        [{ field => 'data.x', issue => 'missing' }],
        'templated send with a missing variable');

    my $sms = must_create($key, name => "send-sms-$run", channel => 'SMS',
        body => 'Code {{code}} for {{ user.name }}');

    rejects_send({ %base, templateId => $sms->{id} }, 400,
        'invalid_request',
        [{ field => 'templateId', issue => 'channel_mismatch' }],
        'template of another channel');

    my $missing = rejects_send({ channel => 'SMS',
        to => { phone => '+14155550100' }, templateId => $sms->{id} },
        422, 'missing_variables',
        [{ field => 'data.code', issue => 'missing' },
         { field => 'data.user.name', issue => 'missing' }],
        'templated SMS without data');
    is($missing->{json}{error}{message},
        'missing variables in data: code, user.name',
        'templated SMS without data: message');

    my $sent = send_notification($key, { channel => 'SMS',
        to => { phone => '+14155550100' }, templateId => $sms->{id},
        data => { code => 123456, user => { name => 'Bo' } } });
    is($sent->{status}, 202, 'templated SMS accepted');
    is($sent->{json}{body}, 'Code 123456 for Bo', 'templated SMS body');
    is($sent->{json}{subject}, undef, 'templated SMS has no subject');

    # 1531 GSM-7 characters need 11 parts, one more than allowed.
    rejects_send({ channel => 'SMS', to => { phone => '+14155550100' },
        templateId => $sms->{id},
        data => { code => 'c' x 1531, user => { name => 'Bo' } } },
        400, 'invalid_request',
        [{ field => 'content.body', issue => 'too_long' }],
        'templated SMS over 10 parts');

    my $push = must_create($key, name => "send-push-$run", channel => 'PUSH',
        subject => '{{title}}', body => '{{text}}');
    rejects_send({ channel => 'PUSH', to => { deviceToken => 'tok-1' },
        templateId => $push->{id},
        data => { title => 't', text => 'x' x 4000 } },
        400, 'invalid_request', [{ field => 'content', issue => 'too_large' }],
        'templated push over 4 KiB');

    my $foreign = must_create($other->{key}, name => "foreign-$run",
        channel => 'EMAIL', subject => 's', body => 'b');
    my $not_found = rejects_send({ %base, templateId => $foreign->{id} },
        404, 'not_found', undef, 'template of another tenant');
    is($not_found->{json}{error}{message}, 'template not found',
        'template of another tenant: message');

    my $gone = must_create($key, name => "send-gone-$run", channel => 'EMAIL',
        subject => 's', body => 'b');
    api('DELETE', "/api/templates/$gone->{id}", key => $key);
    rejects_send({ %base, templateId => $gone->{id} }, 404, 'not_found',
        undef, 'deleted template');

    is(scalar psql('SELECT count(*) FROM template_versions'
        . ' WHERE template_id = $1', $t->{id}), 2,
        'both versions of the sent template kept');
}


done_testing();


__DATA__

=== TEST 1: email template created
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "Welcome $RUN", "channel": "email",
 "subject": "Hello {{ firstName }}",
 "body": "Order {{ order.id }} for {{firstName}}, total {{order.total}}",
 "html": "<p>{{ firstName }} &amp; {{ order.id }}</p>"}
--- error_code: 201
--- response_json
{"id": "~$UUID_RE", "name": "Welcome $RUN", "channel": "EMAIL",
 "version": 1, "subject": "Hello {{ firstName }}",
 "body": "Order {{ order.id }} for {{firstName}}, total {{order.total}}",
 "html": "<p>{{ firstName }} &amp; {{ order.id }}</p>",
 "variables": ["firstName", "order.id", "order.total"],
 "createdAt": "~$TIME_RE", "updatedAt": "~$TIME_RE"}
--- capture
EMAIL_ID = /id


=== TEST 2: SMS template without subject or html
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "Code $RUN", "channel": "Sms", "body": "Your code is {{code}}"}
--- error_code: 201
--- response_json
{"channel": "SMS", "version": 1, "subject": null, "html": null,
 "body": "Your code is {{code}}", "variables": ["code"]}


=== TEST 3: push template with a title and a name of 200 characters
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "$MAX_NAME", "channel": "PUSH", "subject": "{{ title }}",
 "body": "Plain body"}
--- error_code: 201
--- response_json
{"name": "$MAX_NAME", "channel": "PUSH", "subject": "{{ title }}",
 "html": null, "variables": ["title"]}


=== TEST 4: template read
--- request
GET /api/templates/$EMAIL_ID
--- more_headers
X-API-Key: $KEY
--- error_code: 200
--- response_json
{"id": "$EMAIL_ID", "name": "Welcome $RUN", "channel": "EMAIL",
 "version": 1, "variables": ["firstName", "order.id", "order.total"]}


=== TEST 5: template of another tenant
--- request
GET /api/templates/$EMAIL_ID
--- more_headers
X-API-Key: $OTHER_KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}


=== TEST 6: template id that is not a UUID
--- request
GET /api/templates/not-a-uuid
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}


=== TEST 7: template id that does not exist
--- request
GET /api/templates/01932c07-a2b1-7c3d-8e4f-0123456789ab
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}


=== TEST 8: update of another tenant's template
--- request
PUT /api/templates/$EMAIL_ID
--- more_headers
X-API-Key: $OTHER_KEY
Content-Type: application/json
--- request_body
{"name": "Stolen", "channel": "SMS", "body": "b"}
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}
--- db_unchanged: templates, template_versions


=== TEST 9: update of a non-UUID id
--- request
PUT /api/templates/123
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "x", "channel": "SMS", "body": "b"}
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}
--- db_unchanged: templates, template_versions


=== TEST 10: render of a non-UUID id
--- request
POST /api/templates/123/render
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"data": {}}
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}


=== TEST 11: delete of a non-UUID id
--- request
DELETE /api/templates/123
--- more_headers
X-API-Key: $KEY
--- error_code: 404
--- response_json
{"error": {"code": "not_found", "message": "template not found"}}
--- db_unchanged: templates, template_versions


=== TEST 12: create without a key
--- request
POST /api/templates
--- more_headers
Content-Type: application/json
--- request_body
{"name": "x", "channel": "SMS", "body": "b"}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: templates, template_versions


=== TEST 13: list without a key
--- request
GET /api/templates
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}, "!data": null}


=== TEST 14: create with an empty object
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "details": [{"field": "name", "issue": "required"},
              {"field": "channel", "issue": "required"},
              {"field": "body", "issue": "required"}]}}
--- db_unchanged: templates, template_versions


=== TEST 15: email template without a subject
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "No subject $RUN", "channel": "EMAIL", "body": "b"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "details": [{"field": "subject", "issue": "required"}]}}
--- db_unchanged: templates, template_versions


=== TEST 16: SMS template with subject and html
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "SMS extra $RUN", "channel": "SMS", "subject": "s", "body": "b",
 "html": "<b>h</b>"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "details": [{"field": "subject", "issue": "not_allowed"},
              {"field": "html", "issue": "not_allowed"}]}}
--- db_unchanged: templates, template_versions


=== TEST 17: push template with html
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "Push html $RUN", "channel": "PUSH", "body": "b", "html": "<b>h</b>"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "details": [{"field": "html", "issue": "not_allowed"}]}}
--- db_unchanged: templates, template_versions


=== TEST 18: unknown channel, long name and wrong types
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "$LONG_NAME", "channel": "FAX", "subject": 7, "body": ["b"]}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "details": [{"field": "name", "issue": "too_long"},
              {"field": "channel", "issue": "invalid_value"},
              {"field": "subject", "issue": "invalid_type"},
              {"field": "body", "issue": "invalid_type"}]}}
--- db_unchanged: templates, template_versions


=== TEST 19: empty name and body
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "", "channel": "SMS", "body": ""}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "details": [{"field": "name", "issue": "required"},
              {"field": "body", "issue": "required"}]}}
--- db_unchanged: templates, template_versions


=== TEST 20: malformed body with its position
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name": "Broken $RUN", "channel": "SMS", "body": "Hi\n{{ name"}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
  "message": "invalid field body: invalid_template",
  "details": [{"field": "body", "issue": "invalid_template",
               "position": {"offset": 3, "line": 2, "column": 1},
               "reason": "unclosed tag"}]}}
--- db_unchanged: templates, template_versions


=== TEST 21: request body that is not JSON
--- request
POST /api/templates
--- more_headers
X-API-Key: $KEY
Content-Type: application/json
--- request_body
{"name":
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: templates, template_versions
