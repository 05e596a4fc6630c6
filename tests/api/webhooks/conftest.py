"""A real Celery worker process on the test database for the webhook tests, serving the broker
of tests/conftest.py's `broker` fixture."""

import pytest

from tests.api.webhooks.processes import start_worker, wait_ready
from tests.conftest import database_url
from tests.servers import stop


@pytest.fixture
def worker(broker, transactional_db, tmp_path):
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    process = start_worker(broker.url, database_url(), log=log)
    wait_ready(process, tmp_path / "worker.log")
    yield process
    stop(process)
    log.close()
    # Captured by pytest and shown only when the test fails.
    print((tmp_path / "worker.log").read_text())
