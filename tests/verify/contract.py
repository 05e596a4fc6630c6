"""The OpenAPI document as a contract: it matches the code, it passes Spectral's OpenAPI and OWASP
rulesets, and the live server honours it under Schemathesis' fuzzing and stateful testing."""

import importlib.metadata
import json
import os
import subprocess
from datetime import UTC, datetime

import requests

from tests.servers import PYTHON, ROOT
from tests.verify import tools
from tests.verify.stack import VAR, say

COMMITTED = ROOT / "openapi" / "openapi.yaml"
GENERATED = VAR / "openapi.generated.yaml"
RULESET = ROOT / "openapi" / ".spectral.yaml"
# Which answers positive_data_acceptance and missing_required_header accept.
CONFIG = ROOT / "tests" / "verify" / "schemathesis.toml"


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
    """Every operation with every Schemathesis check (configured in schemathesis.toml), then
    stateful sequences over the document's links, as the demo clinic (an organisation with
    services, partners and referrals)."""
    binary = ROOT / ".venv" / "bin" / "schemathesis"
    report_dir = VAR / "schemathesis"
    # Each security scheme its own token (schemathesis.toml): the partner routes the clinic's,
    # the person's self-service routes a self-service token of a referral made for it.
    tokens = {
        "SRN_VERIFY_TOKEN": stack.token("demo-clinic"),
        "SRN_VERIFY_SELF_TOKEN": self_token(stack),
    }
    command = [
        binary, "--config-file", CONFIG, "run", GENERATED,
        "--url", stack.base_url,
        # The token endpoint answers as RFC 6749 says (400 for every refusal, 401 and a per-client
        # budget of secret checks), not by this API's conventions: tests/api/test_openapi_token.py
        # plays its documented answers.
        "--exclude-path", "/oauth/token",
        "--max-examples", str(max_examples),
        "--max-time", str(max_time),
        # One worker: Python 3.11's ast module keeps its recursion depth per interpreter, so two
        # threads in Hypothesis' ast.parse (describing a strategy's lambda) race and raise
        # "AST constructor recursion depth mismatch" (CPython gh-106905, fixed in 3.12).
        "--workers", "1",
        "--seed", os.environ.get("VERIFY_SEED", "20261128"),
        "--request-timeout", "10",
        "--report", "junit,ndjson", "--report-dir", report_dir,
        "--checks", "all",
        "--generation-database", "none",
        "--no-color",
    ]  # fmt: skip
    say("schemathesis: " + " ".join(map(str, command[:4])) + " ...")
    # Schemathesis keeps a cache of failures in the working directory: keep it out of the tree.
    result = subprocess.run(command, cwd=VAR, check=False, env={**os.environ, **tokens})
    return {
        "name": "Schemathesis (all checks, stateful over links)",
        "tool": tools.version([binary, "--version"]),
        "ok": result.returncode == 0,
        "detail": f"exit {result.returncode}; reports in {report_dir.relative_to(ROOT)}",
    }


SELF_SERVICE_PIN = "480391"


def self_token(stack) -> str:
    """A self-service token, as the person gets one: the demo collective refers someone to the
    demo clinic with a PIN, and the claim code and PIN are exchanged at /api/v1/self/token."""
    base = stack.base_url + "/api/v1"
    sender = requests.Session()
    sender.headers["Authorization"] = f"Bearer {stack.token('demo-collective')}"
    receiver_id = stack.credentials["demo-clinic"]["organisation_id"]
    clinic = requests.Session()
    clinic.headers["Authorization"] = f"Bearer {stack.token('demo-clinic')}"
    partnerships = answer(sender.get(f"{base}/partnerships", timeout=30))["results"]
    if not any(p["status"] == "active" and receiver_id in str(p) for p in partnerships):
        proposed = sender.post(
            f"{base}/partnerships",
            json={"partner_id": receiver_id, "data_categories": ["contact", "notes"],
                  "purposes": ["Referral for sexual health care"]},
            timeout=30,
        )  # fmt: skip
        proposed.raise_for_status()
        clinic.post(
            f"{base}/partnerships/{proposed.json()['id']}/accept", timeout=30
        ).raise_for_status()
    services = answer(clinic.get(f"{base}/services", timeout=30))["results"]
    if services:
        service_id = services[0]["id"]
    else:
        created = clinic.post(
            f"{base}/services", json={"name": "Walk-in STI testing", "taxonomy": ["sti-testing"]},
            timeout=30,
        )  # fmt: skip
        created.raise_for_status()
        service_id = created.json()["id"]
    now = datetime.now(UTC).isoformat()
    referral = sender.post(
        f"{base}/referrals",
        json={
            "receiver": receiver_id, "service": service_id, "urgency": "soon",
            "needs": ["sti-testing"], "person": {"name": "Mia", "languages": ["pt"]},
            "safe_contact": {"do_not_contact": False, "channels": ["signal"]},
            "contact": {"handle": "mia.signal.42"}, "reason": "An STI test this week.",
            "consent": {
                "consented": True, "method": "verbal", "language": "pt", "given_at": now,
                "recorded_by": "staff-17", "purpose": "sexual-health", "recipient": receiver_id,
                "data_categories": ["contact"], "by_representative": False,
                "wording_version": "2026-10",
            },
            "self_service_pin": SELF_SERVICE_PIN,
        },
        timeout=30,
    )  # fmt: skip
    if referral.status_code != 201:
        raise RuntimeError(f"the self-service referral was refused: {referral.text}")
    code = referral.json()["claim_code"]
    exchanged = requests.post(
        f"{base}/self/token", json={"code": code, "pin": SELF_SERVICE_PIN}, timeout=30
    )
    if exchanged.status_code != 201:
        raise RuntimeError(f"the self-service token was refused: {exchanged.text}")
    return exchanged.json()["token"]


def answer(response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.url}: {response.text}")
    return response.json()
