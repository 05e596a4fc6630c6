"""The real stack the verify checks run against, each piece started here and stopped on exit:
a fresh `<name>_verify` database beside DATABASE_URL's own (`srn_verify` beside `postgres`), a
private redis-server as the Celery broker, the API as `make run` serves it (gunicorn, 2 workers)
and a Celery worker, seeded with the demo network."""

import contextlib
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from tests.bench.harness import get_token
from tests.servers import (
    PYTHON,
    ROOT,
    answers_200,
    api_server,
    free_port,
    redis_command,
    redis_pongs,
    stop,
    wait_until,
    with_database,
)

SETTINGS = "api.settings.verify"
# Everything the checks write (demo credentials, reports, the screenshot, generated client) lives
# here, so the developer's own var/demo-credentials.json is never overwritten with secrets that
# belong to the verify database.
VAR = ROOT / "var" / "verify"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def verify_database_name(base_url: str) -> str:
    """Named after DATABASE_URL's own database, so two checkouts verifying on one server never
    drop each other's database."""
    name = urlsplit(base_url).path.lstrip("/")
    return "srn_verify" if name in ("", "postgres") else f"{name}_verify"


def fresh_database(base_url: str, name: str) -> str:
    """Drop and re-create `name` on the server of `base_url`, so every run starts from the same
    data (fuzzing results and memory figures do not depend on what a previous run left)."""
    admin = with_database(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(base_url, name)


def base_env(database_url: str, **extra: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "VAR_DIR": str(VAR),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def manage(*args: str, env: dict) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return result.stdout


def children(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's workers), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def redis_server():
    """A redis-server of our own on a free port, as the Celery broker of one run."""
    port = free_port()
    process = subprocess.Popen(redis_command(port), stdout=subprocess.DEVNULL)
    try:
        wait_until(
            redis_pongs(port),
            "redis-server answering PING",
            10,
            alive=lambda: process.poll() is None,
        )
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


@contextlib.contextmanager
def celery_worker(env: dict):
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "api",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            "1",
            # The default queue (jobs) and webhook deliveries, as `make run` serves both.
            "-Q",
            "celery,webhooks",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        yield process
    finally:
        stop(process)


class Stack:
    """What the checks need to know about the running stack."""

    def __init__(self, base_url, database_url, env, server, credentials):
        self.base_url = base_url
        self.database_url = database_url
        self.env = env
        self.server = server
        self.credentials = credentials

    def token(self, client_id: str = "demo-clinic") -> str:
        return get_token(self.base_url, client_id, self.credentials[client_id]["client_secret"])

    def worker_pids(self) -> list[int]:
        return children(self.server.pid)


@contextlib.contextmanager
def running_stack(base_database_url: str):
    VAR.mkdir(parents=True, exist_ok=True)
    # A fresh database gets fresh OAuth clients, so stale credentials must not be reused.
    (VAR / "demo-credentials.json").unlink(missing_ok=True)
    name = verify_database_name(base_database_url)
    say(f"fresh {name} database, migrations")
    database_url = fresh_database(base_database_url, name)
    with redis_server() as broker:
        env = base_env(database_url, CELERY_BROKER_URL=broker)
        manage("migrate", "--no-input", "-v", "0", env=env)
        say("seeding the demo network")
        credentials = json.loads(manage("seed_demo", "--json", env=env))
        with celery_worker(env), api_server(env) as server:
            wait_until(answers_200(server.base_url + "/readyz"), "/readyz answering 200")
            say(f"stack ready at {server.base_url} (gunicorn pid {server.pid})")
            yield Stack(server.base_url, database_url, env, server, credentials)
