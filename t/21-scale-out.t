# Scale-out: three email workers share the topic's partitions as one
# consumer group. Two thousand notifications go out while one worker is
# killed with SIGKILL; every notification still ends SENT, and the number
# that reached the provider twice is reported (at-least-once delivery
# sends a notification twice only when a worker dies between the
# provider's answer and the commit).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);

use NotifyHub::Test;

require_stack();

my $owner = signup_owner();
my $tenant = create_tenant_full($owner->{token}, name => 'Scale out',
    plan => 'STARTER');
my $run = int(time) . "-$$";
my $count = 2000;
my $stack_dir = $ENV{NH_STACK_DIR};

# Starts one more email worker in the stack's consumer group, with the
# retry settings that scripts/stack gives the test stack's workers; returns
# its pid and log file.
sub start_worker {
    my ($n) = @_;
    my $log = "$stack_dir/scale-out-$n.log";

    return (start_email_worker($log), $log);
}

sub assigned {
    my ($log) = @_;
    open my $fh, '<', $log or return 0;
    my $found = grep { /partitions assigned/ } <$fh>;
    close $fh;
    return $found;
}

my (@pids, @logs);

for my $n (1 .. 2) {
    my ($pid, $log) = start_worker($n);
    push @pids, $pid;
    push @logs, $log;
}

END {
    my $stack_log = "$stack_dir/email.log";
    my $offset = -s $stack_log // 0;

    kill 'TERM', grep { $_ } @pids;
    waitpid($_, 0) for grep { $_ } @pids;

    # The stack's worker takes over the partitions of the workers that
    # left. Until it has them, the next file's emails would wait for the
    # rebalance.
    wait_for(sub {
        log_since($stack_log, $offset) =~ /partitions assigned/
    }, timeout => 60) or diag("the stack's email worker got no new"
        . ' partitions within 60 s of the extra workers leaving');
}

ok(wait_for(sub { !grep { !assigned($_) } @logs }, timeout => 60),
    'the two extra workers join the consumer group');

# The provider answers each request after 100 ms, so a worker has
# requests in flight when it is killed.
my @ids;
my $start = time;

for my $batch (0 .. $count / 1000 - 1) {
    my @items = map {
        { channel => 'EMAIL',
          to => { email => "slow-100\@scale-$run-$batch-$_.example.com" },
          content => { subject => 'Scale', body => 'Scale' } }
    } 1 .. 1000;
    my $r = api('POST', '/api/notifications/bulk', key => $tenant->{key},
        json => { notifications => \@items }, timeout => 60);

    is($r->{status}, 202, "batch $batch is accepted") or diag($r->{body});
    push @ids, map { $_->{notification}{id} } @{ $r->{json}{results} // [] };

    if ($batch == 0) {
        sleep(1);
        kill 'KILL', $pids[0];
        waitpid($pids[0], 0);
        note('killed worker pid ' . $pids[0] . ' after '
            . sprintf('%.1f', time - $start) . ' s');
        $pids[0] = 0;
    }
}

is(scalar(@ids), $count, 'every notification was accepted');

my $done = wait_for(sub {
    psql('SELECT count(*) FROM notifications WHERE tenant_id = $1'
         . ' AND status = \'SENT\'', $tenant->{tenant_id}) == $count
}, timeout => 180, interval => 1);

ok($done, 'every notification ends SENT after a worker was killed');
is(psql('SELECT count(*) FROM notifications WHERE tenant_id = $1'
        . ' AND status <> \'SENT\'', $tenant->{tenant_id}), 0,
    'no notification is left in another status');

# The fake keeps what it received; a notification id seen twice was sent
# twice.
my %seen;
$seen{ $_->{variables}{notification_id} // '' }++
    for grep { ($_->{to} // '') =~ /\@scale-\Q$run\E-/ } mailgun_messages();
my $received = scalar(keys %seen);
my $twice = scalar(grep { $seen{$_} > 1 } keys %seen);

is($received, $count, 'the provider received every notification');
diag("notifications sent twice after the SIGKILL: $twice of $count");
ok($twice <= 64, 'at most one in-flight window is sent twice');

done_testing();
