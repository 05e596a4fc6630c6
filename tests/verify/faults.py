"""The database goes away under a running API and comes back. Run against a PostgreSQL this check
starts itself (pgserver, in a temporary directory), never the machine's server: the API answers
503 problem+json within 5 s, /readyz names the database, and the same gunicorn recovers without
a restart once the database returns.

tests/api/test_health.py proves the same of a single request in-process; this proves it of the
deployed shape (gunicorn workers holding persistent connections, CONN_MAX_AGE > 0)."""

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.servers import api_server, with_database
from tests.verify import stack as verify_stack
from tests.verify.stack import base_env, manage, redis_server, say


def fetch(url: str, token: str | None = None) -> tuple[int, str, dict, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, content_type, body = (
                response.status,
                response.headers.get("Content-Type", ""),
                response.read(),
            )
    except urllib.error.HTTPError as error:
        status, content_type, body = error.code, error.headers.get("Content-Type", ""), error.read()
    return status, content_type, json.loads(body or b"{}"), time.monotonic() - started


def database_down() -> dict:
    with tempfile.TemporaryDirectory(prefix="srn-verify-faults-") as tmp:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(Path(tmp) / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        import pgserver

        pgdata = Path(tmp) / "pg"
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        try:
            url = with_database(server.get_uri(), "postgres")
            with redis_server() as broker:
                env = base_env(url, CELERY_BROKER_URL=broker, VAR_DIR=tmp)
                manage("migrate", "--no-input", "-v", "0", env=env)
                credentials = json.loads(manage("seed_demo", "--json", env=env))
                with api_server(env) as api:
                    base = api.base_url
                    secret = credentials["demo-clinic"]["client_secret"]
                    token = verify_stack.get_token(base, "demo-clinic", secret)
                    for _ in range(4):  # both workers hold a live connection first
                        assert fetch(base + "/api/v1/me", token)[0] == 200

                    say("faults: stopping the database")
                    server.cleanup()
                    status, content_type, body, seconds = fetch(base + "/api/v1/me", token)
                    assert status == 503, (status, body)
                    assert content_type.startswith("application/problem+json"), content_type
                    assert seconds < 5, f"503 took {seconds:.1f} s"
                    ready_status, _, ready, _ = fetch(base + "/readyz")
                    assert ready_status == 503, ready
                    assert ready["checks"]["database"] == "unavailable", ready
                    assert ready["checks"]["broker"] == "ok", ready

                    say("faults: starting the database again")
                    server = pgserver.get_server(pgdata, cleanup_mode="stop")
                    deadline = time.monotonic() + 15
                    while fetch(base + "/api/v1/me", token)[0] != 200:
                        assert time.monotonic() < deadline, "the API did not recover in 15 s"
                        time.sleep(0.2)
                    recovered = [fetch(base + "/api/v1/me", token)[0] for _ in range(6)]
                    assert recovered == [200] * 6, recovered
                    assert fetch(base + "/readyz")[0] == 200
        finally:
            server.cleanup()
    return {
        "name": "Database down: 503 problem+json, /readyz names it, recovery",
        "tool": f"pgserver {importlib_version('pgserver')}, gunicorn {importlib_version('gunicorn')}",
        "ok": True,
        "detail": f"503 in {seconds * 1000:.0f} ms; /readyz checks {ready['checks']}; "
        "recovered without restart",
    }


def importlib_version(name: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(name)
