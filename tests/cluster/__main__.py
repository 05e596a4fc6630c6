"""`make cluster-test`: the project as a cluster on this machine, broken on a schedule under load.

Started here and stopped on exit: a fresh `<name>_cluster` database beside DATABASE_URL's (or an
embedded PostgreSQL when it is unset), PgBouncer in transaction mode in front of it, two API
nodes (gunicorn, two workers each) behind HAProxy, two Celery workers per queue and two beats on
a RabbitMQ virtual host of this machine's broker (then, once more, on a redis-server of this
test's own), and a loopback webhook receiver that verifies every delivery.

Locust drives mixed load through HAProxy: first without faults on both nodes and on one node
(the figures), then for CLUSTER_SECONDS (90) while faults are made on a schedule (a node
killed and brought back, a worker of each queue killed, a beat restarted), then on Redis while
the broker is away for 10 s. Then it asserts: every referral answered 201 exists exactly once;
every outbox event reached the receiver, verified, and one webhook-id per event; a client at its
rate limit on node A is limited on node B; verify_audit passes; each scheduled job was sent once
per period by two beats; errors happened only in the fault windows. It prints a table of the
faults and the figures.
"""

import argparse
import contextlib
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from tests.bench import load
from tests.cluster import processes
from tests.cluster.receiver import VerifyingReceiver
from tests.servers import PYTHON, ROOT, free_port, with_database
from tests.verify.stack import fresh_database, manage

SETTINGS = "api.settings.cluster"
DATABASE_URL = os.environ.get("DATABASE_URL")  # before django.setup() needs one set
USERS = 8
RETRYABLE = {0, 502, 503, 504}
WINDOW_GRACE = 8.0  # seconds after a fault ends that errors still count as its own


def say(message: str) -> None:
    print(f"==> cluster: {message}", flush=True)


class Failed(AssertionError):
    pass


def check(condition: bool, what: str, results: list) -> None:
    results.append((what, bool(condition)))
    say(("ok      " if condition else "FAILED  ") + what)


# --- Load -------------------------------------------------------------------------------------


def run_load(host: str, config: dict, seconds: int, directory: Path, tag: str):
    """Locust in its own process, headless; returns (process, requests file, started)."""
    requests = directory / f"requests-{tag}.jsonl"
    env = {
        **os.environ,
        "CLUSTER_CONFIG": json.dumps(config),
        "CLUSTER_REQUESTS": str(requests),
        "CLUSTER_CREATED": str(directory / "created.jsonl"),
    }
    command = [
        PYTHON, "-m", "locust", "-f", str(Path(__file__).parent / "locustfile.py"), "--headless",
        "--users", str(USERS), "--spawn-rate", str(USERS), "--run-time", f"{seconds}s",
        "--host", host, "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10",
    ]  # fmt: skip
    log = (directory / f"locust-{tag}.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process, requests, time.time()


def read_requests(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def figures(rows: list[dict], seconds: float) -> dict:
    done = [row for row in rows if not row["error"]]
    times = sorted(row["ms"] for row in done)
    if len(times) < 2:
        return {"requests": len(done), "rps": 0.0, "p50": 0.0, "p95": 0.0}
    cuts = statistics.quantiles(times, n=100)
    return {
        "requests": len(done),
        "rps": len(done) / seconds,
        "p50": statistics.median(times),
        "p95": cuts[94],
    }


def is_retried(row: dict) -> bool:
    """A create the client retries with the same Idempotency-Key: not an error of the run,
    unless it was the last attempt (counted by `unfinished_creates`)."""
    return row["name"] == "create referral" and row["status"] in RETRYABLE and row["retry"] < 7


def measure(host, config, seconds, directory, tag) -> dict:
    process, requests, started = run_load(host, config, seconds, directory, tag)
    process.wait(timeout=seconds + 60)
    return figures(read_requests(requests), time.time() - started)


def run_with_faults(host, config, seconds, directory, tag, schedule) -> tuple[list, list, float]:
    """Load for `seconds` while `schedule` [(at, name, action, duration, undo)] runs; returns
    the request rows, the fault windows and the start time."""
    process, requests, started = run_load(host, config, seconds, directory, tag)
    windows = []
    pending = sorted(schedule, key=lambda item: item[0])
    undo: list = []
    while process.poll() is None:
        now = time.time() - started
        while pending and pending[0][0] <= now:
            at, name, action, duration, restore = pending.pop(0)
            say(f"fault at {now:.0f} s: {name}")
            action()
            window = {"fault": name, "start": time.time(), "end": None, "at": now}
            windows.append(window)
            undo.append((at + duration, restore, window))
            undo.sort(key=lambda item: item[0])
        while undo and undo[0][0] <= now:
            _, restore, window = undo.pop(0)
            if restore is not None:
                restore()
            window["end"] = time.time()
            say(f"restored at {now:.0f} s: {window['fault']}")
        time.sleep(0.2)
    for _, restore, window in undo:
        if restore is not None:
            restore()
        window["end"] = time.time()
    return read_requests(requests), windows, started


def errors_in_windows(rows: list[dict], windows: list[dict]) -> tuple[dict, int]:
    """Errors each fault's window holds (from its start to WINDOW_GRACE after its end), and the
    errors no window holds."""
    counted = {window["fault"]: 0 for window in windows}
    outside = 0
    for row in rows:
        if not row["error"] or is_retried(row):
            continue
        holder = next(
            (
                window
                for window in windows
                if window["start"] - 0.5 <= row["t"] <= (window["end"] or row["t"]) + WINDOW_GRACE
            ),
            None,
        )
        if holder is None:
            outside += 1
        else:
            counted[holder["fault"]] += 1
    return counted, outside


# --- Checks on the database -------------------------------------------------------------------


def wait_delivered(conn, receiver, organisations, since, timeout=90) -> tuple[set, set]:
    deadline = time.monotonic() + timeout
    while True:
        events = {
            str(row[0])
            for row in conn.execute(
                "SELECT id FROM api_event WHERE organisation_id = ANY(%s) AND created >= %s",
                [organisations, since],
            )
        }
        missing = events - receiver.events()
        if not missing or time.monotonic() > deadline:
            return events, missing
        time.sleep(1)


UNDELIVERED_SQL = """
SELECT coalesce(d.status, 'no delivery'), coalesce(d.attempts, 0),
       coalesce(a.error, ''), a.status_code, count(*), min(e.created), max(e.created)
FROM api_event e
LEFT JOIN api_webhookdelivery d ON d.event_id = e.id
LEFT JOIN LATERAL (
  SELECT error, status_code FROM api_webhookdeliveryattempt
  WHERE delivery_id = d.id ORDER BY created DESC LIMIT 1
) a ON true
WHERE e.id = ANY(%s::uuid[])
GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 8
"""
PROCESS_NEWS = re.compile(
    r"Connection to broker lost|Connected to|Cannot connect|Restoring \d+|Sending due task"
    r'|"level": "(?:ERROR|CRITICAL)"'
)


def why_undelivered(conn, missing: set, logs: Path) -> list[str]:
    """What a failed delivery check needs to be understood from CI's output alone: where the
    missing events' deliveries stand, and what each Celery process last said about its broker
    and when it last finished a task."""
    lines = ["undelivered events by delivery status, attempts and last attempt:"]
    for status, attempts, error, code, count, first, last in conn.execute(
        UNDELIVERED_SQL, [list(missing)]
    ):
        lines.append(
            f"  {count:5d}  {status}, {attempts} attempt(s), last: {code or error[:60] or '-'};"
            f" events {first:%H:%M:%S}-{last:%H:%M:%S}"
        )
    for log in sorted(logs.glob("*worker*.log")) + sorted(logs.glob("beat*.log")):
        done = news = None
        counted: dict[str, int] = {}
        for line in log.read_text(errors="replace").splitlines():
            if '"Task ' in line and "succeeded" in line:
                done = line[10:29]
            found = PROCESS_NEWS.search(line)
            if found:
                counted[found.group(0)[:30]] = counted.get(found.group(0)[:30], 0) + 1
                news = line[10:29] + " " + json.loads(line).get("message", "")[:90]
        lines.append(f"  {log.stem}: last task done {done or 'never'}; {counted}")
        if news:
            lines.append(f"    last broker news {news!r}")
    return lines


# Sent by every worker as it starts too (partners/tasks.py), so it runs more often than beat
# sends it.
ALSO_SENT_ON_START = {"directory.imports_resume"}
TASK_DONE = re.compile(r"^Task (\S+)\[([0-9a-f-]+)\] succeeded")


def task_runs(logs: Path, window) -> dict[str, set[str]]:
    """Task ids each task name finished in the workers' logs within `window` (Celery logs a
    task done at DEBUG: the cluster's workers log at DEBUG)."""
    since, until = (moment.timestamp() for moment in window)
    runs: dict[str, set] = {}
    for path in logs.glob("*worker*.log"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            done = TASK_DONE.match(entry.get("message", "")) if isinstance(entry, dict) else None
            if done and since <= datetime.fromisoformat(entry["time"]).timestamp() <= until:
                runs.setdefault(done.group(1), set()).add(done.group(2))
    return runs


def scheduled_runs(conn, since, until) -> dict[str, list[tuple[int, str]]]:
    """Each job's claimed periods, with the beat that claimed each (unique per job and period
    by the table's constraint: the check is that none is missing)."""
    runs: dict[str, list] = {}
    for job, period, by in conn.execute(
        "SELECT job, period, claimed_by FROM api_scheduledrun"
        " WHERE claimed_at BETWEEN %s AND %s ORDER BY job, period",
        [since, until],
    ):
        runs.setdefault(job, []).append((period, by))
    return runs


# --- The run ----------------------------------------------------------------------------------


def token(host: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        host + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def shared_rate_limit(node_a: str, node_b: str) -> tuple[bool, int]:
    """The token endpoint's limit per client id: spent on node A, then asked on node B."""
    client = f"cluster-probe-{os.getpid()}-{time.time_ns()}"
    spent = 0
    for spent in range(1, 200):  # noqa: B007 (the count is reported)
        status = httpx.post(
            node_a + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client, "wrong"),
            timeout=30,
        ).status_code
        if status == 429:
            break
    else:
        return False, spent
    on_b = httpx.post(
        node_b + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client, "wrong"),
        timeout=30,
    )
    return on_b.status_code == 429, spent


def table(title: str, header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    out = [title, line.format(*header), line.format(*("-" * width for width in widths))]
    out += [line.format(*(str(cell) for cell in row)) for row in rows]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("CLUSTER_SECONDS", 90)))
    parser.add_argument("--baseline", type=int, default=20)
    parser.add_argument("--redis-seconds", type=int, default=40)
    args = parser.parse_args(argv)
    missing = processes.missing_tools()
    if missing:
        packages = " ".join(sorted({processes.PACKAGES[name] for name in missing}))
        say(f"missing {', '.join(missing)}: install with `sudo apt-get install -y {packages}`")
        return 2

    work = Path(tempfile.mkdtemp(prefix="srn-cluster-"))
    os.chmod(work, 0o755)
    logs = work / "logs"
    logs.mkdir()
    say(f"logs and configuration in {work}")
    stack = contextlib.ExitStack()
    results: list = []
    try:
        return run(args, work, logs, stack, results)
    finally:
        stack.close()


def run(args, work: Path, logs: Path, stack: contextlib.ExitStack, results: list) -> int:
    base = DATABASE_URL
    if base:
        name = urlsplit(base).path.lstrip("/")
        name = "srn_cluster" if name in ("", "postgres") else f"{name}_cluster"
        direct = fresh_database(base, name)
    else:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(work / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
        import pgserver

        server = pgserver.get_server(work / "pg", cleanup_mode="stop")
        stack.callback(server.cleanup)
        name = "srn_cluster"
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        direct = with_database(server.get_uri(), name)
    conn = psycopg.connect(direct, autocommit=True)
    stack.callback(conn.close)
    conn.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '10s'")
    parts = conn.info
    env_direct = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": direct,
        "VAR_DIR": str(work / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    say("migrating and seeding the demo network (direct connection)")
    manage("migrate", "--no-input", "-v", "0", env=env_direct)
    credentials = json.loads(manage("seed_demo", "--json", env=env_direct))

    bouncer = processes.pgbouncer(
        work / "pgbouncer", parts.host or "127.0.0.1", parts.port, name, parts.user
    )
    bouncer.start()
    stack.callback(bouncer.stop)
    processes.wait_port(bouncer.port)
    pooled = f"postgresql://{parts.user}@127.0.0.1:{bouncer.port}/{name}"

    vhost = f"srn-cluster-{os.getpid()}"
    amqp = processes.rabbitmq_vhost(vhost)
    stack.callback(processes.rabbitmq_vhost_delete, vhost)
    env = {
        **env_direct,
        "DATABASE_URL": pooled,
        "DATABASE_DIRECT_URL": direct,  # the HSDS import's session lock
        "DB_PREPARE_THRESHOLD": "off",
        "CELERY_BROKER_URL": amqp,
    }

    ports = {"a": free_port(), "b": free_port()}
    nodes = {key: processes.api_node(f"api {key}", port, env, logs) for key, port in ports.items()}
    celery = processes.celery_processes(env, logs, work)

    def start_everything():
        for node in nodes.values():
            node.start()
        for node_key, node in nodes.items():
            processes.wait_http(f"http://127.0.0.1:{ports[node_key]}/readyz", 90, node)
        for process in celery.values():
            process.start()

    def stop_everything():
        for process in [*celery.values(), *nodes.values()]:
            process.stop()

    stack.callback(stop_everything)
    supervisor = stack.enter_context(processes.Supervisor([*nodes.values(), *celery.values()]))
    say("starting two API nodes (PgBouncer, RabbitMQ), two workers per queue, two beats")
    rabbit_phase_started = conn.execute("SELECT now()").fetchone()[0]
    start_everything()
    balancer = processes.haproxy(work, ports)
    balancer.start()
    stack.callback(balancer.stop)
    front = f"http://127.0.0.1:{balancer.port}"
    single = f"http://127.0.0.1:{balancer.single_port}"
    processes.wait_http(front + "/readyz", 30, balancer)

    receiver = stack.enter_context(VerifyingReceiver())
    config = load.prepare(front, credentials)
    since = conn.execute("SELECT now()").fetchone()[0]
    organisations = []
    for client_id in ("demo-clinic", "demo-collective"):
        headers = {
            "Authorization": "Bearer "
            + token(front, client_id, credentials[client_id]["client_secret"])
        }
        created = httpx.post(
            front + "/api/v1/webhook-endpoints",
            json={"url": receiver.url(f"/hooks/{client_id}"), "event_types": ["*"]},
            headers=headers,
            timeout=30,
        )
        created.raise_for_status()
        receiver.secrets[f"/hooks/{client_id}"] = created.json()["secret"]
        organisations.append(credentials[client_id]["organisation_id"])

    say("a client at its rate limit on node A, then on node B")
    limited, spent = shared_rate_limit(
        f"http://127.0.0.1:{ports['a']}", f"http://127.0.0.1:{ports['b']}"
    )
    check(limited, f"rate limit shared: 429 on node A after {spent} requests, 429 on B", results)

    say(f"figures: {args.baseline} s through HAProxy on two nodes, then on one")
    two = measure(front, config, args.baseline, work, "two-nodes")
    one = measure(single, config, args.baseline, work, "one-node")

    def kill_node():
        nodes["b"].kill()

    def restore_node():
        nodes["b"].start()

    def kill_workers():
        celery["worker 1"].kill()
        celery["webhooks worker 1"].kill()

    def restore_workers():
        celery["worker 1"].start()
        celery["webhooks worker 1"].start()

    def restart_beat():
        celery["beat 1"].stop()
        celery["beat 1"].start()

    seconds = args.seconds
    schedule = [
        (seconds * 0.15, "kill -9 API node b (back after 15 s)", kill_node, 15, restore_node),
        (
            seconds * 0.45,
            "kill -9 one worker per queue (back after 8 s)",
            kill_workers,
            8,
            restore_workers,
        ),
        (seconds * 0.65, "restart beat 1", restart_beat, 0, None),
    ]
    say(f"{seconds} s of load through HAProxy on RabbitMQ, with faults")
    rabbit_started = conn.execute("SELECT now()").fetchone()[0]
    rows, windows, _ = run_with_faults(front, config, seconds, work, "rabbitmq", schedule)
    rabbit_window = (rabbit_started, conn.execute("SELECT now()").fetchone()[0])
    rabbit = figures(rows, seconds)
    events, undelivered = wait_delivered(conn, receiver, organisations, since)
    if undelivered:
        for line in why_undelivered(conn, undelivered, logs):
            say(line)
    check(not undelivered, f"RabbitMQ run: all {len(events)} events delivered", results)

    say("once more on Redis (this test's own redis-server), broker away for 10 s")
    from tests.api.webhooks.processes import Broker

    stop_everything()
    rabbit_phase = (rabbit_phase_started, conn.execute("SELECT now()").fetchone()[0])
    rabbit_runs = task_runs(logs, rabbit_phase)
    broker = Broker()
    broker.start()
    stack.callback(broker.stop)
    for process in [*nodes.values(), *celery.values()]:
        process.env = {**process.env, "CELERY_BROKER_URL": broker.url}
    start_everything()
    processes.wait_http(front + "/readyz", 30, balancer)
    redis_schedule = [
        (10, "broker away (Redis, kill -9; back after 10 s)", broker.stop, 10, broker.start)
    ]
    redis_rows, redis_windows, _ = run_with_faults(
        front, config, args.redis_seconds, work, "redis", redis_schedule
    )
    redis = figures(redis_rows, args.redis_seconds)
    rows += redis_rows
    windows += redis_windows
    events, undelivered = wait_delivered(conn, receiver, organisations, since)

    # --- What must hold -----------------------------------------------------------------------
    if undelivered:
        for line in why_undelivered(conn, undelivered, logs):
            say(line)
    check(
        not undelivered,
        f"every outbox event delivered and verified: {len(events) - len(undelivered)}"
        f" of {len(events)} ({receiver.deliveries} deliveries, {receiver.refused} refused)",
        results,
    )
    per_id = {webhook_id: ids for webhook_id, ids in receiver.by_webhook_id.items()}
    dedup = {next(iter(ids)) for ids in per_id.values() if len(ids) == 1}
    check(
        all(len(ids) == 1 for ids in per_id.values())
        and len(per_id) == len(receiver.events())
        and dedup >= events,
        f"de-duplicated by webhook-id: {len(per_id)} ids for {len(receiver.events())} events,"
        f" {receiver.deliveries - len(per_id)} redeliveries",
        results,
    )
    created = [json.loads(line) for line in (work / "created.jsonl").read_text().splitlines()]
    ids_by_key: dict[str, set] = {}
    for entry in created:
        ids_by_key.setdefault(entry["key"], set()).add(entry["id"])
    ids = {entry["id"] for entry in created}
    stored = conn.execute(
        "SELECT count(*) FROM referrals_referral WHERE id = ANY(%s::uuid[])", [list(ids)]
    ).fetchone()[0]
    sender = credentials["demo-collective"]["organisation_id"]
    made = conn.execute(
        "SELECT count(*) FROM referrals_referral WHERE sender_id = %s AND created >= %s",
        [sender, since],
    ).fetchone()[0]
    check(
        stored == len(ids) == made and all(len(v) == 1 for v in ids_by_key.values()),
        f"every 201 referral exists exactly once: {len(ids)} answered 201, {stored} stored,"
        f" {made} created by the sender, {len(ids_by_key)} keys",
        results,
    )
    audit = subprocess.run(
        [PYTHON, "manage.py", "verify_audit"],
        cwd=ROOT,
        env=env_direct,
        capture_output=True,
        text=True,
    )
    check(
        audit.returncode == 0,
        "verify_audit: " + (audit.stdout + audit.stderr).strip()[-200:],
        results,
    )

    from django.conf import settings

    runs = scheduled_runs(conn, *rabbit_window)
    claims = scheduled_runs(conn, *rabbit_phase)
    job_lines = []
    once = True
    for job, entry in settings.CELERY_BEAT_SCHEDULE.items():
        every = entry["schedule"]
        every = every.total_seconds() if hasattr(every, "total_seconds") else float(every)
        if every > seconds / 3:
            continue  # too few periods in the run to say anything
        periods = [period for period, _ in runs.get(job, [])]
        beats = {by for _, by in runs.get(job, [])}
        gaps = {b - a for a, b in itertools.pairwise(periods)}
        # Runs: task ids a worker finished. Beat's last sends before the workers stopped may
        # be left unrun; never more runs than claimed periods.
        sent = len(claims.get(job, []))
        ran = len(rabbit_runs.get(entry["task"], set()))
        once = once and len(periods) > 1 and gaps == {int(every)}
        line = f"{job}: {len(periods)} periods in the fault run, each sent once, by {len(beats)}"
        line += f" beats; {sent} sent and {ran} run in the whole RabbitMQ phase"
        if entry["task"] in ALSO_SENT_ON_START:
            line += " (also sent by each worker as it starts)"
        else:
            once = once and sent - 2 <= ran <= sent
        job_lines.append(line)
    check(
        once,
        "each scheduled job ran once per period, two beats up: " + "; ".join(job_lines),
        results,
    )

    say("the audit chain's lock: appends per second from 1, 4 and 16 writers")
    measured = subprocess.run(
        [PYTHON, "-m", "tests.cluster.audit_lock"],
        cwd=ROOT,
        env={**env, "CELERY_BROKER_URL": "memory://"},
        capture_output=True,
        text=True,
    )
    lock_rows = (
        json.loads(measured.stdout.strip().splitlines()[-1]) if measured.returncode == 0 else []
    )
    check(
        measured.returncode == 0,
        "audit lock measured" + (f": {measured.stderr[-300:]}" if measured.returncode else ""),
        results,
    )

    counted, outside = errors_in_windows(rows, windows)
    unfinished = sum(
        1 for row in rows if row["name"] == "create referral" and row["error"] and row["retry"] >= 7
    )
    retried = sum(1 for row in rows if is_retried(row) and row["error"])
    check(
        outside == 0 and unfinished == 0,
        f"errors only in fault windows: {sum(counted.values())} inside, {outside} outside;"
        f" {retried} create attempts retried by the client, {unfinished} gave up",
        results,
    )

    fault_rows = [
        [
            window["fault"],
            f"{window['at']:.0f}",
            f"{(window['end'] - window['start']):.0f}",
            counted[window["fault"]],
        ]
        for window in windows
    ]
    print()
    print(table("Faults", ["fault", "at (s)", "lasted (s)", "errors (not retried)"], fault_rows))
    ratio = two["rps"] / one["rps"] if one["rps"] else 0.0
    figure_rows = [
        [label, f"{data['rps']:.1f}", f"{data['p50']:.0f}", f"{data['p95']:.0f}", data["requests"]]
        for label, data in (
            (f"two nodes via HAProxy ({args.baseline} s)", two),
            (f"one node via HAProxy ({args.baseline} s)", one),
            (f"two nodes, RabbitMQ, faults ({args.seconds} s)", rabbit),
            (f"two nodes, Redis, broker away ({args.redis_seconds} s)", redis),
        )
    ]
    print()
    print(
        table(
            f"Figures (Locust, {USERS} users)",
            ["run", "req/s", "p50 ms", "p95 ms", "requests"],
            figure_rows,
        )
    )
    print(
        f"\nScaling ratio two nodes / one node: {ratio:.2f}. On this {os.cpu_count()}-core machine"
        " both nodes, the workers, PgBouncer, HAProxy, PostgreSQL and Locust share the same"
        " cores: the ratio measures the cost of the second node and the balancer, not a gain."
    )
    print()
    print(
        table(
            "The audit chain's single lock (through PgBouncer, a thread and connection each)",
            ["writers", "append", "appends/s", "p50 ms", "p95 ms"],
            [
                [
                    row["threads"],
                    "inside a write's transaction" if row["in_transaction"] else "standalone",
                    row["appends_per_s"],
                    row["p50_ms"],
                    row["p95_ms"],
                ]
                for row in lock_rows
            ],
        )
    )
    restarted = [
        [process.name, process.restarts] for process in supervisor.processes if process.restarts
    ]
    print()
    print(
        table(
            "Restarted by the supervisor after exiting on their own",
            ["process", "restarts"],
            restarted or [["(none)", 0]],
        )
    )
    print()
    print("Checks")
    for what, ok in results:
        print(f"  {'yes' if ok else 'NO '}  {what}")
    failed = [what for what, ok in results if not ok]
    if failed:
        say(f"FAILED: {len(failed)} check(s); logs in {work}")
        return 1
    say("all checks passed")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    os.environ.setdefault("DATABASE_URL", "postgres:///unused")
    import django

    django.setup()
    sys.exit(main(sys.argv[1:]))
