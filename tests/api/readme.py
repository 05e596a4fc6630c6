"""README.md's shell commands, read from its code blocks, so the tests that follow the README
(tests/api/test_devstack.py, and `make verify`'s fresh-clone check) follow it as it changes."""

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The address the README's commands use; `make run` serves there unless PORT says otherwise.
README_BASE = "http://127.0.0.1:8000"
PROBLEM_KEYS = {"type", "title", "status"}
HEADING = re.compile(r"^## (.+)$", re.M)
BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.M | re.S)


def sections(text: str) -> dict[str, list[list[str]]]:
    """Each `##` section's shell blocks, each block as its commands: continuation lines joined
    as the shell joins them, comment lines (shown output) dropped."""
    found: dict[str, list[list[str]]] = {}
    parts = HEADING.split(text)
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        found[title.strip()] = [commands(block) for block in BLOCK.findall(body)]
    return found


def commands(block: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", "", block)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read(path: Path = ROOT / "README.md") -> dict[str, list[list[str]]]:
    return sections(path.read_text())


def command(containing: str, path: Path = ROOT / "README.md") -> str:
    """The README's one command that contains `containing`."""
    matches = [
        line
        for blocks in read(path).values()
        for block in blocks
        for line in block
        if containing in line
    ]
    assert len(matches) == 1, f"README.md has {len(matches)} commands with {containing!r}"
    return matches[0]


def newcomer_env(**extra: str) -> dict:
    """A newcomer's shell: none of the settings the README says may stay unset, so the embedded
    PostgreSQL and the filesystem broker are used."""
    unset = {
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "DJANGO_SETTINGS_MODULE",
        "VAR_DIR",
        "PORT",
        "LOG_LEVEL",
        "XDG_RUNTIME_DIR",
        "PYTEST_CURRENT_TEST",
    }
    env = {key: value for key, value in os.environ.items() if key not in unset}
    # Output arrives line by line, as on a terminal.
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run(
    line: str, *, cwd: Path, env: dict, base_url: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run a README command with bash, as written, except that its address is the stack's when
    that listens on another port (a documented override)."""
    if base_url is not None:
        line = line.replace(README_BASE, base_url)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def quick_start(sections: dict) -> list[str]:
    """The commands of the section that onboards an organisation, in order."""
    for blocks in sections.values():
        lines = [line for block in blocks for line in block]
        if any("manage.py onboard_partner" in line for line in lines):
            return lines
    raise AssertionError("README.md has no section with the onboarding command")


def follow(
    lines: list[str], *, cwd: Path, base_url: str, name: str | None = None, **env_extra: str
) -> dict:
    """One organisation through the quick start, each command checked: it succeeds and prints
    JSON that is not a problem document, and an answer naming an organisation names this one.
    `name` replaces the onboarding command's. Returns the credentials and what it ran."""
    env = newcomer_env(**env_extra)
    organisation_id, ran = None, []
    for line in lines:
        if name and "onboard_partner" in line:
            line = re.sub(r'--name "[^"]*"', f'--name "{name}"', line)
        result = run(line, cwd=cwd, env=env, base_url=base_url)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        try:
            body = json.loads(result.stdout)
        except ValueError as exc:
            raise AssertionError(f"{line}\nprinted no JSON:\n{result.stdout}") from exc
        assert not (isinstance(body, dict) and body.keys() >= PROBLEM_KEYS), f"{line}\n{body}"
        if "onboard_partner" in line:
            organisation_id = body["organisation_id"]
            env.update(CLIENT_ID=body["client_id"], CLIENT_SECRET=body["client_secret"])
        elif "grant_type=client_credentials" in line:
            assert body["token_type"] == "Bearer", body
            env["TOKEN"] = body["access_token"]
        elif isinstance(body, dict) and isinstance(body.get("organisation"), dict):
            assert body["organisation"]["id"] == organisation_id, (line, body)
        ran.append(line)
    assert organisation_id and "TOKEN" in env, (
        f"the quick start did not onboard and get a token: {ran}"
    )
    return {"organisation_id": organisation_id, "client_id": env["CLIENT_ID"],
            "client_secret": env["CLIENT_SECRET"], "ran": ran}  # fmt: skip
