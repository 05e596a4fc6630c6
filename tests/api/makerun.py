"""`make run`'s stack as a child process: started in a session of its own, as a terminal starts a
job, its output collected line by line, and stopped as Ctrl-C stops it (SIGINT to the whole
process group)."""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

BANNER_START = "Solidarity Referral Network API is ready"
BANNER_END = "Press Ctrl-C to stop everything this started."
DOCS = re.compile(r"Docs \(Swagger UI\):\s+(http://\S+?)/api/docs")


class MakeRun:
    def __init__(self, command: list[str], *, cwd: Path, env: dict, log: Path | None = None):
        self.lines: list[str] = []
        self.log = log
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        sink = self.log.open("w") if self.log else None
        try:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if sink:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink:
                sink.close()

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_banner(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while BANNER_END not in self.lines:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.interrupt()
                raise AssertionError(
                    f"no banner from {self.process.args}:\n{self.output()[-6000:]}"
                )
            time.sleep(0.2)
        self.banner_seen = time.monotonic()
        self.banner_seconds = self.banner_seen - self.started

    @property
    def base_url(self) -> str:
        match = DOCS.search(self.output())
        assert match, self.output()
        return match.group(1)

    def _banner_start(self) -> int:
        return next(i for i, line in enumerate(self.lines) if BANNER_START in line)

    def banner(self) -> list[str]:
        return self.lines[self._banner_start() : self.lines.index(BANNER_END) + 1]

    def before_banner(self) -> list[str]:
        return self.lines[: self._banner_start()]

    def after_banner(self) -> list[str]:
        return self.lines[self.lines.index(BANNER_END) + 1 :]

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C: SIGINT to every process of the group, then wait for `make run` to exit."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(timeout=10)
        self.process.stdout.close()
        return self.process.returncode
