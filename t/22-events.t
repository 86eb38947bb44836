# Status events: every status change of a notification becomes a message
# on the notifyhub.events topic, keyed by the notification id, in the
# order of the changes, and the relayed rows leave notification_events.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Events');
my $key = $tenant->{key};
my $tail = "$FindBin::Bin/../build/kafka-tail";

sub send_email {
    my (%extra) = @_;
    my $r = api('POST', '/api/notifications', key => $key,
        json => { channel => 'EMAIL', to => { email => unique_email('ev') },
                  content => { subject => 'Ev', body => 'Ev' }, %extra });

    die "send failed: $r->{body}\n" unless $r->{status} == 202;

    return $r->{json}{id};
}

my $sent = send_email();
my $scheduled = send_email(scheduledAt => strftime('%Y-%m-%dT%H:%M:%S.000Z',
                                                   gmtime(time + 3600)));

ok(wait_for(sub {
    psql('SELECT status FROM notifications WHERE id = $1', $sent) eq 'SENT'
}, timeout => 30), 'the email is sent');

is(api('POST', "/api/notifications/$scheduled/cancel", key => $key)
    ->{status}, 200, 'the scheduled email is cancelled');

ok(wait_for(sub {
    psql('SELECT count(*) FROM notification_events'
         . ' WHERE notification_id IN ($1, $2)', $sent, $scheduled) == 0
}, timeout => 30), 'the events are relayed and leave the table');

ok(-x $tail, 'build/kafka-tail exists') or BAIL_OUT('run make build');

my ($output) = NotifyHub::Test::run_command([$tail, $ENV{NH_KAFKA_BROKERS},
                            'notifyhub.events', 2000]);
my %events;

for my $line (split /\n/, $output) {
    my ($k, $value) = split /\t/, $line, 2;
    next unless $k eq $sent || $k eq $scheduled;

    my $event = NotifyHub::Test::decode_json_text($value);
    push @{ $events{$k} }, "$event->{previousStatus}>$event->{status}";

    is($event->{notificationId}, $k, "event of $k is keyed by its id");
    is($event->{tenantId}, $tenant->{tenant_id},
        'the event names the tenant');
    is($event->{type}, 'notification.' . lc $event->{status},
        'the event type follows the status');
}

is_deeply($events{$sent}, ['PENDING>PROCESSING', 'PROCESSING>SENT'],
    'the sent email has its two changes in order');
is_deeply($events{$scheduled}, ['SCHEDULED>CANCELLED'],
    'the cancelled email has one change');

done_testing();
