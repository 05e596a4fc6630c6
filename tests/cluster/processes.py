"""The cluster's processes: the reference for docs/DEPLOY.md. The API and Celery commands are
`make run`'s own (api/devstack.py); HAProxy and PgBouncer come from Debian's packages and get
the configuration written here. Each process runs in a session of its own, so `kill -9` of a
node takes its master and workers together, as losing a machine would."""

import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from api import devstack
from tests import servers
from tests.servers import ROOT, free_port

PACKAGES = {"haproxy": "haproxy", "pgbouncer": "pgbouncer", "rabbitmqctl": "rabbitmq-server"}


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


def missing_tools() -> list[str]:
    return [name for name in PACKAGES if _which(name) is None]


def tool(name: str) -> str:
    return _which(name) or name


class Process:
    """One named process, started in its own session; `kill()` is kill -9 of the whole group.
    Held down after `kill()` or `stop()` until `start()`; otherwise the Supervisor restarts it
    when it exits on its own."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name, self.command, self.env = name, command, env
        self.log_path = log_dir / f"{name.replace(' ', '-')}.log"
        self.process: subprocess.Popen | None = None
        self.held = True
        self.lock = threading.RLock()
        self.restarts = 0

    def start(self) -> "Process":
        with self.lock:
            self.held = False
            return self._spawn()

    def _spawn(self) -> "Process":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9, master and children alike."""
        with self.lock:
            self.held = True
            if self.alive():
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def stop(self, timeout: float = 15) -> None:
        with self.lock:
            self.held = True
            if not self.alive():
                return
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class Supervisor:
    """What production's process supervisor does (docs/DEPLOY.md): a process that exits on its
    own (a Celery worker that crashed when the broker went away) is started again, after the
    pauses `make run` uses (api/devstack.py)."""

    def __init__(self, processes: list[Process]):
        self.processes = processes
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        due: dict[str, float] = {}
        quick: dict[str, int] = {}
        while not self.stopping.wait(0.5):
            for process in self.processes:
                with process.lock:
                    if process.held or process.alive():
                        due.pop(process.name, None)
                        continue
                    now = time.monotonic()
                    if process.name not in due:
                        count = quick.get(process.name, 0)
                        quick[process.name] = count + 1
                        pause = devstack.RESTART_PAUSES[
                            min(count, len(devstack.RESTART_PAUSES) - 1)
                        ]
                        due[process.name] = now + pause
                    elif now >= due.pop(process.name):
                        process.restarts += 1
                        process._spawn()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=5)


def wait_http(url: str, timeout: float, process: Process) -> None:
    servers.wait_until(
        servers.answers_200(url), f"{url} answering 200", timeout, process.alive,
        log=process.log_path.read_text,
    )  # fmt: skip


def wait_port(port: int, timeout: float = 20) -> None:
    servers.wait_until(servers.listens(port), f"a listener on {port}", timeout)


# --- PgBouncer -------------------------------------------------------------------------------


def pgbouncer(directory: Path, host: str, port: int, database: str, user: str) -> Process:
    """Transaction pooling in front of the database. PgBouncer before 1.21 keeps no prepared
    statements (the nodes run with DB_PREPARE_THRESHOLD=off) and refuses the `options` startup
    parameter, so statement_timeout is set on the database instead (see docs/DEPLOY.md)."""
    listen = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
{database} = host={host} port={port} dbname={database} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
reserve_pool_size = 5
ignore_startup_parameters = options,extra_float_digits
server_reset_query =
admin_users = {user}
"""
    )
    command = [tool("pgbouncer"), str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        users = {entry.pw_name for entry in pwd.getpwall()}
        command[1:1] = ["-u", "postgres" if "postgres" in users else "nobody"]
        shutil.chown(directory, user=command[2])
        for path in directory.iterdir():
            shutil.chown(path, user=command[2])
    process = Process("pgbouncer", command, os.environ.copy(), directory)
    process.port = listen
    return process


# --- HAProxy ---------------------------------------------------------------------------------


def haproxy(directory: Path, nodes: dict[str, int]) -> Process:
    """Round robin over the nodes, each health-checked on /readyz every second. A node is
    healthy while its database check is ok: /readyz also reports the broker, whose outage the
    outbox covers, and must not take every node out of service. Requests that never reached a
    node are retried on another; after a node died mid-answer, only what is safe to repeat is
    retried: not a POST, unless it carries an Idempotency-Key or is a search. /readyz waits for
    the broker's answer, hence the check's own timeout. A second front end sends
    everything to the first node alone, for the one-node figures."""
    front, single = free_port(), free_port()
    first = next(iter(nodes))
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{port} check inter 1s fall 2 rise 2"
        for name, port in nodes.items()
    )
    (directory / "haproxy.cfg").write_text(
        f"""global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout queue 30s
    timeout check 5s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504
    option httpchk GET /readyz
    http-check expect rstring '"database": *"ok"'

frontend cluster
    bind 127.0.0.1:{front}
    default_backend nodes

frontend one_node
    bind 127.0.0.1:{single}
    default_backend one_node

backend nodes
    balance roundrobin
    http-request disable-l7-retry if METH_POST !{{ req.hdr(idempotency-key) -m found }} !{{ path_end /search }}
{servers}

backend one_node
    http-request disable-l7-retry if METH_POST !{{ req.hdr(idempotency-key) -m found }} !{{ path_end /search }}
    server {first} 127.0.0.1:{nodes[first]} check inter 1s fall 2 rise 2
"""
    )
    check = subprocess.run(
        [tool("haproxy"), "-c", "-f", str(directory / "haproxy.cfg")],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise RuntimeError(check.stdout + check.stderr)
    process = Process(
        "haproxy", [tool("haproxy"), "-db", "-f", str(directory / "haproxy.cfg")], {}, directory
    )
    process.port, process.single_port = front, single
    return process


# --- RabbitMQ: a virtual host of its own on this machine's broker ----------------------------


def rabbitmq_vhost(name: str) -> str:
    for args in (["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]):
        subprocess.run([tool("rabbitmqctl"), "-q", *args], check=True, capture_output=True)
    return f"amqp://guest:guest@127.0.0.1:5672/{name}"


def rabbitmq_vhost_delete(name: str) -> None:
    subprocess.run([tool("rabbitmqctl"), "-q", "delete_vhost", name], capture_output=True)


# --- The API and Celery processes ------------------------------------------------------------


def api_node(name: str, port: int, env: dict, log_dir: Path) -> Process:
    return Process(name, devstack.gunicorn_command(port, 2), env, log_dir)


def celery_processes(env: dict, log_dir: Path, beat_dir: Path) -> dict[str, Process]:
    """Two workers for each queue and two beats: `make run`'s commands, named apart. Workers log
    at DEBUG, where Celery's line per task done is, so the test can count each job's runs."""
    processes = {}
    workers = {**env, "LOG_LEVEL": "DEBUG"}
    for n in (1, 2):
        processes[f"worker {n}"] = Process(
            f"worker {n}", devstack.worker_command("celery", f"jobs{n}@%h"), workers, log_dir
        )
        processes[f"webhooks worker {n}"] = Process(
            f"webhooks worker {n}",
            devstack.worker_command("webhooks", f"webhooks{n}@%h"),
            workers,
            log_dir,
        )
        processes[f"beat {n}"] = Process(
            f"beat {n}",
            devstack.celery_command("beat", "--schedule", str(beat_dir / f"beat-{n}")),
            env,
            log_dir,
        )
    return processes
