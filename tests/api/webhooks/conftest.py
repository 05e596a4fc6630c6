"""Fixtures with real components for the webhook tests: our own Redis broker and a Celery
worker process on the test database."""

import subprocess

import pytest

from api.celery import app as celery_app
from api.webhooks import services
from tests.api.webhooks.processes import Broker, start_worker, wait_ready
from tests.conftest import database_url


@pytest.fixture
def broker(monkeypatch):
    """Our own Redis, and this test process publishing to it (the test settings' broker is
    in-memory; Celery reads CELERY_BROKER_URL from the environment before its own config, and
    another test may have pinned broker_write_url)."""
    running = Broker()
    running.start()
    monkeypatch.setenv("CELERY_BROKER_URL", running.url)
    monkeypatch.setattr(celery_app.conf, "broker_url", running.url)
    celery_app.conf.broker_write_url = None
    services._broker.__dict__.clear()
    yield running
    connection = getattr(services._broker, "connection", None)
    if connection is not None:
        connection.release()
    services._broker.__dict__.clear()
    running.stop()


@pytest.fixture
def worker(broker, transactional_db, tmp_path):
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    process = start_worker(broker.url, database_url(), log=log)
    wait_ready(process, tmp_path / "worker.log")
    yield process
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
    # Captured by pytest and shown only when the test fails.
    print((tmp_path / "worker.log").read_text())
