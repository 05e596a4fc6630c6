"""The bench's refusal to measure on a busy machine: the load-average gate before a run, and the
foreign-CPU accounting around each load run (/proc on this machine, PostgreSQL's own view)."""

import contextlib
import os
import subprocess
import sys
import time

import pytest

from tests.bench import machine
from tests.conftest import database_url


def test_check_load_passes_at_or_below_the_threshold_and_prints_it():
    said = []
    load = machine.check_load(threshold=1.0, loadavg=lambda: (1.0, 3.0, 3.0), say=said.append)
    assert load == 1.0
    assert said and "1.00" in said[0] and "BENCH_MAX_LOAD" in said[0]


def test_check_load_refuses_above_the_threshold():
    said = []
    with pytest.raises(machine.MachineBusy, match=r"load average 1\.40 > 1"):
        machine.check_load(threshold=1.0, loadavg=lambda: (1.4, 0.2, 0.1), say=said.append)
    assert "1.40" in said[0]


def test_thresholds_default_to_half_the_cpus_and_read_the_environment():
    assert machine.max_load({}) == 0.5 * machine.cpu_count()
    assert machine.max_load({"BENCH_MAX_LOAD": "3.5"}) == 3.5
    assert machine.max_foreign({}) == machine.DEFAULT_MAX_FOREIGN
    assert machine.max_foreign({"BENCH_MAX_FOREIGN": "0.25"}) == 0.25


def test_busy_ticks_leave_out_idle_and_io_wait():
    stat = "cpu  100 20 30 5000 40 7 9 11 3 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n"
    assert machine.busy_ticks(stat) == 100 + 20 + 30 + 7 + 9 + 11


def test_descendants_follow_parent_links():
    table = {
        1: (0, 0, "init"),
        10: (1, 0, "a"),
        11: (10, 0, "b"),
        12: (11, 0, "c"),
        20: (1, 0, "d"),
    }
    assert machine.descendants(table, 10) == {10, 11, 12}


def test_foreign_share_is_busy_time_minus_the_benchs_own():
    hz = machine.HZ
    before = machine.Snapshot(at=0.0, busy=0, table={5: (1, 100, "x"), 6: (1, 50, "y")})
    after = machine.Snapshot(
        at=2.0,
        busy=int(3.0 * hz),  # 3 CPU seconds busy in 2 s on 2 CPUs
        table={5: (1, 100 + int(1.0 * hz), "x"), 6: (1, 50 + int(1.5 * hz), "y"), 7: (5, 0, "z")},
    )
    # Process 5 (1 s) and wrk (0.5 s, reaped: extra ticks) are the bench's; 6 is not.
    share = machine.foreign_share(before, after, {5, 7}, 0.5 * hz, cpus=2)
    assert share == pytest.approx(1.5 / 4)
    # Nothing foreign when the bench accounts for all of it; never below zero.
    assert machine.foreign_share(before, after, {5, 6}, 2 * hz, cpus=2) == 0.0


def test_a_process_outside_the_bench_is_foreign_and_its_children_are_its_own(db):
    """Real /proc and PostgreSQL: a busy loop started outside this process tree (double-forked,
    so init adopts it) is foreign; the bench's own children are the bench's. The loop must not
    hold the launcher's stdout, or reading the pid would wait for the loop to end."""
    burn = "import time\nend = time.monotonic() + 2.5\nwhile time.monotonic() < end: pass\n"
    detached = subprocess.run(
        [sys.executable, "-c", f"import subprocess, sys; print(subprocess.Popen([sys.executable, '-c', {burn!r}], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stranger = int(detached.stdout)
    try:
        with machine.CpuAccount(database_url()) as account:
            table = machine.process_table()
            assert stranger not in machine.descendants(table, os.getpid())
            assert account.database_pids(table), "this test's own backend is the bench's"
            _, share = account.measure(lambda: (time.sleep(1.5), {})[1])
        # One busy CPU of all of them; other people's work only adds to it.
        assert share >= 0.8 / machine.cpu_count()

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert child.pid in machine.descendants(machine.process_table(), os.getpid())
        finally:
            child.kill()
            child.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stranger, 9)
