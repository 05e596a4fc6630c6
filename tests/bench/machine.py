"""Is the machine quiet enough to measure on? Two cores are shared with other people's test runs,
so a figure taken while someone else's work ran is a figure about their work.

- Before anything runs: the 1-minute load average, against BENCH_MAX_LOAD (default half the
  CPUs). Above it, the bench refuses to run at all.
- Around every load run: the CPU the machine spent on processes that are not the bench's. Busy
  time comes from /proc/stat (user, nice, system, interrupts and steal: steal is CPU another
  virtual machine took from this one); the bench's own share is this process and its
  descendants (gunicorn's master and workers), the wrk run itself (from its resource usage,
  since it has exited by the end), and PostgreSQL's processes that serve the bench database,
  plus the server's shared background processes and postmaster. What is left is foreign.
  Interrupt time is on both sides: a kernel without IRQ time accounting (this machine's) also
  charges it to the process it interrupted; one with it would show the run's own loopback
  traffic as foreign, which errs towards refusing.
"""

import os
import time
from dataclasses import dataclass

import psycopg

HZ = os.sysconf("SC_CLK_TCK")
DEFAULT_MAX_FOREIGN = 0.10


class MachineBusy(Exception):
    """The machine is too loaded for figures that mean anything."""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def max_load(environ=os.environ) -> float:
    """BENCH_MAX_LOAD, else half the CPUs: above it the run would mostly measure others."""
    raw = environ.get("BENCH_MAX_LOAD")
    return float(raw) if raw else 0.5 * cpu_count()


def max_foreign(environ=os.environ) -> float:
    """BENCH_MAX_FOREIGN: the share of all CPUs foreign processes may use during a run."""
    raw = environ.get("BENCH_MAX_FOREIGN")
    return float(raw) if raw else DEFAULT_MAX_FOREIGN


def check_load(*, threshold: float, loadavg=os.getloadavg, say=print) -> float:
    """The 1-minute load average, printed; MachineBusy when it is above `threshold`."""
    load = loadavg()[0]
    say(
        f"load average (1 min): {load:.2f} on {cpu_count()} CPUs; "
        f"the bench refuses above {threshold:g} (BENCH_MAX_LOAD)"
    )
    if load > threshold:
        raise MachineBusy(
            f"the machine is busy (load average {load:.2f} > {threshold:g}): figures taken now "
            "would measure other work. Try again when `uptime` shows it quiet, or raise "
            "BENCH_MAX_LOAD and label the figures as taken under foreign load."
        )
    return load


# --- CPU accounting ----------------------------------------------------------------------------


def busy_ticks(stat_text: str) -> int:
    """Everything but idle and I/O wait on the aggregate `cpu` line of /proc/stat (guest time is
    already inside user and nice)."""
    fields = stat_text.splitlines()[0].split()
    assert fields[0] == "cpu", fields[0]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return user + nice + system + irq + softirq + steal


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, user + system ticks, command name) of every process now."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                text = handle.read()
        except OSError:
            continue  # gone meanwhile
        name, rest = text.split(" (", 1)[1].rsplit(")", 1)
        fields = rest.split()
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), name)
    return table


def descendants(table: dict[int, tuple[int, int, str]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass
class Snapshot:
    at: float
    busy: int
    table: dict[int, tuple[int, int, str]]


def snapshot() -> Snapshot:
    with open("/proc/stat") as handle:
        busy = busy_ticks(handle.read())
    return Snapshot(at=time.monotonic(), busy=busy, table=process_table())


def foreign_share(
    before: Snapshot, after: Snapshot, own_pids: set[int], extra_own_ticks: float, cpus: int
) -> float:
    """The share of all CPUs (0–1) that processes outside `own_pids` used between the two
    snapshots. A process of the bench that started meanwhile counts from zero."""
    own = extra_own_ticks
    for pid in own_pids:
        if pid in after.table:
            own += after.table[pid][1] - before.table.get(pid, (0, 0, ""))[1]
    capacity = (after.at - before.at) * HZ * cpus
    if capacity <= 0:
        return 0.0
    return max(0.0, (after.busy - before.busy - own) / capacity)


class CpuAccount:
    """Foreign CPU around load runs against the bench database at `database_url`."""

    def __init__(self, database_url: str):
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.cpus = cpu_count()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()

    def database_pids(self, table: dict[int, tuple[int, int, str]]) -> set[int]:
        """PostgreSQL's processes working for the bench: the backends (and autovacuum workers)
        of its database, the shared background processes, and their postmaster. Empty when the
        server runs on another machine."""
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "OR (datname IS NULL AND backend_type <> 'client backend')"
        ).fetchall()
        pids = {pid for (pid,) in rows if table.get(pid, (0, 0, ""))[2] == "postgres"}
        return pids | {table[pid][0] for pid in pids if table[pid][0] > 1}

    def measure(self, run):
        """`run()`'s result and the foreign share of the CPUs while it ran. `run` returns a
        dict; its `cpu_s` (wrk's own CPU seconds) counts as the bench's."""
        before = snapshot()
        result = run()
        after = snapshot()
        own = descendants(after.table, os.getpid()) | self.database_pids(after.table)
        share = foreign_share(before, after, own, result.get("cpu_s", 0) * HZ, self.cpus)
        return result, share
