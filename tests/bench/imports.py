"""HSDS import benchmark: 20,000 services uploaded to POST /api/v1/directory/imports (gunicorn)
and run by one Celery worker process on our own Redis, in a database of its own made anew each
run. Reports services per second, the time each successive 1,000 services took to write as the
directory grew (flat when the cost is linear), and the worker's peak memory for 5,000, 10,000
and 20,000 services, each in a fresh worker: flat with size, because the import streams the
file and writes in batches instead of loading it.

Targets: the last quarter's median time per 1,000 within 1.5× the first's (linear), the 20,000-service
worker's peak memory within 1.25× the 5,000-service one's (flat)."""

import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from tests.api.webhooks.processes import Broker, wait_ready
from tests.bench import harness
from tests.partners.imports import hsds_address
from tests.verify.stack import fresh_database

SIZES = (5_000, 10_000, 20_000)
SERVICES_PER_ORGANISATION = 10
LINEAR_RATIO = 1.5
FLAT_RATIO = 1.25
DATABASE = "srn_bench_imports"
CODES = ["sti-testing", "hiv-prep-pep", "general-health", "legal-aid-immigration", "food"]
SAFEGUARDS = ["no_id_required", "walk_in", "trans_friendly"]


def document(size: int, path: Path, seed: int) -> None:
    """An HSDS Page of `size` fully nested services, written a service at a time."""
    rng = random.Random(seed)
    with open(path, "w") as out:
        out.write(f'{{"total_items": {size}, "contents": [')
        for n in range(size):
            location_id = str(uuid.uuid4())
            terms = [{"code": code, "taxonomy": "srn"} for code in rng.sample(CODES, 2)]
            terms += [{"code": name, "taxonomy": "srn-safeguards"} for name in SAFEGUARDS[: n % 4]]
            service = {
                "id": str(uuid.uuid4()),
                "name": f"Imported service {n:05}",
                "status": "active",
                "description": "Confidential care, no questions about status. " * 3,
                "languages": [{"code": "pt"}, {"code": "es"}],
                "service_at_locations": [
                    {
                        "id": location_id,
                        "location": {
                            "id": location_id,
                            "location_type": "physical",
                            "name": f"Site {n}",
                            "latitude": round(rng.uniform(37, 43), 6),
                            "longitude": round(rng.uniform(-9, 3), 6),
                            "addresses": [hsds_address(f"Rua {n}")],
                        },
                        "schedules": [
                            {"byday": "MO,TU,WE,TH,FR", "opens_at": "09:00", "closes_at": "17:00"}
                        ],
                    }
                ],
                "attributes": [
                    {
                        "id": str(uuid.uuid4()),
                        "taxonomy_term": {
                            **term,
                            "id": str(uuid.uuid4()),
                            "name": term["code"],
                            "description": "",
                        },
                    }
                    for term in terms
                ],
                "capacities": [{"unit": {"name": "appointments"}, "available": 3, "maximum": 9}],
            }
            out.write(("," if n else "") + json.dumps(service))
        out.write("]}")


def _worker(broker: Broker, database_url: str, log_path: Path):
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.bench",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker.url,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "api", "worker", "-Q", "celery",
        "--pool", "solo", "-l", "info", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip
    log_path.write_bytes(b"")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, cwd=harness.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    wait_ready(process, log_path)
    return process


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _import(base: str, token: str, path: Path) -> tuple[dict, list[tuple[float, int]]]:
    """Upload and follow the job to its end; returns it and (time, done) as it went."""
    with open(path, "rb") as file:
        response = requests.post(
            f"{base}/api/v1/directory/imports",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (path.name, file, "application/json")},
            data={"on_conflict": "skip"},
            timeout=600,
        )
    assert response.status_code == 202, response.text
    url = f"{base}/api/v1/directory/imports/{response.json()['id']}"
    seen: list[tuple[float, int]] = []
    while True:
        job = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        seen.append((time.monotonic(), job["progress"]["done"]))
        if job["status"] in ("succeeded", "failed"):
            return job, seen
        time.sleep(0.05)


def _per_thousand(seen: list[tuple[float, int]]) -> list[float]:
    """Seconds each successive 1,000 services took, from the progress as it was polled, from
    the first thousand on (before it, writing had not started: the first interval would be a
    part of one)."""
    times = []
    previous = next(t for t, done in seen if done >= 1000)
    mark = 2000
    for at, done in seen:
        while done >= mark:
            times.append(at - previous)
            previous, mark = at, mark + 1000
    return times


def run(args) -> list[dict]:
    broker = Broker()
    broker.start()
    os.environ["CELERY_BROKER_URL"] = broker.url
    peaks, rows = {}, []
    try:
        fresh_database(os.environ["DATABASE_URL"], DATABASE)
        with harness.bench_database(DATABASE) as database_url, tempfile.TemporaryDirectory() as tmp:
            harness.setup_django()
            from partners.models import Organisation
            from partners.services import application_create

            with harness.serve(database_url, workers=2) as base:
                for size in SIZES:
                    path = Path(tmp) / f"directory-{size}.json"
                    document(size, path, seed=size)
                    organisation = Organisation.objects.create(
                        name=f"Bench import {size}", kind="other"
                    )
                    application, secret = application_create(
                        organisation=organisation, scopes=["directory:read", "directory:write"]
                    )
                    token = harness.get_token(base, application.client_id, secret)
                    worker = _worker(broker, database_url, Path(tmp) / "worker.log")
                    try:
                        job, seen = _import(base, token, path)
                        peaks[size] = _peak_kib(worker.pid)
                    finally:
                        worker.terminate()
                        worker.wait(30)
                    assert job["status"] == "succeeded", job
                    assert job["counts"]["created"] == size, job["counts"]
                    if size == SIZES[-1]:
                        from django.utils.dateparse import parse_datetime

                        seconds = (
                            parse_datetime(job["finished"]) - parse_datetime(job["started"])
                        ).total_seconds()
                        per_thousand = _per_thousand(seen)
                        mb = path.stat().st_size / 1e6
    finally:
        broker.stop()
    quarter = max(1, len(per_thousand) // 4)
    first = statistics.median(per_thousand[:quarter])
    last = statistics.median(per_thousand[-quarter:])
    rows.append(
        {
            "name": f"import {SIZES[-1]} services (API upload, 1 worker)",
            "file_mb": round(mb, 1),
            "seconds": round(seconds, 1),
            "services_per_s": round(SIZES[-1] / seconds, 1),
        }
    )
    rows.append(
        {
            "name": "seconds per 1,000 services as the directory grows",
            "per_1000": " ".join(f"{t:.2f}" for t in per_thousand),
            "first_quarter": round(first, 2),
            "last_quarter": round(last, 2),
            "target": f"last ≤ {LINEAR_RATIO}× first",
            "ok": last <= LINEAR_RATIO * first,
        }
    )
    rows.append(
        {
            "name": "worker peak RSS by file size (fresh worker each)",
            **{f"{size}_mib": round(peak / 1024, 1) for size, peak in peaks.items()},
            "target": f"{SIZES[-1]} ≤ {FLAT_RATIO}× {SIZES[0]}",
            "ok": peaks[SIZES[-1]] <= FLAT_RATIO * peaks[SIZES[0]],
        }
    )
    harness.report("imports", rows)
    return rows
