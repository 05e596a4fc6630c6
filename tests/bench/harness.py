"""Shared benchmark plumbing: a separate database, gunicorn with 2 workers, and wrk as the load
generator (a C program, so the client does not eat the CPU the server is measured on)."""

import contextlib
import json
import os
import resource
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import psycopg

from tests import servers
from tests.servers import PYTHON, ROOT, with_database

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


def bench_database_name() -> str:
    """BENCH_DATABASE, so two people benchmarking on one server do not share (and load) one
    database."""
    return os.environ.get("BENCH_DATABASE") or "srn_bench"


@contextlib.contextmanager
def bench_database(name: str | None = None):
    """A separate, migrated database on the DATABASE_URL server, so benchmarks never touch the
    demo data. Kept between runs: seeding checks what is already there."""
    name = name or bench_database_name()
    base = os.environ["DATABASE_URL"]
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(base, name)
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


ROLES = (("sender", "sex_worker_led"), ("receiver", "clinic"))


def onboarded(name: str, kind: str) -> tuple:
    """The organisation called `name`, onboarded by the first run that needs it: (organisation,
    its application, its client secret); the secret is None when an earlier run onboarded it."""
    from partners.models import Organisation
    from partners.services import organisation_onboard

    organisation = Organisation.objects.filter(name=name).first()
    if organisation is None:
        return organisation_onboard(name=name, kind=kind)
    return organisation, organisation.applications.first(), None


def authenticated(view, parameter: str):
    """The ceiling `view` after the one statement every API request sends before its own work:
    the token look-up with its count in the shared rate-limit window (the API's own
    `api.authentication.valid_token`). The token's organisation becomes the query parameter
    through which bare views are told whose view to take. What no authenticated request can go
    below, so a bench can tell the API's own cost from what checking the token costs."""
    from django.http import HttpResponse

    from api.authentication import valid_token
    from api.oauth import token_checksum

    def ceiling(request, **kwargs):
        raw = request.headers.get("Authorization", "").partition(" ")[2]
        token = valid_token(token_checksum(raw), request)
        if token is None:
            return HttpResponse(status=401)
        request.GET = request.GET.copy()
        request.GET[parameter] = str(token.application.organisation_id)
        request.application = token.application
        return view(request, **kwargs)

    return ceiling


@contextlib.contextmanager
def serve(database_url: str, workers: int = 2, extra_env: dict | None = None):
    """The API under the bench settings, served as `make run` serves it."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "api.settings.bench",
        **(extra_env or {}),
    }
    with servers.api_server(env, workers) as process:
        yield process.base_url


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
    """Load `url` and return latency percentiles (ms), throughput, error counts and the CPU
    seconds wrk itself used (`cpu_s`, which the foreign-load check counts as the bench's).

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
        # wrk is this process's only child reaped meanwhile, so the children's usage grows by
        # exactly its CPU.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = json.loads(out.read_text())
    result["rps"] = round(result["requests"] / result["duration_s"], 1)
    result["cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3)
    return result


def statements(call) -> list[str]:
    """The SQL (with its placeholders, values apart) that `call()` sends, in process."""
    from django.db import connection

    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()
    return seen


def same_sql(api_call, ceiling_call) -> bool:
    """Whether every statement a ceiling view sends, the API sends too: the ceiling is the API
    minus its plumbing, not a cheaper query. Each call runs once first, so caches are warm."""
    api_call()
    ceiling_call()
    api = set(statements(api_call))
    ceiling = statements(ceiling_call)
    return bool(ceiling) and all(sql in api for sql in ceiling)


def get_token(base: str, client_id: str, secret: str) -> str:
    import base64

    request = urllib.request.Request(
        base + "/oauth/token",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


def verdict(row: dict) -> str:
    if row.get("refused"):
        return "REFUSED"
    return {True: "PASS", False: "FAIL", None: ""}[row.get("ok")]


def comparison_line(row: dict) -> str:
    """One connection count of an interleaved comparison (see rounds.py)."""
    if row.get("refused"):
        return (
            f"{row['rounds']} rounds kept, {row['skipped_rounds']} skipped for foreign load: "
            "no figures"
        )
    parts = []
    for label in row["labels"]:
        parts.append(
            f"{label} p50/p95 {row[f'{label}_p50_ms']}/{row[f'{label}_p95_ms']} ms "
            f"{row[f'{label}_rps']}/s"
        )
    ratios = []
    for metric, unit in (("rps_ratio", "req/s"), ("p50_ratio", "p50")):
        if metric in row:
            ratios.append(
                f"{unit} ×{row[metric]:.2f} [{row[f'{metric}_min']:.2f}–{row[f'{metric}_max']:.2f}]"
            )
    skipped = f", {row['skipped_rounds']} skipped" if row["skipped_rounds"] else ""
    foreign = f", foreign CPU ≤{row['foreign_cpu_max']:.0%}" if "foreign_cpu_max" in row else ""
    failed = f", {row['failed_requests']} failed requests" if row.get("failed_requests") else ""
    return (
        f"{' | '.join(parts)} | {' '.join(ratios)} | "
        f"{row['rounds']} rounds{skipped}{foreign}{failed}"
    )


def report(title: str, rows: list[dict]) -> None:
    print(f"\n== {title}")
    for row in rows:
        kind = row.get("kind")
        if kind == "comparison":
            # PASS and FAIL belong to the targets; a comparison only fails on failed requests.
            flag = verdict(row) if row.get("ok") is not True else ""
            print(f"  {row['name']:<44} {comparison_line(row)}  {flag}".rstrip())
            continue
        if kind == "target":
            figure = (
                f"×{row['ratio']:.2f} [{row['ratio_min']:.2f}–{row['ratio_max']:.2f}]"
                if "ratio" in row
                else "not measured"
            )
            print(f"  TARGET {row['name']:<37} {figure}  {row['target']}  {verdict(row)}")
            continue
        target = row.get("target", "")
        hidden = {"name", "target", "ok", "kind"}
        figures = ", ".join(f"{k}={v}" for k, v in row.items() if k not in hidden)
        print(f"  {row['name']:<44} {figures}  {target} {verdict(row)}".rstrip())
