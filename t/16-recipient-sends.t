# Sending to a recipient: recipientId resolves the channel's address when
# the notification is accepted, a PUSH goes to every active device, a
# recipient without an address for the channel is a 422 that stores
# nothing, and bulk items resolve their recipients with one query.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Recipient sends');
my $other = create_tenant_full($owner->{token}, name => 'Recipient other');
my $key = $tenant->{key};
my $run = int(time) . "-$$";

sub create_recipient {
    my (%fields) = @_;
    my $r = api('POST', '/api/recipients', key => $key, json => \%fields);

    die "recipient creation failed: " . describe_response($r) . "\n"
        unless $r->{status} == 201;

    return $r->{json}{id};
}

sub send_to {
    my ($recipient, $channel, %extra) = @_;
    my %content = (body => "Hello $channel");

    $content{subject} = 'Hello' if $channel ne 'SMS';

    return api('POST', '/api/notifications', key => $key,
        json => { channel => $channel, recipientId => $recipient,
                  content => \%content, %extra });
}

sub stored_count {
    return psql('SELECT count(*) FROM notifications WHERE tenant_id = $1',
        $tenant->{tenant_id});
}

my $email = unique_email('recipient-send');
my $full = create_recipient(
    externalId => "full-$run", email => $email, phone => '+14155550123',
    deviceTokens => [
        { token => "device-a-$run", platform => 'ANDROID' },
        { token => "device-b-$run", platform => 'IOS' },
    ]);
my $email_only = create_recipient(email => unique_email('email-only'));


# EMAIL to a recipient: the address is stored with the notification, and
# the notification is delivered to it.
{
    my $r = send_to($full, 'EMAIL', metadata => { case => 'email' });

    is($r->{status}, 202, 'email to a recipient is accepted')
        or diag($r->{body});
    is($r->{json}{recipientId}, $full, 'reply names the recipient');
    is_deeply($r->{json}{to}, { email => $email },
        'reply has the email resolved from the recipient');
    is(psql('SELECT recipient_id::text || \' \' || (to_address ->> \'email\')'
            . ' FROM notifications WHERE id = $1', $r->{json}{id}),
        "$full $email", 'stored row has the recipient and its email');

    my $id = $r->{json}{id};
    ok(wait_for(sub {
        psql('SELECT status FROM notifications WHERE id = $1', $id) eq 'SENT'
    }, timeout => 30), 'email to a recipient is sent');
    is(scalar(mailgun_messages(to => $email)), 1,
        'the recipient email reaches the provider');

    my $get = api('GET', "/api/notifications/$id", key => $key);
    is($get->{json}{recipientId}, $full, 'GET shows the recipient');

    my $list = api('GET', "/api/notifications?recipientId=$full",
        key => $key);
    is_deeply([map { $_->{id} } @{ $list->{json}{data} // [] }], [$id],
        'the list filters by the recipient');
}

# SMS uses the phone; a later change of the recipient leaves an accepted
# notification as it was.
{
    my $r = send_to($full, 'SMS');

    is($r->{status}, 202, 'sms to a recipient is accepted')
        or diag($r->{body});
    is_deeply($r->{json}{to}, { phone => '+14155550123' },
        'sms reply has the phone of the recipient');

    my $patch = api('PATCH', "/api/recipients/$full", key => $key,
        json => { phone => '+14155550199' });
    is($patch->{status}, 200, 'the recipient phone is changed');

    my $get = api('GET', "/api/notifications/$r->{json}{id}", key => $key);
    is_deeply($get->{json}{to}, { phone => '+14155550123' },
        'the accepted sms keeps the phone it was accepted with');
}

# PUSH to a recipient goes to each active device, oldest first.
{
    my $r = send_to($full, 'PUSH');

    is($r->{status}, 202, 'push to a recipient is accepted')
        or diag($r->{body});
    is_deeply($r->{json}{to},
        { deviceTokens => ["device-a-$run", "device-b-$run"] },
        'push reply lists both device tokens');
    is(psql('SELECT to_address::text FROM notifications WHERE id = $1',
            $r->{json}{id}),
        qq({"deviceTokens": ["device-a-$run", "device-b-$run"]}),
        'stored row lists both device tokens');

    psql('UPDATE devices SET deactivated_at = now() WHERE token = $1',
        "device-a-$run");

    my $after = send_to($full, 'PUSH');
    is_deeply($after->{json}{to}, { deviceTokens => ["device-b-$run"] },
        'a deactivated device is left out');

    psql('UPDATE devices SET deactivated_at = NULL WHERE token = $1',
        "device-a-$run");
}

# A recipient without an address for the channel: 422 naming it, and
# nothing stored.
for my $case (['SMS', 'the recipient has no phone number'],
              ['PUSH', 'the recipient has no active push device']) {
    my ($channel, $message) = @$case;
    my $before = stored_count();
    my $r = send_to($email_only, $channel);

    is($r->{status}, 422, "$channel to a recipient without one is 422");
    is($r->{json}{error}{code}, 'recipient_unreachable',
        "$channel without an address has code recipient_unreachable");
    is($r->{json}{error}{message}, $message,
        "$channel without an address names what is missing");
    is_deeply($r->{json}{error}{details},
        [{ field => 'recipientId', issue => 'no_address' }],
        "$channel without an address names recipientId");
    is(stored_count(), $before, "$channel without an address stores nothing");
}

# Unknown recipients and another tenant's recipient are 404.
{
    my $theirs = api('POST', '/api/recipients', key => $other->{key},
        json => { email => unique_email('theirs') })->{json}{id};
    my $before = stored_count();

    for my $case (['another tenant', $theirs],
                  ['unknown', '01938a4e-0000-7000-8000-000000000000']) {
        my $r = send_to($case->[1], 'EMAIL');

        is($r->{status}, 404, "$case->[0] recipient is 404");
        is($r->{json}{error}{message}, 'recipient not found',
            "$case->[0] recipient is not found");
    }

    is(stored_count(), $before, 'unknown recipients store nothing');
}

# A recipient and a template together: both are read before the insert.
{
    my $template = api('POST', '/api/templates', key => $key,
        json => { name => "recipient-template-$run", channel => 'EMAIL',
                  subject => 'Hi {{name}}', body => 'Body {{name}}' });
    is($template->{status}, 201, 'template for a recipient is created');

    my $r = api('POST', '/api/notifications', key => $key,
        json => { channel => 'EMAIL', recipientId => $full,
                  templateId => $template->{json}{id},
                  data => { name => 'Ada' } });

    is($r->{status}, 202, 'templated email to a recipient is accepted')
        or diag($r->{body});
    is_deeply([@{ $r->{json} }{qw(subject body)}, $r->{json}{to}{email}],
        ['Hi Ada', 'Body Ada', $email],
        'templated email to a recipient is rendered and addressed');
}

# Bulk: one query resolves every recipient of the batch, and each item
# gets the result a single send would get.
{
    my $before = stored_count();
    my $r = api('POST', '/api/notifications/bulk', key => $key,
        json => { notifications => [
            { channel => 'EMAIL', recipientId => $full,
              content => { subject => 'Bulk', body => 'Bulk' } },
            { channel => 'SMS', recipientId => $email_only,
              content => { body => 'Bulk' } },
            { channel => 'PUSH', recipientId => $full,
              content => { body => 'Bulk' } },
            { channel => 'EMAIL',
              recipientId => '01938a4e-0000-7000-8000-000000000000',
              content => { subject => 'Bulk', body => 'Bulk' } },
            { channel => 'EMAIL', recipientId => $email_only,
              content => { subject => 'Bulk', body => 'Bulk' } },
        ] });

    is($r->{status}, 202, 'bulk with recipients is accepted')
        or diag($r->{body});
    is($r->{json}{accepted}, 3, 'bulk accepts the three reachable items');

    my @results = @{ $r->{json}{results} // [] };

    is_deeply($results[0]{notification}{to}, { email => $email },
        'bulk email item is addressed from the recipient');
    is($results[0]{notification}{recipientId}, $full,
        'bulk item names its recipient');
    is_deeply($results[1]{error},
        { code => 'recipient_unreachable',
          message => 'the recipient has no phone number',
          details => [{ field => 'recipientId', issue => 'no_address' }] },
        'bulk sms item to a recipient without a phone is unreachable');
    is_deeply($results[2]{notification}{to},
        { deviceTokens => ["device-a-$run", "device-b-$run"] },
        'bulk push item lists the active devices');
    is_deeply($results[3]{error},
        { code => 'not_found', message => 'recipient not found' },
        'bulk item with an unknown recipient is not found');
    is($results[4]{notification}{recipientId}, $email_only,
        'bulk item of a second recipient is accepted');
    is(stored_count(), $before + 3, 'bulk stores the three items');
    is(psql('SELECT count(*) FROM notifications WHERE recipient_id = $1'
            . ' AND id = $2', $full, $results[0]{notification}{id} // ''),
        1, 'bulk row has the recipient id');
}

# A push to a recipient fans out to each active device, with one log row
# per device, and a device that FCM reports unregistered is deactivated.
{
    my $fan = create_recipient(externalId => "fan-$run", deviceTokens => [
        { token => "fan-ok-$run", platform => 'ANDROID' },
        { token => "unregistered-fan-$run", platform => 'IOS' },
    ]);
    my $r = send_to($fan, 'PUSH');

    is($r->{status}, 202, 'push fan-out is accepted') or diag($r->{body});

    my $id = $r->{json}{id} // '';
    my $done = wait_for(sub {
        psql('SELECT status FROM notifications WHERE id = $1', $id) eq 'SENT'
    }, timeout => 30);

    ok($done, 'push fan-out ends SENT when one device accepted it');
    is(rows_text('SELECT target, status FROM delivery_logs'
            . ' WHERE notification_id = $1 ORDER BY id', $id),
        "fan-ok-$run|SENT\nunregistered-fan-$run|FAILED",
        'push fan-out logs one delivery per device');

    my $devices = api('GET', "/api/recipients/$fan/devices", key => $key);
    my %active = map { $_->{token} => $_->{active} }
        @{ $devices->{json}{data} // [] };

    ok($active{"fan-ok-$run"}, 'the accepted device stays active');
    ok(defined $active{"unregistered-fan-$run"}
        && !$active{"unregistered-fan-$run"},
        'the unregistered device is deactivated');

    my $next = send_to($fan, 'PUSH');
    is_deeply($next->{json}{to}, { deviceTokens => ["fan-ok-$run"] },
        'the next push leaves the deactivated device out');
}

# A recipient has at most 50 active devices.
{
    my $many = create_recipient(externalId => "many-$run");

    for my $n (1 .. 50) {
        my $r = api('POST', "/api/recipients/$many/devices", key => $key,
            json => { token => "many-$run-$n", platform => 'WEB' });
        die "device $n: " . describe_response($r) . "\n"
            unless $r->{status} == 201;
    }

    my $r = api('POST', "/api/recipients/$many/devices", key => $key,
        json => { token => "many-$run-51", platform => 'WEB' });

    is($r->{status}, 409, 'the 51st active device is a 409');
    is_deeply($r->{json}{error}{details},
        [{ field => 'token', issue => 'too_many_devices', max => 50 }],
        'the 51st device names the limit');
    is(psql('SELECT count(*) FROM devices WHERE recipient_id = $1', $many),
        50, 'the 51st device is not stored');

    my $again = api('POST', "/api/recipients/$many/devices", key => $key,
        json => { token => "many-$run-7", platform => 'WEB' });
    is($again->{status}, 200, 'a known token is still accepted at the limit');

    psql('UPDATE devices SET deactivated_at = now() WHERE token = $1',
        "many-$run-1");
    my $replaced = api('POST', "/api/recipients/$many/devices", key => $key,
        json => { token => "many-$run-52", platform => 'WEB' });
    is($replaced->{status}, 201,
        'a deactivated device frees a place for a new one');
}

done_testing();
