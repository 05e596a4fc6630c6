"""Audit trail benchmark, in process against the bench database:

- appends from 16 threads at once (every API write pays one, under the chain's advisory lock,
  so this is the ceiling on audited writes per second across all workers);
- `verify_audit` over the whole table (what an operator or auditor waits for).

Targets (ours, not the issue's): ≥ 500 appends/s with 16 writers (twice the referral-create
target of 250/s, since every create pays one append), p95 append ≤ 50 ms; verification
≥ 10,000 entries/s (a million entries in under two minutes)."""

import statistics
import threading
import time

from tests.bench import harness

THREADS = 16
APPEND_RPS = 500
APPEND_P95_MS = 50
VERIFY_RATE = 10_000


def appends(threads: int, seconds: float, in_transaction: bool = False) -> list[float]:
    """Each append's latency in ms, from `threads` writers on their own connections for
    `seconds`; `in_transaction` holds the chain's lock until a commit, as an API write does."""
    from django.db import connection, transaction

    from api.audit.services import audit_record

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def append():
        audit_record(action="POST bench:append", result="201", object_type="bench")

    def writer():
        mine = []
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                if in_transaction:
                    with transaction.atomic():
                        append()
                else:
                    append()
                mine.append((time.perf_counter() - started) * 1000)
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def run(args) -> list[dict]:
    with harness.bench_database():
        harness.setup_django()
        from api.audit.models import AuditEntry
        from api.audit.selectors import audit_verify

        seconds = max(3, args.duration)
        latencies = appends(THREADS, seconds)
        rps = round(len(latencies) / seconds, 1)
        p95 = round(statistics.quantiles(latencies, n=20)[18], 2)
        total = AuditEntry.objects.count()
        started = time.perf_counter()
        broken = audit_verify()
        elapsed = time.perf_counter() - started
        rate = round(total / elapsed)
        rows = [
            {
                "name": f"audit appends, {THREADS} writers",
                "appends_per_s": rps,
                "p50_ms": round(statistics.median(latencies), 2),
                "p95_ms": p95,
                "target": f"≥{APPEND_RPS}/s, p95 ≤{APPEND_P95_MS} ms",
                "ok": rps >= APPEND_RPS and p95 <= APPEND_P95_MS,
            },
            {
                "name": "verify_audit, whole chain",
                "entries": total,
                "seconds": round(elapsed, 2),
                "entries_per_s": rate,
                "intact": broken is None,
                "target": f"≥{VERIFY_RATE}/s",
                "ok": broken is None and rate >= VERIFY_RATE,
            },
        ]
    harness.report("Audit trail", rows)
    return rows
