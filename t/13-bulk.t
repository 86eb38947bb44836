# POST /api/notifications/bulk: per-item results in input order, the
# plan's bulk size, per-item idempotency keys, a full batch of 1000 stored
# in one transaction and delivered, and the 16 MiB body limit.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Bulk FREE');
my $run = int(time) . "-$$";

sub rfc3339 {
    my ($epoch) = @_;
    return strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime $epoch);
}

sub tenant_count {
    my ($tenant_id) = @_;
    return psql('SELECT count(*) FROM notifications WHERE tenant_id = $1',
        $tenant_id);
}

sub sms_item {
    my ($text) = @_;
    return { channel => 'SMS', to => { phone => '+14155550100' },
             content => { body => $text } };
}

sub bulk {
    my ($key, $items, %opts) = @_;
    return api('POST', '/api/notifications/bulk', key => $key,
        json => { notifications => $items }, timeout => 60, %opts);
}

run_blocks(vars => {
    KEY => $tenant->{key},
    RUN => $run,
});


# --- Flows ------------------------------------------------------------------

# Valid EMAIL, SMS, PUSH and scheduled items between every kind of invalid
# item: each gets its own result at its index, and only the valid ones are
# stored.
{
    my $email = unique_email('bulk-mixed');
    my @items = (
        { channel => 'EMAIL', to => { email => $email },
          content => { subject => 'Mixed', body => 'Mixed batch' },
          metadata => { batch => "mixed-$run" } },
        sms_item('Mixed batch'),
        { channel => 'PUSH', to => { deviceToken => 'device-token:1' },
          content => { subject => 'Title', body => 'Mixed batch' },
          data => { orderId => 7 }, priority => 'high' },
        'not an object',
        { to => { email => $email }, content => { subject => 's', body => 'b' } },
        { channel => 'EMAIL', to => { email => 'no-at-sign' },
          content => { subject => 's', body => 'b' } },
        { channel => 'SMS', to => { phone => '+14155550100' },
          content => { subject => 's', body => 'b' } },
        { channel => 'EMAIL', to => { email => $email },
          templateId => '01938a4e-0000-7000-8000-000000000000' },
        { channel => 'PUSH', to => { deviceToken => 'bad token!' },
          content => { body => 'b' } },
        { channel => 'EMAIL', to => { email => unique_email('bulk-later') },
          content => { subject => 'Later', body => 'Later' },
          scheduledAt => rfc3339(time + 3600) },
    );
    my $before = tenant_count($tenant->{tenant_id});
    my $r = bulk($tenant->{key}, \@items);

    is($r->{status}, 202, 'mixed batch is accepted') or diag($r->{body});
    is($r->{json}{accepted}, 4, 'mixed batch accepts the four valid items');
    is($r->{json}{rejected}, 6, 'mixed batch rejects the six invalid items');

    my @results = @{ $r->{json}{results} // [] };

    is(scalar(@results), scalar(@items), 'one result per item');
    is_deeply([map { $_->{index} } @results], [0 .. $#items],
        'results are in input order');

    my %notification = (
        0 => { channel => 'EMAIL', status => 'PENDING',
               to => { email => $email }, subject => 'Mixed',
               metadata => { batch => "mixed-$run" } },
        1 => { channel => 'SMS', status => 'PENDING',
               to => { phone => '+14155550100' }, subject => undef },
        2 => { channel => 'PUSH', status => 'PENDING', priority => 'HIGH',
               to => { deviceToken => 'device-token:1' },
               subject => 'Title', data => { orderId => 7 } },
        9 => { channel => 'EMAIL', status => 'SCHEDULED' },
    );

    for my $i (sort keys %notification) {
        my $n = $results[$i]{notification};

        ok($n && !exists $results[$i]{error}, "item $i has a notification")
            or diag(explain($results[$i]));
        like($n->{id} // '', qr/$NotifyHub::Test::BUILTIN_VARS{UUID_RE}/,
            "item $i has an id");
        ok(!exists $results[$i]{replayed}, "item $i is not replayed");

        for my $field (sort keys %{ $notification{$i} }) {
            is_deeply($n->{$field}, $notification{$i}{$field},
                "item $i has the expected $field");
        }
    }

    like($results[9]{notification}{scheduledAt} // '',
        qr/$NotifyHub::Test::BUILTIN_VARS{TIME_RE}/,
        'scheduled item returns scheduledAt');

    my %error = (
        3 => [{ field => 'notifications[3]', issue => 'invalid_type' }],
        4 => [{ field => 'channel', issue => 'required' }],
        5 => [{ field => 'to.email', issue => 'invalid_format' }],
        6 => [{ field => 'content.subject', issue => 'not_allowed' }],
        8 => [{ field => 'to.deviceToken', issue => 'invalid_format' }],
    );

    for my $i (sort keys %error) {
        my $e = $results[$i]{error};

        ok($e && !exists $results[$i]{notification}, "item $i has an error")
            or diag(explain($results[$i]));
        is($e->{code}, 'invalid_request', "item $i error code");
        like($e->{message} // '', qr/^invalid field \Q$error{$i}[0]{field}\E/,
            "item $i error message names the field");
        is_deeply($e->{details}, $error{$i}, "item $i error details");
    }

    is_deeply($results[7]{error},
        { code => 'not_found', message => 'template not found' },
        'item 7 names an unknown template: not_found, as a single send');

    is(tenant_count($tenant->{tenant_id}), $before + 4,
        'only the valid items are stored');

    my @ids = map { $results[$_]{notification}{id} // '' } 0, 1, 2, 9;
    is(psql('SELECT count(*) FROM notifications WHERE tenant_id = $1'
            . ' AND id = ANY (string_to_array($2, \',\')::uuid[])',
            $tenant->{tenant_id}, join(',', @ids)),
        4, 'the stored rows are the returned notifications');

    my $id = $results[0]{notification}{id} // '';
    my $sent = wait_for(sub {
        psql('SELECT status FROM notifications WHERE id = $1', $id) eq 'SENT'
    }, timeout => 30);

    ok($sent, 'email item of the batch is sent');
    is(scalar(mailgun_messages(to => $email)), 1,
        'email item reaches the provider once');
}

# Items that name templates: one query fetches every template of the
# batch, each item is rendered with its own data, and a failure is the
# item's own error, as a single send with the item gets it.
{
    my %created;

    for my $t (['welcome', 'EMAIL', 'Hi {{name}}', 'Order {{ order.id }}',
                '<p>{{name}}</p>'],
               ['code', 'SMS', undef, 'Code {{code}}', undef]) {
        my %request = (name => "bulk-$t->[0]-$run", channel => $t->[1],
                       body => $t->[3]);
        $request{subject} = $t->[2] if defined $t->[2];
        $request{html} = $t->[4] if defined $t->[4];

        my $r = api('POST', '/api/templates', key => $tenant->{key},
            json => \%request);
        is($r->{status}, 201, "template $t->[0] is created")
            or diag($r->{body});
        $created{$t->[0]} = $r->{json}{id};
    }

    my $gone = api('POST', '/api/templates', key => $tenant->{key},
        json => { name => "bulk-gone-$run", channel => 'SMS',
                  body => 'Gone' })->{json}{id};
    is(api('DELETE', "/api/templates/$gone", key => $tenant->{key})
        ->{status}, 204, 'a third template is deleted');

    my $email = unique_email('bulk-template');
    my @items = (
        { channel => 'EMAIL', to => { email => $email },
          templateId => $created{welcome},
          data => { name => 'Ada & Co', order => { id => 42 } } },
        { channel => 'SMS', to => { phone => '+14155550100' },
          templateId => $created{code}, data => { code => '1234' } },
        { channel => 'EMAIL', to => { email => $email },
          templateId => $created{welcome}, data => { name => 'Bob' } },
        { channel => 'SMS', to => { phone => '+14155550100' },
          templateId => $created{welcome}, data => { name => 'Eve' } },
        { channel => 'SMS', to => { phone => '+14155550100' },
          templateId => $gone, data => {} },
        { channel => 'EMAIL', to => { email => $email },
          templateId => $created{welcome},
          data => { name => 'Cy', order => { id => 7 } } },
    );
    my $before = tenant_count($tenant->{tenant_id});
    my $r = bulk($tenant->{key}, \@items);

    is($r->{status}, 202, 'batch with templates is accepted')
        or diag($r->{body});
    is($r->{json}{accepted}, 3, 'three templated items are accepted');
    is($r->{json}{rejected}, 3, 'three templated items are rejected');

    my @results = @{ $r->{json}{results} // [] };
    my $first = $results[0]{notification} // {};

    is_deeply([@$first{qw(templateId templateVersion subject body html)}],
        [$created{welcome}, 1, 'Hi Ada & Co', 'Order 42',
         '<p>Ada &amp; Co</p>'],
        'item 0 is rendered with its own data, escaped in html only');
    is_deeply([@{ $results[1]{notification} // {} }{qw(templateId body)}],
        [$created{code}, 'Code 1234'], 'item 1 renders the SMS template');
    is($results[5]{notification}{body}, 'Order 7',
        'item 5 renders the shared template with its own data');

    is($results[2]{error}{code}, 'missing_variables',
        'item 2 without order.id is missing_variables');
    is_deeply($results[2]{error}{details},
        [{ field => 'data.order.id', issue => 'missing' }],
        'item 2 names the missing variable');
    is_deeply($results[3]{error}{details},
        [{ field => 'templateId', issue => 'channel_mismatch' }],
        'item 3 uses an EMAIL template for an SMS');
    is($results[3]{error}{code}, 'invalid_request',
        'item 3 error code is invalid_request');
    is($results[4]{error}{code}, 'not_found',
        'item 4 names a deleted template');

    is(tenant_count($tenant->{tenant_id}), $before + 3,
        'only the rendered items are stored');
    is(psql('SELECT body || \'|\' || template_version FROM notifications'
            . ' WHERE id = $1', $first->{id} // ''),
        'Order 42|1', 'the stored row has the rendered body and version');

    my $unknown = bulk($tenant->{key}, [
        { channel => 'SMS', to => { phone => '+14155550100' },
          templateId => '01938a4e-0000-7000-8000-000000000000' },
    ]);
    is_deeply($unknown->{json}{results},
        [{ index => 0, error => { code => 'not_found',
                                  message => 'template not found' } }],
        'a batch whose only template is unknown rejects its item');
}

# The plan's bulk size counts every item, rejected ones included.
{
    my $before = tenant_count($tenant->{tenant_id});
    my $r = bulk($tenant->{key}, [map { sms_item("over $_") } 1 .. 101]);

    is($r->{status}, 413, '101 items on a FREE tenant are rejected');
    is($r->{json}{error}{code}, 'payload_too_large',
        '101 items have code payload_too_large');
    is_deeply($r->{json}{error}{details},
        [{ field => 'notifications', issue => 'too_many', max => 100 }],
        '101 items name the plan maximum');
    is(tenant_count($tenant->{tenant_id}), $before,
        'nothing is stored for 101 items');

    my @mixed = ((map { sms_item("over $_") } 1 .. 100), 'invalid');
    $r = bulk($tenant->{key}, \@mixed);

    is($r->{status}, 413, '100 valid items and one invalid are rejected');
    is(tenant_count($tenant->{tenant_id}), $before,
        'nothing is stored for 100 valid items and one invalid');

    # Over 10000 items the module leaves the count to the plan and checks
    # no item.
    $r = bulk($tenant->{key}, [({}) x 10001]);

    is($r->{status}, 413, '10001 empty items are rejected');
    is_deeply($r->{json}{error}{details},
        [{ field => 'notifications', issue => 'too_many', max => 100 }],
        '10001 empty items name the plan maximum');
    is(tenant_count($tenant->{tenant_id}), $before,
        'nothing is stored for 10001 empty items');

    $r = bulk($tenant->{key}, [map { sms_item("limit $_") } 1 .. 100]);

    is($r->{status}, 202, '100 items on a FREE tenant are accepted')
        or diag(substr($r->{body}, 0, 500));
    is($r->{json}{accepted}, 100, '100 items are all accepted');
    is($r->{json}{rejected}, 0, 'no item of 100 is rejected');
    is(tenant_count($tenant->{tenant_id}), $before + 100,
        '100 items are stored');
}

# Idempotency keys per item: a repeat replays, a changed body is a 422,
# and the fingerprint is the one a single send computes.
{
    my %first = (channel => 'EMAIL', to => { email => unique_email('idem') },
                 content => { subject => 'Idem', body => 'First' },
                 idempotencyKey => "bulk-a-$run");
    my %second = (%{ sms_item('Second') }, idempotencyKey => "bulk-b-$run");
    my %single = (channel => 'EMAIL', to => { email => unique_email('idem') },
                  content => { subject => 'Single', body => 'Single' },
                  idempotencyKey => "bulk-single-$run");

    my $one = bulk($tenant->{key}, [\%first, \%second]);

    is($one->{status}, 202, 'first batch with keys accepted');
    is($one->{json}{accepted}, 2, 'first batch accepts both items');

    my $single = api('POST', '/api/notifications', key => $tenant->{key},
        json => \%single);

    is($single->{status}, 202, 'single send with a key accepted');

    my $before = tenant_count($tenant->{tenant_id});
    my %changed = (%second, content => { body => 'Changed' });
    my %fresh = (%{ sms_item('Fresh') }, idempotencyKey => "bulk-c-$run");
    my $two = bulk($tenant->{key}, [\%first, \%changed, \%fresh, \%single,
                                    \%fresh]);

    is($two->{status}, 202, 'second batch with keys answers 202')
        or diag($two->{body});
    is($two->{json}{accepted}, 4, 'replays and the new item are accepted');
    is($two->{json}{rejected}, 1, 'the changed item is rejected');

    my @results = @{ $two->{json}{results} // [] };

    ok($results[0]{replayed}, 'repeated item is marked replayed');
    is_deeply($results[0]{notification}, $one->{json}{results}[0]{notification},
        'repeated item returns the first notification');

    is($results[1]{error}{code}, 'idempotency_key_reused',
        'changed item with a used key is 422 idempotency_key_reused');
    is_deeply($results[1]{error}{details},
        [{ field => 'idempotencyKey', issue => 'reused' }],
        'changed item names idempotencyKey');

    ok(!$results[2]{replayed}, 'item with a new key is not replayed');
    ok($results[4]{replayed}, 'second item with that key in one batch replays');
    is($results[4]{notification}{id}, $results[2]{notification}{id},
        'items with one key in one batch share a notification');

    ok($results[3]{replayed}, 'item repeating a single send replays');
    is($results[3]{notification}{id}, $single->{json}{id},
        'item repeating a single send returns its notification');

    is(tenant_count($tenant->{tenant_id}), $before + 1,
        'only the item with the new key is stored');
}

# Concurrent batches that share keys, listed in opposite orders: no
# deadlock, every request answers 202, and each key makes one notification.
{
    my @keys = map { "bulk-race-$run-$_" } 1 .. 20;
    my @pids;

    for my $child (1 .. 4) {
        my $pid = fork // die "cannot fork: $!\n";

        if (!$pid) {
            my @order = $child % 2 ? @keys : reverse @keys;
            my $r = eval {
                bulk($tenant->{key}, [map {
                    { %{ sms_item("race $_") }, idempotencyKey => $_ }
                } @order]);
            };
            my $ok = $r && $r->{status} == 202
                && ($r->{json}{accepted} // 0) == 20;
            POSIX::_exit($ok ? 0 : 1);
        }

        push @pids, $pid;
    }

    my @codes = map { waitpid($_, 0); $? >> 8 } @pids;

    is_deeply(\@codes, [0, 0, 0, 0],
        'concurrent batches with shared keys all accept every item');
    is(psql('SELECT count(*) || \'/\' || count(DISTINCT idempotency_key)'
            . ' FROM notifications WHERE tenant_id = $1'
            . ' AND idempotency_key LIKE $2',
            $tenant->{tenant_id}, "bulk-race-$run-%"),
        '20/20', 'each shared key made exactly one notification');
}

# A full batch of 1000 on a STARTER tenant is stored by one call, in one
# transaction, and its email items are delivered.
{
    my $starter = create_tenant_full($owner->{token}, name => 'Bulk STARTER');

    psql('UPDATE tenants SET plan = $1 WHERE id = $2', 'STARTER',
        $starter->{tenant_id});

    my @emails = map { unique_email("bulk-full-$_") } 1 .. 5;
    my @items = map {
        { channel => 'EMAIL', to => { email => $_ },
          content => { subject => 'Full batch', body => 'One of 1000' } }
    } @emails;
    push @items, map { sms_item("full $_") } 1 .. 995;

    my $r = bulk($starter->{key}, \@items);

    is($r->{status}, 202, '1000 items on a STARTER tenant are accepted')
        or diag(substr($r->{body}, 0, 500));
    is($r->{json}{accepted}, 1000, '1000 items are all accepted');
    is(tenant_count($starter->{tenant_id}), 1000, '1000 items are stored');
    is(psql('SELECT count(DISTINCT created_at) FROM notifications'
            . ' WHERE tenant_id = $1', $starter->{tenant_id}),
        1, '1000 items are stored in one transaction');

    my $over = bulk($starter->{key},
        [map { sms_item("over $_") } 1 .. 1001]);

    is($over->{status}, 413, '1001 items on a STARTER tenant are rejected');
    is_deeply($over->{json}{error}{details},
        [{ field => 'notifications', issue => 'too_many', max => 1000 }],
        '1001 items name the STARTER maximum');

    my $sent = wait_for(sub {
        psql('SELECT count(*) FROM notifications WHERE tenant_id = $1'
             . " AND channel = 'EMAIL' AND status = 'SENT'",
             $starter->{tenant_id}) == 5
    }, timeout => 60);

    ok($sent, 'email items of the full batch are sent');

    for my $email (@emails) {
        is(scalar(mailgun_messages(to => $email)), 1,
            "full batch email to $email reaches the provider once");
    }
}

# The bulk route takes bodies over the 1 MiB limit of other routes, up to
# 16 MiB.
{
    my $text = 'y' x 21000;
    my @items = map {
        { channel => 'EMAIL', to => { email => "large-$_-$run\@example.com" },
          content => { subject => 'Large', body => $text },
          scheduledAt => rfc3339(time + 86400) }
    } 1 .. 100;

    my $r = bulk($tenant->{key}, \@items);

    is($r->{status}, 202, 'bulk body of 2 MiB is accepted')
        or diag(substr($r->{body}, 0, 500));
    is($r->{json}{accepted}, 100, 'bulk body of 2 MiB stores every item');

    my $before = tenant_count($tenant->{tenant_id});
    my $huge = api('POST', '/api/notifications/bulk', key => $tenant->{key},
        headers => { 'Content-Type' => 'application/json' },
        body => '{"notifications": ["' . ('z' x (16 * 1024 * 1024)) . '"]}',
        timeout => 60);

    is($huge->{status}, 413, 'bulk body over 16 MiB is rejected');
    is($huge->{json}{error}{code}, 'payload_too_large',
        'bulk body over 16 MiB has code payload_too_large');
    is(tenant_count($tenant->{tenant_id}), $before,
        'nothing is stored for a body over 16 MiB');
}

done_testing();

__DATA__

=== TEST 1: bulk without notifications
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "notifications", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 2: bulk with an empty list
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"notifications": []}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "notifications", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 3: bulk with an object instead of a list
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"notifications": {"channel": "SMS", "to": {"phone": "+14155550100"},
                   "content": {"body": "b"}}}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "notifications", "issue": "invalid_type"}]}}
--- db_unchanged: notifications


=== TEST 4: bulk with a null list
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
{"notifications": null}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "notifications", "issue": "required"}]}}
--- db_unchanged: notifications


=== TEST 5: bulk with an Idempotency-Key header
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
Idempotency-Key: bulk-header-$RUN
--- request_body
{"notifications": [{"channel": "SMS", "to": {"phone": "+14155550100"},
                    "content": {"body": "b"}}]}
--- error_code: 400
--- response_json
{"error": {"code": "invalid_request",
           "details": [{"field": "Idempotency-Key", "issue": "unsupported"}]}}
--- db_unchanged: notifications, idempotency_keys


=== TEST 6: bulk body that is a JSON array
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
X-API-Key: $KEY
--- request_body
[{"channel": "SMS", "to": {"phone": "+14155550100"}, "content": {"body": "b"}}]
--- error_code: 400
--- response_json
{"error": {"code": "invalid_json"}}
--- db_unchanged: notifications


=== TEST 7: bulk without an API key
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: application/json
--- request_body
{"notifications": [{"channel": "SMS", "to": {"phone": "+14155550100"},
                    "content": {"body": "b"}}]}
--- error_code: 401
--- response_json
{"error": {"code": "unauthorized"}}
--- db_unchanged: notifications


=== TEST 8: bulk without a JSON content type
--- request
POST /api/notifications/bulk
--- more_headers
Content-Type: text/plain
X-API-Key: $KEY
--- request_body
{"notifications": []}
--- error_code: 415
--- response_json
{"error": {"code": "unsupported_media_type"}}
--- db_unchanged: notifications


=== TEST 9: bulk route with PUT
--- request
PUT /api/notifications/bulk
--- more_headers
X-API-Key: $KEY
--- error_code: 405
--- response_headers
Allow: ~POST
