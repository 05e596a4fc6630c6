"""The audit chain's single lock, measured (docs/DEPLOY.md, "What limits scale first"): appends
per second from 1, 4 and 16 threads, each on its own connection, standalone (the lock held for
the append alone, its commit not flushed) and inside a transaction (as an API write pays it: the
lock held until that transaction's commit, flushed). Where adding writers stops adding appends,
the lock is the bottleneck: that plateau is the ceiling on audited writes for the whole cluster,
however many nodes. Run by the cluster test with its settings and database; prints JSON."""

import json
import statistics
import sys

from tests.bench.audit import appends

SECONDS = 4


def measure(threads: int, in_transaction: bool) -> dict:
    latencies = appends(threads, SECONDS, in_transaction)
    return {
        "threads": threads,
        "in_transaction": in_transaction,
        "appends_per_s": round(len(latencies) / SECONDS, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(statistics.quantiles(latencies, n=20)[18], 2),
    }


def main() -> int:
    import django

    django.setup()
    rows = [measure(threads, mode) for mode in (False, True) for threads in (1, 4, 16)]
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
