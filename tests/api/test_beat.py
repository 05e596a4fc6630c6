"""Two beats never double a job (issue 17): real `celery beat` processes on the test database,
publishing to a Redis broker of the test's own with no worker, so every message either sent
stays in the queue to be counted."""

import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis

from api.celery import Slotted, app, period_of
from api.models import ScheduledRun
from tests.api.webhooks.processes import Broker
from tests.conftest import database_url
from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)
SWEEP = "webhooks-sweep"  # the shortest interval in the schedule


def start_beat(broker_url: str, schedule: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "celery", "-A", "api", "beat", "--schedule", schedule]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def sent_tasks(broker_url: str) -> Counter:
    """Task names of the messages waiting in every queue of the broker."""
    client = redis.Redis.from_url(broker_url)
    counted = Counter()
    for key in client.keys("*"):
        if client.type(key) == b"list":
            for message in client.lrange(key, 0, -1):
                counted[json.loads(message)["headers"]["task"]] += 1
    return counted


def test_two_beats_send_each_job_once_per_period(tmp_path):
    broker = Broker()
    broker.start()
    logs = [open(tmp_path / f"beat-{n}.log", "wb") for n in (1, 2)]  # noqa: SIM115
    beats = [
        start_beat(broker.url, str(tmp_path / f"schedule-{n}"), log)
        for n, log in zip((1, 2), logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 90
        while ScheduledRun.objects.filter(job=SWEEP).count() < 4:
            assert time.monotonic() < deadline, [p.read_text() for p in tmp_path.glob("*.log")]
            assert all(beat.poll() is None for beat in beats)
            time.sleep(0.5)
    finally:
        for beat in beats:
            beat.terminate()
        for beat in beats:
            beat.wait(15)
        for log in logs:
            log.close()
    sent = sent_tasks(broker.url)
    broker.stop()

    runs = list(ScheduledRun.objects.filter(job=SWEEP).order_by("period"))
    task = app.conf.beat_schedule[SWEEP]["task"]
    # Both beats were due in every slot; each slot's job was sent once, by whichever claimed it.
    assert sent[task] == len(runs), (sent, [(r.period, r.claimed_by) for r in runs])
    every = int(app.conf.beat_schedule[SWEEP]["schedule"])
    periods = [run.period for run in runs]
    assert all(b - a == every for a, b in itertools.pairwise(periods)), periods


def test_an_interval_is_due_once_per_slot_counted_from_the_epoch():
    start = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    clock = {"now": start + timedelta(seconds=7)}
    slotted = Slotted(timedelta(seconds=5), nowfun=lambda: clock["now"], app=app)
    # Last run in the previous slot: due now, next slot starts in 3 s.
    due, wait = slotted.is_due(start + timedelta(seconds=4))
    assert (due, round(wait, 3)) == (True, 3.0)
    # Already run in this slot (by this beat): not due until the next one.
    due, wait = slotted.is_due(start + timedelta(seconds=5, milliseconds=1))
    assert (due, round(wait, 3)) == (False, 3.0)
    entry = type("Entry", (), {"schedule": slotted})
    assert period_of(entry, clock["now"]) == int((start + timedelta(seconds=5)).timestamp())


def test_a_period_is_claimed_once_and_claims_older_than_a_day_go():
    from api.celery import claim_run

    assert claim_run("job", 1_000_000, "beat-a:1")
    assert not claim_run("job", 1_000_000, "beat-b:2")
    assert claim_run("other job", 1_000_000, "beat-b:2")  # periods are per job
    assert claim_run("job", 1_000_000 + 86_400 + 5, "beat-b:2")
    left = ScheduledRun.objects.order_by("job", "period").values_list("job", "period", "claimed_by")
    assert list(left) == [
        ("job", 1_086_405, "beat-b:2"),
        ("other job", 1_000_000, "beat-b:2"),
    ]
