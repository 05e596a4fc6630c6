"""Liveness and readiness. The stopped-database case runs a real gunicorn against its own
embedded PostgreSQL (never the shared one), stops that database, and starts it again."""

import atexit
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from api.celery import app as celery_app
from tests.api.helpers import assert_problem, import_pgserver
from tests.servers import free_port

ROOT = Path(settings.BASE_DIR)


def test_healthz(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok(http):
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_names_an_unreachable_broker(http, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        # Bound but not listening: connections are refused at once.
        # Publishing uses the write URL, which Celery derived from CELERY_BROKER_URL.
        monkeypatch.setattr(celery_app.conf, "broker_write_url", f"redis://127.0.0.1:{port}/0")
        started = time.monotonic()
        response = http.get("/readyz")
    assert time.monotonic() - started < 5
    body = assert_problem(response, 503)
    assert body["checks"] == {"database": "ok", "broker": "unavailable"}
    assert "broker" in body["detail"]


# --- a real server whose database goes away -------------------------------------------------


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def post_form(url: str, data: dict) -> dict:
    body = urllib.parse.urlencode(data).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:
        return json.loads(response.read())


def post_form_status(url: str, partner: dict) -> tuple[int, dict, dict]:
    data = {
        "grant_type": "client_credentials",
        "client_id": partner["client_id"],
        "client_secret": partner["client_secret"],
    }
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


@pytest.fixture
def embedded_database(workdir):
    """Our own PostgreSQL in a temporary folder, stopped at the end whatever happened."""
    pgserver = import_pgserver()
    server = pgserver.get_server(workdir / "pgdata", cleanup_mode="stop")
    try:
        yield pgserver, server
    finally:
        last = pgserver.get_server(workdir / "pgdata", cleanup_mode="stop")
        last.cleanup()
        # Already stopped: keep pgserver's exit hooks from logging into closed captures.
        for handle in {server, last}:
            atexit.unregister(handle._cleanup)


def test_readyz_reports_a_stopped_database_and_recovers(workdir, embedded_database):
    pgserver, server = embedded_database
    env = {
        **os.environ,
        "DATABASE_URL": server.get_uri(),
        "DJANGO_SETTINGS_MODULE": "api.settings.dev",
        "VAR_DIR": str(workdir / "var"),
        "CELERY_BROKER_URL": "memory://",
        "DB_CONNECT_TIMEOUT": "2",
        # gunicorn keeps a control socket there: one per test run, not one shared by all.
        "XDG_RUNTIME_DIR": str(workdir / "run"),
    }
    (workdir / "run").mkdir(mode=0o700)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    partner = json.loads(
        subprocess.run(
            [*manage, "onboard_partner", "--name", "Readiness", "--kind", "clinic", "--json"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = (workdir / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "api.wsgi", "--bind", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready():
            try:
                return fetch(base + "/readyz")[0] == 200
            except OSError:
                return False

        assert wait_for(ready, 30), "gunicorn did not become ready"
        token = post_form(
            base + "/oauth/token",
            {
                "grant_type": "client_credentials",
                "client_id": partner["client_id"],
                "client_secret": partner["client_secret"],
            },
        )["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert fetch(base + "/api/v1/me", auth)[0] == 200

        server.cleanup()  # the last handle: pgserver stops the database

        # Liveness does not depend on the database, or an outage would restart every worker.
        assert fetch(base + "/healthz")[0] == 200

        started = time.monotonic()
        status, headers, body = fetch(base + "/readyz")
        assert time.monotonic() - started < 5
        assert status == 503
        assert headers["Content-Type"] == "application/problem+json"
        assert body["checks"] == {"database": "unavailable", "broker": "ok"}
        assert "database" in body["detail"]

        started = time.monotonic()
        status, headers, body = fetch(base + "/api/v1/me", auth)
        assert time.monotonic() - started < 5
        assert status == 503, body
        assert headers["Content-Type"] == "application/problem+json"
        assert body["type"] == "/problems/database-unavailable"
        assert int(headers["Retry-After"]) > 0
        assert "X-Request-ID" in headers

        token_endpoint_during_outage = post_form_status(base + "/oauth/token", partner)

        pgserver.get_server(workdir / "pgdata", cleanup_mode="stop")
        assert wait_for(lambda: fetch(base + "/readyz")[0] == 200, 10)
        assert fetch(base + "/api/v1/me", auth)[0] == 200
        assert gunicorn.poll() is None, "the server was restarted"

        status, headers, body = token_endpoint_during_outage
        log = (workdir / "gunicorn.log").read_text()[-3000:]
        assert status == 503, f"token endpoint during the outage: {body}\n{log}"
        assert headers["Content-Type"] == "application/problem+json"
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=10)
        server_log.close()
