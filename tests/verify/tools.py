"""Installs the tools the checks need when they are missing, so `make verify` works on a fresh
machine: Debian's chromium (apt) and Spectral with the OWASP ruleset (npm, into the git-ignored
var/node, versions pinned by tests/verify/package-lock.json). Python tools come from
requirements.lock like everything else."""

import filecmp
import shutil
import subprocess
from pathlib import Path

from tests.servers import ROOT
from tests.verify.stack import say

CHROMIUM = Path("/usr/bin/chromium")
NODE_DIR = ROOT / "var" / "node"
SPECTRAL = NODE_DIR / "node_modules" / ".bin" / "spectral"
HERE = Path(__file__).resolve().parent


# A font for each script the person's page (/me) shows beyond Latin and Cyrillic, so that its
# screenshots can be read: one small Debian package each.
FONTS = {"th": "fonts-tlwg-loma", "zh": "fonts-wqy-microhei"}


def apt_install(*packages: str) -> None:
    install = ["apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(install, check=False, stdout=subprocess.DEVNULL).returncode != 0:
        # A machine whose package lists are old or missing needs them first.
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(install, check=True, stdout=subprocess.DEVNULL)


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    say("installing Debian's chromium")
    apt_install("chromium")


def ensure_fonts() -> None:
    missing = [
        package
        for language, package in FONTS.items()
        if not subprocess.run(
            ["fc-list", f":lang={language}"], capture_output=True, text=True, check=False
        ).stdout.strip()
    ]
    if missing:
        say(f"installing fonts for the person's page: {', '.join(missing)}")
        apt_install(*missing)


def ensure_spectral() -> Path:
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    lock = NODE_DIR / "package-lock.json"
    if SPECTRAL.exists() and lock.exists() and filecmp.cmp(lock, HERE / "package-lock.json"):
        return SPECTRAL
    if shutil.which("npm") is None:
        raise RuntimeError("npm is missing: apt-get install -y npm")
    say("installing Spectral and the OWASP ruleset into var/node")
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, NODE_DIR / name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel", "error"],
        cwd=NODE_DIR,
        check=True,
    )
    return SPECTRAL


def version(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip().splitlines()[0]
