"""The README followed word for word, as a newcomer would, on a fresh clone of the committed HEAD:

1. `make run` with DATABASE_URL and CELERY_BROKER_URL unset, so the virtualenv is created from
   requirements.lock, PostgreSQL is the embedded one under the clone's var/ and the broker is
   the filesystem; then its banner;
2. the quick start for two organisations: the onboarding command, the token command and every
   call after them, each run with bash exactly as the README writes it (only the port is the
   one this run chose, the README's documented PORT override, and the second organisation gets
   its own name);
3. Swagger UI and Redoc in Chromium (tests/verify/browser.py) at the URLs the banner printed,
   authorising as the first organisation;
4. Ctrl-C, after which nothing the run started is left.

The commands are read from README.md's code blocks (tests/api/readme.py), so the check follows
the README as it changes, and fails when a command stops working."""

import os
import re
import subprocess
import tempfile
from pathlib import Path

from tests.api import readme
from tests.api.makerun import MakeRun
from tests.servers import ROOT, free_port
from tests.verify import browser
from tests.verify.stack import VAR, say

BANNER_URL = r"{label}:\s+(http://\S+)"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_run_command(sections: dict) -> str:
    """The README's `make run` line (its trailing comment is the shell's business)."""
    lines = [
        line
        for blocks in sections.values()
        for block in blocks
        for line in block
        if line.split("#")[0].strip() == "make run"
    ]
    assert len(lines) == 1, f"README.md has {len(lines)} `make run` commands"
    return lines[0]


def process_left_in(folder: Path) -> list[str]:
    """Processes running from, or on files under, `folder`."""
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            left.append(f"{proc.name}: {cmdline.strip()}")
    return left


def newcomer() -> dict:
    VAR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="srn-readme-") as tmp:
        clone = Path(tmp) / "solidarity-referral-network"
        git("clone", "--quiet", str(ROOT), str(clone))
        head = git("rev-parse", "--short", "HEAD", cwd=clone)
        sections = readme.read(clone / "README.md")
        command = make_run_command(sections)
        say(f"readme: fresh clone of {head}; `{command}` (virtualenv from requirements.lock)")
        stack = MakeRun(
            ["bash", "-c", command],
            cwd=clone,
            env=readme.newcomer_env(PORT=str(free_port())),
            log=VAR / "readme-make-run.log",
        )
        try:
            stack.wait_for_banner(timeout=1200)
            banner = "\n".join(stack.banner())
            docs_url = re.search(BANNER_URL.format(label=r"Docs \(Swagger UI\)"), banner)[1]
            redoc_url = re.search(BANNER_URL.format(label="Redoc"), banner)[1]
            say(f"readme: banner seen; quick start against {stack.base_url}")
            lines = readme.quick_start(sections)
            first = readme.follow(lines, cwd=clone, base_url=stack.base_url)
            second = readme.follow(
                lines, cwd=clone, base_url=stack.base_url, name="Second organisation"
            )
            assert first["organisation_id"] != second["organisation_id"]
            say("readme: Swagger UI and Redoc in Chromium")
            shown = browser.docs_pages(
                stack.base_url, docs_url, redoc_url, first["client_id"], first["client_secret"]
            )
        finally:
            stack.interrupt()
        left = process_left_in(clone)
        assert not left, f"still running after Ctrl-C: {left}"
    return {
        "name": "README on a fresh clone: make run, quick start, Swagger UI and Redoc",
        "tool": shown["tool"],
        "ok": True,
        "detail": f"HEAD {head}; banner in {stack.banner_seconds:.0f} s; 2 organisations x "
        f"{len(first['ran'])} quick-start commands; {shown['detail']}; nothing left after Ctrl-C",
    }
