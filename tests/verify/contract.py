"""The OpenAPI document as a contract: it matches the code, it passes Spectral's OpenAPI and OWASP
rulesets, and the live server honours it under Schemathesis' fuzzing and stateful testing."""

import importlib.metadata
import json
import os
import subprocess

from tests.bench.harness import PYTHON, ROOT
from tests.verify import tools
from tests.verify.stack import VAR, say

COMMITTED = ROOT / "openapi" / "openapi.yaml"
GENERATED = VAR / "openapi.generated.yaml"
RULESET = ROOT / "openapi" / ".spectral.yaml"


def generate() -> dict:
    """Regenerate the document from the code and compare it with the committed one. Every later
    check uses the generated file, which is the committed one whenever this check passes."""
    VAR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres:///unused")}
    env["DJANGO_SETTINGS_MODULE"] = "api.settings.dev"
    subprocess.run(
        [PYTHON, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", GENERATED],
        cwd=ROOT,
        env=env,
        check=True,
    )
    same = COMMITTED.exists() and COMMITTED.read_bytes() == GENERATED.read_bytes()
    return {
        "name": "openapi/openapi.yaml equals the generated document",
        "tool": f"drf-spectacular {importlib.metadata.version('drf-spectacular')}",
        "ok": same,
        "detail": "identical" if same else "drift: run `make openapi` and commit the result",
    }


def spectral() -> dict:
    binary = tools.ensure_spectral()
    report = VAR / "spectral.json"
    subprocess.run(
        [
            binary,
            "lint",
            "--ruleset",
            RULESET,
            "--format",
            "json",
            "--output",
            report,
            "--fail-severity",
            "error",
            GENERATED,
        ],
        # The ruleset lives in openapi/; the OWASP package it extends lives in var/node.
        env={**os.environ, "NODE_PATH": str(tools.NODE_DIR / "node_modules")},
        check=False,
        stdout=subprocess.DEVNULL,
    )
    findings = json.loads(report.read_text() or "[]")
    severity = {0: "error", 1: "warning", 2: "info", 3: "hint"}
    counts = {name: 0 for name in severity.values()}
    for finding in findings:
        counts[severity[finding["severity"]]] += 1
    for finding in findings[:40]:
        print(
            f"  spectral {severity[finding['severity']]} {finding['code']}: "
            f"{'.'.join(map(str, finding['path']))}: {finding['message']}"
        )
    return {
        "name": "Spectral (spectral:oas + OWASP API security)",
        "tool": f"spectral-cli {tools.version([binary, '--version'])}",
        "ok": counts["error"] == 0 and counts["warning"] == 0,
        "detail": ", ".join(f"{count} {name}s" for name, count in counts.items()),
    }


def schemathesis(stack, max_examples: int, max_time: int) -> dict:
    """Every operation with Schemathesis' default checks but positive_data_acceptance (below), then stateful sequences over the document's
    links, as the demo clinic (an organisation with services, partners and referrals)."""
    binary = ROOT / ".venv" / "bin" / "schemathesis"
    report_dir = VAR / "schemathesis"
    command = [
        binary, "run", GENERATED,
        "--url", stack.base_url,
        "--header", f"Authorization: Bearer {stack.token('demo-clinic')}",
        "--max-examples", str(max_examples),
        "--max-time", str(max_time),
        "--workers", "2",
        "--seed", os.environ.get("VERIFY_SEED", "20261128"),
        "--request-timeout", "10",
        "--report", "junit,ndjson", "--report-dir", report_dir,
        # positive_data_acceptance: business rules refuse schema-valid input no schema can
        # express (an unknown partner id, a taxonomy code not in the taxonomy, a URL resolving to
        # a private address). missing_required_header: a missing If-Match is 428 (RFC 6585), which
        # the check does not list among the answers it accepts.
        "--exclude-checks", "positive_data_acceptance,missing_required_header",
        "--generation-database", "none",
        "--no-color",
    ]  # fmt: skip
    say("schemathesis: " + " ".join(map(str, command[:4])) + " ...")
    # Schemathesis keeps a cache of failures in the working directory: keep it out of the tree.
    result = subprocess.run(command, cwd=VAR, check=False)
    return {
        "name": "Schemathesis (all checks, stateful over links)",
        "tool": tools.version([binary, "--version"]),
        "ok": result.returncode == 0,
        "detail": f"exit {result.returncode}; reports in {report_dir.relative_to(ROOT)}",
    }
