"""Real processes for webhook tests and the benchmark: a Redis broker of our own on a free
port (so an outage can be staged without touching the machine's Redis) and a Celery worker."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import ROOT, free_port, redis_command, redis_pongs, wait_until


class Broker:
    """A redis-server we own: `stop()` and `start()` simulate an outage on the same port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            redis_command(self.port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        process = self.process
        wait_until(
            redis_pongs(self.port),
            "redis-server answering PING",
            10,
            lambda: process.poll() is None,
        )

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def start_worker(
    broker_url: str,
    database_url: str,
    *,
    settings="api.settings.test",
    concurrency=16,
    log=None,
    queues="webhooks",
):
    """`celery -A api worker` on the webhooks queue (or `queues`, comma-separated, for the
    scheduled jobs too). Threads, because attempts wait on the network, not the CPU."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "api", "worker", "-Q", queues,
        "--pool", "threads", "-c", str(concurrency), "-l", "info", "--without-gossip",
        "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.STDOUT,
    )


def wait_ready(process, log_path: Path, timeout: float = 30.0) -> None:
    """Until the worker consumes; timings measured before that would measure its start-up."""
    deadline = time.time() + timeout
    while b"ready." not in log_path.read_bytes():
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError("the worker did not start:\n" + log_path.read_text())
        time.sleep(0.1)
