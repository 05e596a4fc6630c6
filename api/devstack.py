"""What `make run` and `make test` do after the virtualenv exists.

    python -m api.devstack run    # database, migrations, demo seed, gunicorn + Celery worker/beat
    python -m api.devstack test   # database, then the whole pytest suite
    python -m api.devstack exec CMD...  # any command with DATABASE_URL set (benchmarks, tools)

With DATABASE_URL unset, an embedded PostgreSQL (the `pgserver` wheel) is started with its data
under var/pgdata, kept between runs. With CELERY_BROKER_URL unset, Celery uses kombu's
filesystem transport under var/broker, so nothing else has to be installed.
"""

import json
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


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def database_url() -> tuple[str, object | None]:
    """The DATABASE_URL to use, starting the embedded server when none is given."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    os.environ.setdefault("XDG_RUNTIME_DIR", str(VAR / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    import pgserver

    say(f"starting embedded PostgreSQL in {VAR / 'pgdata'}")
    server = pgserver.get_server(VAR / "pgdata", cleanup_mode="stop")
    return server.get_uri(), server


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

    def spawn(*args: str) -> subprocess.Popen:
        return subprocess.Popen([PYTHON, "-m", *args], cwd=ROOT, env=env)

    celery = ("celery", "-A", "api")
    quiet = ("--loglevel", "INFO", "--without-mingle", "--without-gossip")
    # No gunicorn access log: paths can hold claim codes. The API logs route patterns instead.
    processes = [
        spawn(
            "gunicorn",
            "api.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
        ),
        # Jobs (expiry, retention) on the default queue; webhook deliveries on their own queue
        # with threads, so a slow receiver never holds up anything else.
        spawn(*celery, "worker", "-Q", "celery", "--concurrency", "2", *quiet),
        spawn(
            *celery,
            "worker",
            "-Q",
            "webhooks",
            "--pool",
            "threads",
            "--concurrency",
            "16",
            "-n",
            "webhooks@%h",
            *quiet,
        ),
        spawn(
            *celery, "beat", "--loglevel", "INFO", "--schedule", str(VAR / "celerybeat-schedule")
        ),
    ]

    def stop(*_):
        say("stopping")
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
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
  Docs (Swagger UI): {base}/api/docs/
  Redoc:             {base}/api/redoc/
  OpenAPI document:  {base}/api/schema/
  Token endpoint:    {base}/oauth/token/  (client credentials grant)

Demo organisations (client_id / client_secret):""",
        flush=True,
    )
    for client_id, entry in credentials.items():
        print(f"  {entry['organisation']:<32} {client_id:<22} {entry['client_secret']}")
    print(
        f"""
Try:  curl -s -u demo-clinic:{credentials["demo-clinic"]["client_secret"]} \\
        -d grant_type=client_credentials {base}/oauth/token/
Press Ctrl-C to stop everything this started.""",
        flush=True,
    )
    while True:
        for process in processes:
            if process.poll() is not None:
                say(f"{' '.join(process.args[2:5])} exited with {process.returncode}")
                stop()
        time.sleep(1)


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
