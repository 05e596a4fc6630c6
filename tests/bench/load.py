"""Mixed load with Locust (headless, 2 gunicorn workers): 60% service searches, 15% capacity
updates, 10% referral creations, 15% inbox reads, as two demo organisations would produce it.
Zero errors allowed; requests/s and p50/p95/p99 reported per kind; the gunicorn workers' memory
(RSS from /proc) after the run must stay within 20% of their memory after a warm-up.

Run by `make bench` (`run`, against the bench database) and `make verify` (`verify`, against
the verify stack). Locust runs in its own process: it monkey-patches the standard library with
gevent, which must not happen in the process that manages gunicorn.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

USERS = 8  # closed loop, no think time: enough to keep 2 workers on 2 cores busy
WARMUP_SECONDS = 10
MEMORY_GROWTH_MAX = 0.20
KINDS = {"search": 60, "capacity": 15, "create referral": 10, "inbox": 15}


# --- Preparation over HTTP (what a partner would do), shared by bench and verify -------------


def prepare(base_url: str, credentials: dict) -> dict:
    """Tokens for a sender (the collective) and a receiver (the clinic), an active partnership
    between them, and one service per simulated user so capacity updates never race on ETags."""
    import httpx

    def token(client_id):
        response = httpx.post(
            base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, credentials[client_id]["client_secret"]),
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    sender_token, receiver_token = token("demo-collective"), token("demo-clinic")
    sender = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {sender_token}"})
    receiver = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {receiver_token}"}
    )
    receiver_id = credentials["demo-clinic"]["organisation_id"]
    partnerships = sender.get("/api/v1/partnerships").raise_for_status().json()["results"]
    if not any(p["status"] == "active" and receiver_id in json.dumps(p) for p in partnerships):
        proposed = sender.post(
            "/api/v1/partnerships",
            json={
                "partner_id": receiver_id,
                "data_categories": ["contact", "health", "notes"],
                "purposes": ["Referral for sexual health care"],
            },
        ).raise_for_status()
        receiver.post(f"/api/v1/partnerships/{proposed.json()['id']}/accept").raise_for_status()
    services = []
    for index in range(USERS):
        created = receiver.post(
            "/api/v1/services",
            json={
                "name": f"Load test clinic hours {index}",
                "taxonomy": ["sti-testing"],
                "languages": ["pt", "en"],
                "cost": "free",
                "no_id_required": True,
                "walk_in": True,
            },
        ).raise_for_status()
        services.append(created.json()["id"])
    return {
        "sender_token": sender_token,
        "receiver_token": receiver_token,
        "receiver_id": receiver_id,
        "services": services,
    }


def worker_rss_kib(master_pid: int) -> int:
    from tests.verify.stack import children, rss_kib

    return sum(rss_kib(pid) for pid in children(master_pid))


def locust(base_url: str, config: dict, seconds: int, out: Path) -> dict[str, dict]:
    """One headless Locust run; returns per-kind figures from its CSV statistics."""
    env = {**os.environ, "LOAD_CONFIG": json.dumps(config)}
    subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", __file__, "--headless",
            "--users", str(USERS), "--spawn-rate", str(USERS), "--run-time", f"{seconds}s",
            "--host", base_url, "--csv", str(out), "--only-summary", "--loglevel", "WARNING",
            "--stop-timeout", "5",
        ],
        env=env, check=False, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    rows = {}
    with open(f"{out}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] in KINDS:
                rows[row["Name"]] = {
                    "requests": int(row["Request Count"]),
                    "errors": int(row["Failure Count"]),
                    "rps": round(float(row["Requests/s"]), 1),
                    "p50_ms": float(row["50%"]),
                    "p95_ms": float(row["95%"]),
                    "p99_ms": float(row["99%"]),
                }
    return rows


def measure(base_url: str, credentials: dict, master_pid: int, seconds: int) -> list[dict]:
    config = prepare(base_url, credentials)
    with tempfile.TemporaryDirectory() as tmp:
        locust(base_url, config, WARMUP_SECONDS, Path(tmp) / "warmup")
        warm = worker_rss_kib(master_pid)
        figures = locust(base_url, config, seconds, Path(tmp) / "load")
        after = worker_rss_kib(master_pid)
    rows = []
    for kind in KINDS:
        figure = figures.get(kind, {"requests": 0, "errors": 0})
        rows.append(
            {
                "name": f"load: {kind} ({KINDS[kind]}%)",
                **figure,
                "ok": figure["requests"] > 0 and figure["errors"] == 0,
            }
        )
    growth = (after - warm) / warm if warm else 1.0
    rows.append(
        {
            "name": "load: gunicorn workers' RSS after run vs warm-up",
            "warm_mib": round(warm / 1024, 1),
            "after_mib": round(after / 1024, 1),
            "growth_pct": round(growth * 100, 1),
            "ok": growth <= MEMORY_GROWTH_MAX,
        }
    )
    return rows


def run(args) -> list[dict]:
    """`make bench`: the bench database, seeded with the demo network (credentials kept under
    var/bench so the developer's own demo credentials stay valid)."""
    from tests.bench import harness

    seconds = max(args.duration, 60) if getattr(args, "duration", None) else 60
    with harness.bench_database() as url:
        env = {**os.environ, "DATABASE_URL": url, "VAR_DIR": str(harness.ROOT / "var" / "bench")}
        credentials = json.loads(
            subprocess.run(
                [harness.PYTHON, "manage.py", "seed_demo", "--json"],
                cwd=harness.ROOT, env=env, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        with harness.serve(url, workers=2, extra_env={"VAR_DIR": env["VAR_DIR"]}) as base:
            from tests.verify.stack import children

            # harness.serve's gunicorn master is this process's newest child.
            rows = measure(base, credentials, max(children(os.getpid())), seconds)
    harness.report(f"Mixed load with Locust, {USERS} users, {seconds} s, 2 workers", rows)
    return rows


def verify(stack, seconds: int) -> dict:
    """`make verify`: the same load against the verify stack."""
    import importlib.metadata

    from tests.bench import harness

    rows = measure(stack.base_url, stack.credentials, stack.server.pid, seconds)
    harness.report(f"Mixed load with Locust, {USERS} users, {seconds} s, 2 workers", rows)
    total = sum(row.get("rps", 0) for row in rows)
    failed = [row["name"] for row in rows if not row["ok"]]
    return {
        "name": f"Locust mixed load ({seconds} s, {USERS} users, 2 workers)",
        "tool": f"locust {importlib.metadata.version('locust')}",
        "ok": not failed,
        "detail": f"{total:.0f} req/s in all; "
        + "; ".join(
            f"{row['name'][6:]}: {row.get('rps')} req/s p50/p95/p99 "
            f"{row.get('p50_ms')}/{row.get('p95_ms')}/{row.get('p99_ms')} ms, "
            f"{row.get('errors')} errors"
            for row in rows[:-1]
        )
        + f"; RSS {rows[-1]['warm_mib']} → {rows[-1]['after_mib']} MiB ({rows[-1]['growth_pct']}%)"
        + (f"; FAILED: {failed}" if failed else ""),
    }


# --- The Locust users (only when Locust itself loads this file) ------------------------------

if "locust" in sys.modules:
    from locust import HttpUser, task

    from tests.referral_bodies import minimal_referral
    from tests.traffic import capacity_request, next_search, start_partner

    CONFIG = json.loads(os.environ.get("LOAD_CONFIG", "{}"))
    SERVICE_QUEUE = list(CONFIG.get("services", []))

    class Partner(HttpUser):
        """One partner system: searches as the collective, publishes capacity and reads its
        inbox as the clinic, refers from the collective to the clinic."""

        def on_start(self):
            start_partner(self, CONFIG, SERVICE_QUEUE)

        @task(KINDS["search"])
        def search(self):
            self.client.post(
                "/api/v1/services/search",
                json=next_search(self),
                headers=self.sender,
                name="search",
            )

        @task(KINDS["capacity"])
        def capacity(self):
            url, request = capacity_request(self, "capacity etag")
            self.etag = self.client.put(url, **request).headers.get("ETag")

        @task(KINDS["create referral"])
        def create_referral(self):
            self.client.post(
                "/api/v1/referrals",
                json=minimal_referral(
                    receiver_id=CONFIG["receiver_id"], service_id=self.service, name="Load"
                ),
                headers={**self.sender, "Idempotency-Key": str(uuid.uuid4())},
                name="create referral",
            )

        @task(KINDS["inbox"])
        def inbox(self):
            self.client.get("/api/v1/referrals?box=inbox", headers=self.receiver, name="inbox")
