"""Webhook delivery benchmark (issue 5): 1,000 events, each emitted in its own transaction the
way an API write emits them, through our own Redis broker and ONE Celery worker process to a
loopback receiver. Measures deliveries per second (first commit to last arrival) and the time
from each commit to its arrival at the receiver.

Targets (the issue's): ≥ 100 deliveries/s, p95 commit → receiver ≤ 1 s.

The live run offers events at a steady OFFERED_RATE, above the throughput target: writers that
flood faster than any consumer drains make every later event wait behind the earlier ones, so
latency then measures the flood, not the delivery path. The backlog run measures how fast one
worker drains 1,000 waiting events."""

import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.api.webhooks.processes import Broker, start_worker, wait_ready
from tests.api.webhooks.receiver import Receiver
from tests.bench import harness

EVENTS = 1000
EMITTERS = 4  # writer processes, like API requests on several gunicorn workers
WORKER_THREADS = 16
TARGET_RATE = 100
TARGET_P95_S = 1.0
OFFERED_RATE = 125  # events per second, across all writers


def _emit(organisation_id, count: int, out) -> None:
    """One writer process, like one gunicorn worker: its own database and broker
    connections (a forked child must not share its parent's)."""
    from django.db import connections, transaction

    from api.events import emit
    from api.webhooks import services
    from partners.models import Organisation

    connections.close_all()
    services._broker.__dict__.clear()
    organisation = Organisation(pk=organisation_id)
    commits = {}
    interval = EMITTERS / OFFERED_RATE
    started = time.monotonic()
    try:
        for n in range(count):
            time.sleep(max(0.0, started + n * interval - time.monotonic()))
            committed = {}
            with transaction.atomic():
                # Registered before emit's own hook, so it runs first: the commit instant.
                transaction.on_commit(lambda c=committed: c.setdefault("at", time.time()))
                (event,) = emit(
                    "capacity.updated",
                    organisations=[organisation],
                    data={"n": n, "links": {"self": f"/api/v1/services/{n}/capacity"}},
                )
            commits[str(event.id)] = committed["at"]
    finally:
        connections.close_all()
        out.put(commits)


def _emit_all(organisation, count: int) -> dict:
    """Writers in separate processes, so they do not share a GIL with the receiver."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    writers = [
        context.Process(target=_emit, args=(organisation.pk, count // EMITTERS, out))
        for _ in range(EMITTERS)
    ]
    for writer in writers:
        writer.start()
    commits: dict = {}
    for _ in writers:
        commits.update(out.get(timeout=300))
    for writer in writers:
        writer.join()
    return commits


def _arrivals(receiver, already: int, commits: dict) -> dict:
    received = receiver.wait_for(already + len(commits), timeout=180)[already:]
    arrivals = {got.headers["webhook-id"]: got.at for got in received}
    assert set(arrivals) == set(commits), "every event arrived exactly once"
    return arrivals


def _live(organisation, receiver, count: int) -> dict:
    """Events emitted while the worker runs: the rate and commit → receiver latency."""
    already = len(receiver.received)
    started = time.time()
    commits = _emit_all(organisation, count)
    emitted = time.time()
    arrivals = _arrivals(receiver, already, commits)
    latencies = sorted(arrivals[i] - commits[i] for i in commits)
    span = max(arrivals.values()) - min(commits.values())
    return {
        "events": len(commits),
        "emitted_per_s": round(len(commits) / (emitted - started), 1),
        "deliveries_per_s": round(len(commits) / span, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(statistics.quantiles(latencies, n=20)[18] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
    }


def _worker(broker, database_url, log_path):
    with open(log_path, "ab") as log:
        process = start_worker(
            broker.url,
            database_url,
            settings="api.settings.bench",
            concurrency=WORKER_THREADS,
            log=log,
        )
    wait_ready(process, log_path)
    return process


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(process) -> None:
    process.terminate()
    process.wait(15)


def run(args) -> list[dict]:
    broker = Broker()
    broker.start()
    os.environ["CELERY_BROKER_URL"] = broker.url
    try:
        with harness.bench_database() as database_url, tempfile.TemporaryDirectory() as tmp:
            harness.setup_django()
            from api.webhooks.models import WebhookDelivery
            from api.webhooks.services import endpoint_create
            from partners.models import Organisation

            log_path = Path(tmp) / "worker.log"
            log_path.touch()
            organisation = Organisation.objects.create(name="Bench webhooks", kind="other")
            try:
                with Receiver() as receiver:
                    endpoint_create(organisation=organisation, url=receiver.url, event_types=["*"])
                    worker = _worker(broker, database_url, log_path)
                    try:
                        _live(organisation, receiver, 40)  # warm-up: connections, imports
                        live = _live(organisation, receiver, EVENTS)
                    finally:
                        _stop(worker)
                    # The worker's own ceiling: a backlog queued while it was down, drained.
                    already = len(receiver.received)
                    started = time.time()
                    commits = _emit_all(organisation, EVENTS)
                    emitted = round(len(commits) / (time.time() - started), 1)
                    log_path.write_bytes(b"")
                    worker = _worker(broker, database_url, log_path)
                    ready = time.time()
                    try:
                        cpu_before = _cpu_seconds(worker.pid)
                        arrivals = _arrivals(receiver, already, commits)
                        cpu_ms = (_cpu_seconds(worker.pid) - cpu_before) * 1000 / len(commits)
                    finally:
                        _stop(worker)
                    drain = round(len(commits) / (max(arrivals.values()) - ready), 1)
                    not_succeeded = (
                        WebhookDelivery.objects.filter(endpoint__organisation=organisation)
                        .exclude(status="succeeded")
                        .count()
                    )
            finally:
                organisation.delete()
    finally:
        broker.stop()
    ok = live["deliveries_per_s"] >= TARGET_RATE and live["p95_ms"] <= TARGET_P95_S * 1000
    rows = [
        {
            "name": f"webhooks live: {EVENTS} events offered at {OFFERED_RATE}/s, 1 worker",
            **live,
            "target": f"≥{TARGET_RATE}/s, p95 ≤{int(TARGET_P95_S * 1000)} ms",
            "ok": ok and not_succeeded == 0,
        },
        {
            "name": f"webhooks backlog: {EVENTS} queued, 1 worker × {WORKER_THREADS} threads",
            "emitted_per_s": emitted,
            "deliveries_per_s": drain,
            "worker_cpu_ms_per_delivery": round(cpu_ms, 2),
            "not_succeeded": not_succeeded,
            "target": f"≥{TARGET_RATE}/s",
            "ok": drain >= TARGET_RATE and not_succeeded == 0,
        },
    ]
    # Both sides share this machine's CPUs: a busy machine lowers every figure.
    rows[0]["load_avg"] = round(os.getloadavg()[0], 1)
    harness.report("Webhook delivery", rows)
    return rows
