#!/usr/bin/env python3
"""Measurement helpers for bench/run.

  measure.py run STACK_DIR OUTPUT -- COMMAND [ARG...]
      Runs COMMAND with stdout and stderr written to OUTPUT. Then prints one
      "bench-cpu" line with the CPU time that the machine and each process
      group of the stack in STACK_DIR used while COMMAND ran. The unit is
      cores, that is CPU seconds per wall-clock second. Exits with
      COMMAND's exit status.

  measure.py pgbench-latency LOG_PREFIX
      Reads the per-transaction logs that pgbench -l --log-prefix=LOG_PREFIX
      wrote and prints one "bench-latency" line with the transaction count,
      the failed transactions and the p50 and p99 latency in microseconds.

Only Linux is supported: the CPU times come from /proc.
"""

import glob
import os
import resource
import subprocess
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_machine_ticks():
    """Returns the clock ticks of all CPUs from /proc/stat, by kind.

    "steal" is time that the hypervisor gave to other virtual machines
    while this one had work, so "busy" leaves it out.
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    # guest and guest_nice are already part of user and nice.
    busy = user + nice + system + irq + softirq
    return {"busy": busy, "iowait": iowait, "steal": steal,
            "total": busy + idle + iowait + steal}


def read_processes():
    """Returns {pid: (ppid, cpu_ticks)} for every process.

    cpu_ticks is utime + stime + cutime + cstime, so the sum over the live
    processes of a tree also counts the descendants that exited and were
    reaped during the measurement, such as pgbench's PostgreSQL backends.
    """
    processes = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name in brackets may contain spaces and brackets.
        fields = stat[stat.rindex(")") + 2:].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        processes[int(entry)] = (ppid, utime + stime + cutime + cstime)
    return processes


def tree_pids(processes, root_pid):
    """Returns the pids of root_pid and all its live descendants."""
    if root_pid is None or root_pid not in processes:
        return []
    children = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    pids = []
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        pending.extend(children.get(pid, []))
    return pids


def read_pid_file(path):
    """Returns the pid on the first line of path, or None."""
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def stack_roots(stack_dir):
    """Returns {group: root pid} of the stack's nginx, PostgreSQL and Kafka."""
    return {
        "nginx": read_pid_file(os.path.join(stack_dir, "nginx", "nginx.pid")),
        "postgres": read_pid_file(
            os.path.join(stack_dir, "pg", "data", "postmaster.pid")),
        "kafka": read_pid_file(os.path.join(stack_dir, "kafka", "kafka.pid")),
    }


def snapshot(roots):
    """Returns the time, the CPU ticks used so far by kind, and the pids.

    The pids are those of the process trees of roots.
    """
    processes = read_processes()
    ticks = read_machine_ticks()
    pids = set()
    for name, root_pid in roots.items():
        tree = tree_pids(processes, root_pid)
        ticks[name] = sum(processes[pid][1] for pid in tree)
        pids.update(tree)
    client = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks["client"] = round((client.ru_utime + client.ru_stime) * CLOCK_TICKS)
    return time.monotonic(), ticks, pids


def run(stack_dir, output, command):
    roots = stack_roots(stack_dir)
    start, before, pids_before = snapshot(roots)
    with open(output, "w") as out:
        status = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)

    # The PostgreSQL backends of pgbench exit shortly after pgbench. Their
    # time counts for the postmaster only once it has reaped them, so the
    # last snapshot waits, at most 3 seconds, until processes that started
    # during the command are gone.
    deadline = time.monotonic() + 3
    while True:
        end, after, pids_after = snapshot(roots)
        if pids_after <= pids_before or end >= deadline:
            break
        time.sleep(0.05)

    wall = end - start
    used = {kind: after[kind] - before[kind] for kind in after}
    cores = {kind: ticks / CLOCK_TICKS / wall for kind, ticks in used.items()}
    processes = ("nginx", "postgres", "kafka", "client")
    # On a kernel without CONFIG_IRQ_TIME_ACCOUNTING, such as the one of the
    # benchmark machine, interrupt time counts for the task that it
    # interrupted. "other" then contains the remaining processes and the
    # interrupts that hit an idle CPU.
    cores["other"] = cores["busy"] - sum(cores[name] for name in processes)
    # The share of all CPUs comes from /proc/stat alone, so it stays
    # correct although the process times are read at slightly other times.
    busy_pct = 100 * used["busy"] / max(used["total"], 1)

    print("bench-cpu wall_s=%.1f ncpu=%d busy_pct=%.0f " % (
              wall, os.cpu_count(), busy_pct)
          + " ".join("%s=%.2f" % (kind, cores[kind]) for kind in (
              "busy", "iowait", "steal", "nginx", "postgres", "kafka",
              "client", "other")))
    return status


def percentile(sorted_values, pct):
    """Returns the nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def pgbench_latency(prefix):
    latencies = []
    failed = 0
    paths = glob.glob(glob.escape(prefix) + ".*")
    if not paths:
        print(f"measure.py: no pgbench log files match {prefix}.*",
              file=sys.stderr)
        return 1
    for path in paths:
        with open(path) as f:
            for line in f:
                fields = line.split()
                # The fields are client_id, transaction_no, time, script_no,
                # time_epoch and time_us. time is the latency in
                # microseconds, or a word such as "failed" for a transaction
                # that failed.
                if len(fields) < 3:
                    continue
                if fields[2].isdigit():
                    latencies.append(int(fields[2]))
                else:
                    failed += 1
    if not latencies:
        print(f"measure.py: the pgbench logs {prefix}.* contain no "
              "successful transaction", file=sys.stderr)
        return 1
    latencies.sort()
    print("bench-latency transactions=%d failed=%d p50_us=%d p99_us=%d "
          "max_us=%d" % (len(latencies), failed, percentile(latencies, 50),
                         percentile(latencies, 99), latencies[-1]))
    return 0


def main(argv):
    if len(argv) >= 6 and argv[1] == "run" and argv[4] == "--":
        return run(argv[2], argv[3], argv[5:])
    if len(argv) == 3 and argv[1] == "pgbench-latency":
        return pgbench_latency(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
