# Recipient preferences at delivery: an opted-out channel ends SKIPPED
# with the reason in the log and nothing sent, quiet hours defer a
# notification as SCHEDULED to the end of the window and it is sent then,
# and CRITICAL ignores quiet hours but not an opt-out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Preferences');
my $key = $tenant->{key};
my $run = int(time) . "-$$";

sub create_recipient {
    my (%fields) = @_;
    my $r = api('POST', '/api/recipients', key => $key, json => \%fields);

    die "recipient creation failed: " . describe_response($r) . "\n"
        unless $r->{status} == 201;

    return $r->{json}{id};
}

sub put_preferences {
    my ($recipient, $preferences) = @_;
    my $r = api('PUT', "/api/recipients/$recipient/preferences", key => $key,
        json => $preferences);

    die "preferences failed: " . describe_response($r) . "\n"
        unless $r->{status} == 200;
}

sub send_email {
    my (%fields) = @_;
    my $r = api('POST', '/api/notifications', key => $key,
        json => { channel => 'EMAIL',
                  content => { subject => 'Prefs', body => 'Prefs' },
                  %fields });

    die "send failed: " . describe_response($r) . "\n"
        unless $r->{status} == 202;

    return $r->{json}{id};
}

sub wait_status {
    my ($id, $status, $timeout) = @_;
    my $last = '';

    wait_for(sub {
        $last = psql('SELECT status FROM notifications WHERE id = $1', $id);
        return $last eq $status;
    }, timeout => $timeout // 30, interval => 0.2);

    return $last;
}

sub logs_of {
    my ($id) = @_;
    my $r = api('GET', "/api/notifications/$id/logs", key => $key);

    return [map { "$_->{status}: " . ($_->{error} // '') }
            @{ $r->{json}{data} // [] }];
}


# An opted-out channel: SKIPPED with the reason, for a recipientId and for
# the recipient's address alike, and for CRITICAL too.
{
    my $email = unique_email('opted-out');
    my $recipient = create_recipient(email => $email);

    put_preferences($recipient, { channels => { EMAIL => \0,
                                                SMS => \1 } });

    my @ids = (
        send_email(recipientId => $recipient),
        send_email(to => { email => uc $email }),
        send_email(recipientId => $recipient, priority => 'CRITICAL'),
    );
    my @names = ('recipientId', 'the address', 'CRITICAL');

    for my $i (0 .. $#ids) {
        is(wait_status($ids[$i], 'SKIPPED'), 'SKIPPED',
            "opted-out email to $names[$i] ends SKIPPED");
        is_deeply(logs_of($ids[$i]),
            ['SKIPPED: the recipient opted out of EMAIL'],
            "opted-out email to $names[$i] logs the reason");
    }

    my $get = api('GET', "/api/notifications/$ids[0]", key => $key);
    is($get->{json}{lastError}, 'the recipient opted out of EMAIL',
        'a skipped notification shows the reason as lastError');
    is($get->{json}{attempts}, 1, 'a skip counts as the attempt');
    is(scalar(mailgun_messages(to => $email)), 0,
        'nothing reaches the provider for an opted-out channel');

    my $other = unique_email('opted-in');
    my $sent = send_email(to => { email => $other });
    is(wait_status($sent, 'SENT'), 'SENT',
        'an address of no recipient is sent');
}

# Quiet hours in the recipient's zone: the notification waits as
# SCHEDULED until the window ends, then it is sent. The window is placed
# around now, in whole minutes, so it ends within about a minute.
{
    # A window that would end within 10 seconds could end before the
    # worker leases the notification.
    my $now = time;
    my $second = int($now) % 60;
    if ($second >= 50) {
        sleep(61 - $second);
        $now = time;
    }

    # Asia/Kolkata is UTC+05:30 all year.
    my $offset = 5 * 3600 + 30 * 60;
    my $start = strftime('%H:%M', gmtime($now + $offset - 120));
    my $end_epoch = (int(($now + 60) / 60)) * 60;
    my $end = strftime('%H:%M', gmtime($end_epoch + $offset));
    my $email = unique_email('quiet');
    my $recipient = create_recipient(email => $email,
        timezone => 'Asia/Kolkata');

    put_preferences($recipient,
        { quietHours => { start => $start, end => $end } });

    my $critical = send_email(recipientId => $recipient,
        priority => 'CRITICAL');
    my $id = send_email(recipientId => $recipient);

    is(wait_status($id, 'SCHEDULED'), 'SCHEDULED',
        'an email in quiet hours waits as SCHEDULED');

    my $get = api('GET', "/api/notifications/$id", key => $key);
    is($get->{json}{scheduledAt},
        strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime $end_epoch),
        'it is scheduled for the end of the window');
    is($get->{json}{attempts}, 0, 'a deferral is not an attempt');
    is_deeply(logs_of($id),
        ["SCHEDULED: quiet hours $start-$end Asia/Kolkata"],
        'the deferral is logged with the window');

    is(wait_status($critical, 'SENT'), 'SENT',
        'a CRITICAL email is sent during quiet hours');

    is(wait_status($id, 'SENT', 90), 'SENT',
        'the deferred email is sent after the window');
    ok(time >= $end_epoch, 'it is sent no earlier than the window end');
    is(scalar(mailgun_messages(to => $email)), 2,
        'the provider gets both emails once each');
    is(api('GET', "/api/notifications/$id", key => $key)->{json}{attempts},
        1, 'the send after the window is the first attempt');
}

done_testing();
