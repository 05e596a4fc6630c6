"""Shared benchmark plumbing: a separate database, gunicorn with 2 workers, and wrk as the load
generator (a C program, so the client does not eat the CPU the server is measured on)."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

WRK_REPORT = """
done = function(summary, latency, requests)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  out:write(string.format(
    '{"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "requests": %d, "duration_s": %.3f, '
    .. '"errors": %d, "non_2xx": %d}',
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
  out:close()
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def bench_database(name: str = "srn_bench"):
    """A separate, migrated database on the DATABASE_URL server, so benchmarks never touch the
    demo data. Kept between runs: seeding checks what is already there."""
    base = os.environ["DATABASE_URL"]
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(base, name)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "api.settings.bench"}
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "api.settings.bench"
    try:
        yield url
    finally:
        os.environ["DATABASE_URL"] = base


def setup_django():
    """Django in this process, against the bench database (for seeding)."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "api.settings.bench"
    django.setup()


@contextlib.contextmanager
def serve(database_url: str, workers: int = 2, extra_env: dict | None = None):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "api.settings.bench",
        **(extra_env or {}),
    }
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
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def wrk(
    url: str,
    *,
    method: str = "GET",
    headers: dict | None = None,
    body: str | None = None,
    connections: int = 16,
    duration: int = 10,
    threads: int = 2,
    script: str | None = None,
) -> dict:
    """Load `url` and return latency percentiles (ms), throughput and error counts.

    `script` replaces the generated request (a Lua `request` function), for bodies that must
    differ per request.
    """
    lines = [f'wrk.method = "{method}"']
    for key, value in (headers or {}).items():
        lines.append(f'wrk.headers["{key}"] = {json.dumps(value)}')
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines.append(script or "")
    lines.append(WRK_REPORT)
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "bench.lua"
        lua.write_text("\n".join(lines))
        out = Path(tmp) / "out.json"
        subprocess.run(
            [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{duration}s",
                "--latency",
                "-s",
                str(lua),
                url,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "WRK_OUT": str(out)},
        )
        result = json.loads(out.read_text())
    result["rps"] = round(result["requests"] / result["duration_s"], 1)
    return result


def get_token(base: str, client_id: str, secret: str) -> str:
    import base64

    request = urllib.request.Request(
        base + "/oauth/token/",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


def report(title: str, rows: list[dict]) -> None:
    print(f"\n== {title}")
    for row in rows:
        target = row.get("target", "")
        verdict = {True: "PASS", False: "FAIL", None: ""}[row.get("ok")]
        figures = ", ".join(f"{k}={v}" for k, v in row.items() if k not in {"name", "target", "ok"})
        print(f"  {row['name']:<44} {figures}  {target} {verdict}".rstrip())
