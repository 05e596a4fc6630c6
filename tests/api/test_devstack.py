"""What a newcomer meets: `make run`'s stack (the same processes, through `api.devstack run`, with
DATABASE_URL unset: embedded PostgreSQL, filesystem broker) and the README's `manage.py` commands
run exactly as the README writes them, while the stack runs and after it stopped.

The stack's output stays readable: after the banner only JSON log lines, and none of the routine
lines Celery writes per task (the webhook sweeper runs every few seconds)."""

import json
import logging
import os
import re
import secrets
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.api import readme
from tests.api.makerun import MakeRun
from tests.referral_bodies import minimal_referral
from tests.servers import free_port, run_python

ROOT = readme.ROOT
LOG_FIELDS = {"time", "level", "logger", "message", "request_id"}
ROUTINE = re.compile(r"Sending due task|Task \S+\[\S+\] (received|succeeded)")


def is_log_line(line: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.keys() >= LOG_FIELDS


def postmaster_running(var_dir: Path) -> bool:
    pid_file = var_dir / "pgdata" / "postmaster.pid"
    return pid_file.exists() and Path(f"/proc/{pid_file.read_text().split()[0]}").exists()


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="module")
def stack(var_dir):
    env = readme.newcomer_env(VAR_DIR=str(var_dir), PORT=str(free_port()))
    running = MakeRun(
        [sys.executable, "-m", "api.devstack", "run"],
        cwd=ROOT,
        env=env,
        log=var_dir / "make-run.log",
    )
    try:
        running.wait_for_banner(timeout=300)
        yield running
    finally:
        running.interrupt()


def onboard(var_dir: Path, line: str | None = None) -> dict:
    result = readme.run(
        line or readme.command("manage.py onboard_partner"),
        cwd=ROOT,
        env=readme.newcomer_env(VAR_DIR=str(var_dir)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)  # the JSON object alone: notes go to stderr


def help_line() -> str:
    onboarding = readme.command("manage.py onboard_partner")
    return onboarding[: onboarding.index("onboard_partner")] + "onboard_partner --help"


def test_the_readme_commands_work_while_make_run_runs(stack, var_dir):
    """The quick start as written (onboarding with manage.py, the token, the calls): the
    organisation manage.py created is the one the running API knows."""
    lines = readme.quick_start(readme.read())
    followed = readme.follow(lines, cwd=ROOT, base_url=stack.base_url, VAR_DIR=str(var_dir))
    assert any("/api/v1/me" in line for line in followed["ran"])

    shown = readme.run(help_line(), cwd=ROOT, env=readme.newcomer_env(VAR_DIR=str(var_dir)))
    assert shown.returncode == 0, shown.stderr
    assert "--name" in shown.stdout and "--kind" in shown.stdout

    # The commands joined make run's server and left it running when they exited.
    with urllib.request.urlopen(stack.base_url + "/readyz", timeout=10) as response:
        assert response.status == 200


def test_make_run_output_is_json_log_lines_without_routine_ones(stack):
    time.sleep(max(0.0, stack.banner_seen + 20 - time.monotonic()))
    # Still running, and none of its processes had to be started again (the supervisor logs
    # each exit), beat included, which sends the webhook sweep every few seconds.
    assert stack.process.poll() is None, stack.output()
    assert not [line for line in stack.lines if "exited with" in line], stack.output()
    window = stack.after_banner()
    assert window, "nothing was logged after the banner: the requests above log one line each"
    # Before the banner, devstack's own steps (`==> …`) and log lines; after it, log lines only.
    not_json = [line for line in stack.before_banner() if line and not is_log_line(line)]
    assert all(line.startswith("==> ") for line in not_json), not_json
    assert all(is_log_line(line) for line in window), window
    entries = [json.loads(line) for line in window]
    routine = [entry for entry in entries if ROUTINE.search(entry["message"])]
    assert not routine, routine
    assert {entry["level"] for entry in entries} <= {"INFO", "WARNING", "ERROR"}, entries


def test_manage_py_starts_the_embedded_server_for_a_command_when_none_runs(stack, var_dir):
    assert stack.interrupt() == 0, stack.output()[-3000:]
    assert not postmaster_running(var_dir)

    shown = readme.run(help_line(), cwd=ROOT, env=readme.newcomer_env(VAR_DIR=str(var_dir)))
    assert shown.returncode == 0, shown.stderr
    credentials = onboard(var_dir)
    assert credentials["client_secret"]
    # The same database `make run` filled: its demo clients are there.
    rotated = onboard(
        var_dir, ".venv/bin/python manage.py onboard_partner --rotate-secret demo-clinic --json"
    )
    assert rotated["client_id"] == "demo-clinic"
    # Started for each command and stopped again when it exited.
    assert not postmaster_running(var_dir)


@pytest.mark.parametrize(
    ("settings_env", "settings_option"),
    [({"DJANGO_SETTINGS_MODULE": "api.settings.production"}, []),
     ({}, ["--settings", "api.settings.production"]),
     ({}, ["--settings=api.settings.production"])],
)  # fmt: skip
def test_production_settings_never_start_an_embedded_server(
    tmp_path, settings_env, settings_option
):
    env = readme.newcomer_env(
        VAR_DIR=str(tmp_path),
        SECRET_KEY=secrets.token_urlsafe(64),
        REFERRAL_KEKS="k1:" + "A" * 43 + "=",
        **settings_env,
    )
    result = run_python("manage.py", "check", *settings_option, env=env)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "pgdata").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("celery.app.trace", "Task webhooks.sweep[1f] succeeded in 0.01s: None"),
        ("celery.worker.strategy", "Task webhooks.sweep[1f] received"),
        ("celery.beat", "Scheduler: Sending due task webhooks-sweep (webhooks.sweep)"),
    ],
)
def test_routine_task_lines_show_only_at_debug(caplog, name, message):
    logger = logging.getLogger(name)
    caplog.set_level(logging.INFO)
    logger.info(message)
    logger.error("Task webhooks.sweep[1f] raised unexpected: OperationalError()")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "Task webhooks.sweep[1f] raised unexpected: OperationalError()")
    ]
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    logger.info(message)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("DEBUG", message)]


def referral_body(config: dict) -> dict:
    """A referral from the demo collective to the clinic, as tests/bench/load.py sends it."""
    return minimal_referral(
        receiver_id=config["receiver_id"], service_id=config["services"][0], name="Outage"
    )


def banner_credentials(stack: MakeRun) -> dict:
    """The demo clients as the banner lists them (organisation, client_id, secret), with each
    one's organisation id as /api/v1/me names it."""
    import httpx

    from tests.bench.harness import get_token

    credentials = {}
    for line in stack.banner():
        words = line.split()
        if len(words) >= 3 and words[-2].startswith("demo-") and ":" not in words[-2]:
            client_id, secret = words[-2], words[-1]
            me = httpx.get(
                stack.base_url + "/api/v1/me",
                headers={"Authorization": f"Bearer {get_token(stack.base_url, client_id, secret)}"},
                timeout=30,
            ).raise_for_status()
            credentials[client_id] = {
                "client_secret": secret,
                "organisation_id": me.json()["organisation"]["id"],
            }
    return credentials


def test_make_run_heals_after_the_broker_goes_away_and_delivers_every_event(tmp_path):
    """Issue 17: `make run` on a Redis broker of the test's own; the broker is killed (-9) while
    referrals are created, then started again on the same port. Whatever the workers do meanwhile
    (kombu's redis transport can crash one), the stack supervises them: every event is delivered
    and verifies, with no manual step, and the stack is still the one that was started."""
    import httpx
    from standardwebhooks import Webhook

    from tests.api.webhooks.processes import Broker
    from tests.api.webhooks.receiver import Receiver
    from tests.bench import load

    broker = Broker()
    broker.start()
    env = readme.newcomer_env(
        VAR_DIR=str(tmp_path), PORT=str(free_port()), CELERY_BROKER_URL=broker.url
    )
    running = MakeRun(
        [sys.executable, "-m", "api.devstack", "run"], cwd=ROOT, env=env, log=tmp_path / "run.log"
    )
    try:
        running.wait_for_banner(timeout=300)
        base = running.base_url
        credentials = banner_credentials(running)
        assert {"demo-clinic", "demo-collective"} <= credentials.keys(), running.banner()
        with Receiver() as receiver:
            clinic = httpx.Client(base_url=base, timeout=30)
            config = load.prepare(base, credentials)
            clinic.headers["Authorization"] = f"Bearer {config['receiver_token']}"
            endpoint = clinic.post(
                "/api/v1/webhook-endpoints",
                json={"url": receiver.url, "event_types": ["referral.received"]},
            )
            assert endpoint.status_code == 201, endpoint.text
            verifier = Webhook(endpoint.json()["secret"])
            sender = httpx.Client(
                base_url=base,
                timeout=30,
                headers={"Authorization": f"Bearer {config['sender_token']}"},
            )

            def refer() -> str:
                created = sender.post(
                    "/api/v1/referrals",
                    json=referral_body(config),
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                assert created.status_code == 201, created.text
                return created.json()["id"]

            referrals = [refer() for _ in range(3)]
            receiver.wait_for(3, timeout=60)

            broker.stop()
            referrals += [refer() for _ in range(5)]  # published into nothing: the outbox keeps
            time.sleep(5)  # the workers meet the dead broker
            broker.start()

            deadline = time.monotonic() + 120
            delivered: dict[str, str] = {}
            while set(delivered.values()) < set(referrals) and time.monotonic() < deadline:
                with receiver.lock:
                    received = list(receiver.received)
                for request in received:
                    verifier.verify(request.body, request.headers)
                    body = json.loads(request.body)
                    delivered[request.headers["webhook-id"]] = body["data"]["referral_id"]
                time.sleep(1)
            assert set(delivered.values()) == set(referrals), (
                sorted(set(referrals) - set(delivered.values())),
                running.output()[-4000:],
            )
            # One webhook-id per event: redeliveries repeat the id, never invent another.
            assert len(delivered) == len(referrals)
        assert running.process.poll() is None, running.output()[-4000:]
    finally:
        running.interrupt()
        broker.stop()


def test_a_process_that_keeps_exiting_is_restarted_after_growing_pauses_reset_when_steady(caplog):
    from api import devstack

    supervised = devstack.Supervised(
        "quitter", [sys.executable, "-c", "raise SystemExit(3)"], env=dict(os.environ)
    )
    supervised.log = logging.getLogger("tests.devstack")
    caplog.set_level(logging.INFO, logger="tests.devstack")
    supervised.start()
    pauses = []
    for _ in range(4):
        supervised.process.wait(timeout=30)
        supervised.tend(now := time.monotonic())
        pauses.append(round(supervised.restart_at - now))
        supervised.tend(supervised.restart_at)  # the pause is over: started again
        assert supervised.restart_at is None
    assert pauses == list(devstack.RESTART_PAUSES[:4])
    assert supervised.restarts == 4
    assert "quitter exited with 3; starting it again in 1 s" in caplog.messages

    # One that ran for a while before exiting is restarted after the first pause again.
    supervised.process.wait(timeout=30)
    supervised.started -= devstack.STEADY_SECONDS
    supervised.tend(now := time.monotonic())
    assert round(supervised.restart_at - now) == devstack.RESTART_PAUSES[0]
    supervised.stop()
    assert supervised.restart_at is None
