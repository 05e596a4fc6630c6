"""What `make run` and `make test` do after the virtualenv exists.

    python -m api.devstack run    # database, migrations, demo seed, gunicorn + Celery worker/beat
    python -m api.devstack test   # database, then the whole pytest suite
    python -m api.devstack exec CMD...  # any command with DATABASE_URL set (benchmarks, tools)

With DATABASE_URL unset, an embedded PostgreSQL (the `pgserver` wheel) is started with its data
under var/pgdata, kept between runs. `manage.py` under the dev settings joins the same server
(`use_embedded_database`), starting it for the one command when `make run` is not running. With
CELERY_BROKER_URL unset, Celery uses kombu's filesystem transport under var/broker, so nothing
else has to be installed.

`run` supervises what it started: a process that exits (a worker that crashed when the broker went
away, a gunicorn master killed by hand) is started again after a pause that grows with each quick
exit, so the stack heals itself. Ctrl-C stops everything. Production uses a real supervisor with
the same policy (docs/DEPLOY.md).
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
PYTHON = sys.executable


# Pauses before each restart of a process that keeps exiting; one that ran for STEADY_SECONDS
# counts as healthy again and is next restarted after the first pause.
RESTART_PAUSES = (1, 2, 4, 8, 16, 30)
STEADY_SECONDS = 60


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def stack_logger() -> logging.Logger:
    """After the banner `make run` writes log lines only: restarts are logged like the API logs."""
    from api.logging import JSONFormatter, RequestIDFilter

    logger = logging.getLogger("api.devstack")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JSONFormatter())
        handler.addFilter(RequestIDFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class Supervised:
    """One process of the stack, started again whenever it exits, after a growing pause."""

    def __init__(self, name: str, command: list[str], env: dict, log=None):
        self.name, self.command, self.env = name, command, env
        self.log = log or stack_logger()
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.quick_exits = 0
        self.restart_at: float | None = None
        self.restarts = 0

    def start(self) -> "Supervised":
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env)
        self.started = time.monotonic()
        return self

    def tend(self, now: float) -> None:
        """Called about once a second: notices an exit, schedules the restart, performs it."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.restarts += 1
                self.start()
                self.log.info("%s started again (pid %s)", self.name, self.process.pid)
            return
        if self.process.poll() is None:
            return
        if now - self.started >= STEADY_SECONDS:
            self.quick_exits = 0
        pause = RESTART_PAUSES[min(self.quick_exits, len(RESTART_PAUSES) - 1)]
        self.quick_exits += 1
        self.restart_at = now + pause
        self.log.warning(
            "%s exited with %s; starting it again in %s s",
            self.name,
            self.process.returncode,
            pause,
        )

    def stop(self) -> None:
        self.restart_at = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def embedded_database(note=say) -> tuple[str, object]:
    """The embedded server under var/pgdata: joined when it runs (`make run`'s), else started.
    pgserver counts the processes that hold it, in var/pgdata, and stops it when the last one
    cleans up or exits, so a command never stops the server from under `make run`."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(VAR / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    import pgserver
    from pgserver.utils import PostmasterInfo

    pgdata = VAR / "pgdata"
    running = pgdata.exists() and PostmasterInfo.read_from_pgdata(pgdata)
    if not (running and running.is_running()):
        note(f"starting the embedded PostgreSQL in {pgdata}")
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return server.get_uri(), server


def database_url() -> tuple[str, object | None]:
    """The DATABASE_URL to use, with the embedded server when none is given."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    return embedded_database()


def use_embedded_database(argv: list[str]) -> None:
    """For manage.py: the README's commands (dev settings, DATABASE_URL unset) work on the
    database `make run` serves. Other settings, from the environment or `--settings`, never get
    a server started behind their back: production still refuses to start without DATABASE_URL."""
    from django.core.management.base import CommandParser

    parser = CommandParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings")
    options, _ = parser.parse_known_args(argv[2:])
    settings = options.settings or os.environ["DJANGO_SETTINGS_MODULE"]
    if os.environ.get("DATABASE_URL") or settings != "api.settings.dev":
        return
    url, _server = embedded_database(note=lambda message: print(f"==> {message}", file=sys.stderr))
    os.environ["DATABASE_URL"] = url


def prepare_broker(env: dict) -> None:
    if not env.get("CELERY_BROKER_URL"):
        for folder in ("out", "processed", "control"):
            (VAR / "broker" / folder).mkdir(parents=True, exist_ok=True)


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=args[0] == "seed_demo",
        text=True,
    )


def wait_ready(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def gunicorn_command(port, workers) -> list[str]:
    """The API server as `make run` starts it (tests/api/test_hostile_inputs.py runs the same).
    No access log: paths can hold claim codes. The API logs route patterns instead. The longest
    request line gunicorn reads (twice its default), so that every query the schema allows
    fits; a longer one is a 414 problem (api.server)."""
    bind = f"127.0.0.1:{port}"
    return [
        *(PYTHON, "-m", "gunicorn", "api.wsgi", "--bind", bind, "--workers", str(workers)),
        *("--logger-class", "api.logging.GunicornLogger"),
        *("--worker-class", "api.server.ProblemWorker", "--limit-request-line", "8190"),
    ]


def celery_command(*args: str) -> list[str]:
    """Every process logs one JSON object a line (settings.LOGGING; gunicorn through
    api.logging.GunicornLogger, with no access log). Celery's start-up banners are off (-q): they
    would land in the middle of ours."""
    return [PYTHON, "-m", "celery", "-A", "api", "-q", *args]


def worker_command(queue: str, name: str | None = None) -> list[str]:
    """Jobs (expiry, retention) on the default queue `celery`; webhook deliveries on their own
    queue with threads, so a slow receiver never holds up anything else."""
    pool = ("--pool", "threads", "--concurrency", "16") if queue == "webhooks" else ("-c", "2")
    named = ("-n", name) if name else ()
    quiet = ("--without-mingle", "--without-gossip")
    return celery_command("worker", "-Q", queue, *pool, *named, *quiet)


def process_commands(port, web_workers) -> dict[str, list[str]]:
    """The process types of a deployment (docs/DEPLOY.md) as `make run` starts them."""
    return {
        "web": gunicorn_command(port, web_workers),
        "worker": worker_command("celery"),
        "webhooks worker": worker_command("webhooks", "webhooks@%h"),
        "beat": celery_command("beat", "--schedule", str(VAR / "celerybeat-schedule")),
    }


def run() -> int:
    started = time.monotonic()
    url, server = database_url()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "api.settings.dev"}
    env.setdefault("ALLOW_LOOPBACK_WEBHOOKS", "1")
    prepare_broker(env)
    say("applying migrations")
    manage("migrate", "--no-input", "-v", "0", env=env)
    say("seeding the demo network")
    credentials = json.loads(manage("seed_demo", "--json", env=env).stdout)
    port = env.get("PORT", "8000")

    processes = [
        Supervised(name, command, env)
        for name, command in process_commands(port, env.get("WEB_CONCURRENCY", "2")).items()
    ]
    for process in processes:
        process.start()

    def stop(*_):
        say("stopping")
        for process in processes:
            process.stop()
        for process in processes:
            process.wait(timeout=10)
        if server is not None:
            server.cleanup()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    base = f"http://127.0.0.1:{port}"
    if not wait_ready(base + "/readyz"):
        say("the API did not become ready within 60 s")
        stop()
    print(
        f"""
Solidarity Referral Network API is ready ({time.monotonic() - started:.1f} s).
  Docs (Swagger UI): {base}/api/docs
  Redoc:             {base}/api/redoc
  OpenAPI document:  {base}/api/schema
  Token endpoint:    {base}/oauth/token  (client credentials grant)

Demo organisations (client_id / client_secret):""",
        flush=True,
    )
    for client_id, entry in credentials.items():
        print(f"  {entry['organisation']:<32} {client_id:<22} {entry['client_secret']}")
    print(
        f"""
Try:  curl -s -u demo-clinic:{credentials["demo-clinic"]["client_secret"]} \\
        -d grant_type=client_credentials {base}/oauth/token
Press Ctrl-C to stop everything this started.""",
        flush=True,
    )
    while True:
        time.sleep(1)
        for process in processes:
            process.tend(time.monotonic())


def execute(command: list[str], settings: str) -> int:
    """Run a command with DATABASE_URL set, stopping the embedded server afterwards."""
    url, server = database_url()
    env = {**os.environ, "DATABASE_URL": url}
    env.setdefault("DJANGO_SETTINGS_MODULE", settings)
    prepare_broker(env)
    try:
        return subprocess.call(command, cwd=ROOT, env=env)
    finally:
        if server is not None:
            server.cleanup()


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        return run()
    if argv[:1] == ["test"]:
        return execute([PYTHON, "-m", "pytest", *argv[1:]], "api.settings.test")
    if argv[:1] == ["exec"] and len(argv) > 1:
        return execute(argv[1:], "api.settings.dev")
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
