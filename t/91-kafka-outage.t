# Kafka outage: with the broker stopped the API still accepts
# notifications (they are stored in PostgreSQL first); after the broker is
# back every one of them reaches SENT.
#
# This file stops and starts the kafka service of the stack, so it must not
# run in parallel with other test files.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);

use NotifyHub::Test;

require_stack();

my $count = 5;
my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Kafka outage');
my $key = $tenant->{key};

my $kafka_stopped = 0;

# Starts Kafka again if this file stops early, so that a later run finds a
# whole stack.
END {
    local $?;

    stack('start', 'kafka') if $kafka_stopped;
}

ok(stack('stop', 'kafka'), 'Kafka stopped') or die "cannot stop Kafka\n";
$kafka_stopped = 1;

my %sent;

for my $i (1 .. $count) {
    my $address = unique_email("kafka-outage-$i");
    my $started = time;
    my $r = api('POST', '/api/notifications', key => $key, json => {
        channel => 'EMAIL',
        to      => { email => $address },
        content => {
            subject => "Outage $i",
            body    => 'Sent while Kafka is down',
        },
    });
    my $elapsed = time - $started;

    is($r->{status}, 202, "POST $i of $count accepted while Kafka is down")
        or diag("reply: $r->{status} $r->{body}");
    ok($elapsed < 5, "POST $i answered without waiting for Kafka")
        or diag(sprintf 'took %.1f s', $elapsed);

    $sent{ $r->{json}{id} } = $address if $r->{status} == 202;
}

# The status during the outage is not checked: the API contract does not
# say whether a notification waits for the broker or is picked up by the
# worker's outbox sweep in the meantime.

if (%sent) {
    my @rows = psql('SELECT status, count(*) FROM notifications'
        . ' WHERE id = ANY($1::uuid[]) GROUP BY status ORDER BY status',
        '{' . join(',', keys %sent) . '}');

    note('status before Kafka starts again: '
        . join(', ', map { "$_->[0] $_->[1]" } @rows));
}

ok(stack('start', 'kafka'), 'Kafka started') or die "cannot start Kafka\n";
$kafka_stopped = 0;

my $restarted = time;
my %status;

my $all_sent = wait_for(sub {
    for my $id (keys %sent) {
        next if ($status{$id} // '') eq 'SENT';

        my $r = api('GET', "/api/notifications/$id", key => $key);
        $status{$id} = $r->{status} == 200 ? $r->{json}{status}
            : "HTTP $r->{status}";
    }

    return !grep { ($status{$_} // '') ne 'SENT' } keys %sent;
}, timeout => 60, interval => 1);

ok($all_sent, "all $count notifications reach SENT within 60 s of the"
    . ' restart')
    or diag(join "\n", map { "$_: " . ($status{$_} // 'unknown') }
        sort keys %sent);
note(sprintf 'all SENT %.1f s after Kafka started', time - $restarted)
    if $all_sent;

is(scalar(keys %sent), $count, 'every POST during the outage was accepted');

for my $id (sort keys %sent) {
    my @messages = mailgun_messages(to => $sent{$id});

    is(scalar @messages, 1, "one message at the fake Mailgun for $id");
    is($messages[0] && $messages[0]{variables}{notification_id}, $id,
        "message carries the notification id $id");
}

my $after = api('POST', '/api/notifications', key => $key, json => {
    channel => 'EMAIL',
    to      => { email => unique_email('kafka-after') },
    content => { subject => 'After', body => 'Sent after Kafka is back' },
});

is($after->{status}, 202, 'POST accepted after Kafka is back');

my $final;

wait_for(sub {
    $final = api('GET', "/api/notifications/$after->{json}{id}", key => $key);
    return ($final->{json}{status} // '') eq 'SENT';
}, timeout => 30, interval => 0.5);

is($final->{json}{status}, 'SENT', 'notification after the outage is SENT')
    or diag("last reply: $final->{body}");

done_testing();
