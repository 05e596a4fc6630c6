"""The real stack the verify checks run against, each piece started here and stopped on exit:
a fresh `srn_verify` database on the DATABASE_URL server, a private redis-server as the Celery
broker, gunicorn with 2 workers and a Celery worker, seeded with the demo network."""

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.api.webhooks.processes import redis_server_binary
from tests.bench.harness import PYTHON, ROOT, free_port, get_token

SETTINGS = "api.settings.verify"
# Everything the checks write (demo credentials, reports, the screenshot, generated client) lives
# here, so the developer's own var/demo-credentials.json is never overwritten with secrets that
# belong to the verify database.
VAR = ROOT / "var" / "verify"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def fresh_database(base_url: str, name: str = "srn_verify") -> str:
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
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def wait_for(url: str, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or (process is not None and process.poll() is not None):
            raise RuntimeError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's workers), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server():
    """A redis-server of our own on a free port (the machine's Redis is never touched), with no
    persistence: it is a broker for one run."""
    binary = redis_server_binary()
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


@contextlib.contextmanager
def gunicorn(env: dict, workers: int = 2):
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "api.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz", process=process)
        process.base_url = base
        yield process
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
    say("fresh srn_verify database, migrations")
    database_url = fresh_database(base_database_url)
    with redis_server() as broker:
        env = base_env(database_url, CELERY_BROKER_URL=broker)
        manage("migrate", "--no-input", "-v", "0", env=env)
        say("seeding the demo network")
        credentials = json.loads(manage("seed_demo", "--json", env=env))
        with celery_worker(env), gunicorn(env) as server:
            wait_for(server.base_url + "/readyz")
            say(f"stack ready at {server.base_url} (gunicorn pid {server.pid})")
            yield Stack(server.base_url, database_url, env, server, credentials)
