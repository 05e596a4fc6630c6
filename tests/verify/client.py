"""The README quick start, run with a Python client that openapi-python-client generates from the
document at check time (into var/verify/, never committed): what an integrator would do first.

Each step calls the generated operation by its operationId; a step whose operation is not in
the document is reported as missing (and fails the check), so nothing is silently skipped.
Two demo organisations play the parts: the collective refers, the clinic receives.
"""

import importlib
import inspect
import os
import shutil
import subprocess
import sys
import typing
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.bench.harness import ROOT
from tests.verify import contract, tools
from tests.verify.stack import VAR, say

PACKAGE = "srn_client"
GENERATOR = ROOT / ".venv" / "bin" / "openapi-python-client"


class Missing(Exception):
    """The document has no such operation."""


def generate() -> None:
    target = VAR / PACKAGE
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [GENERATOR, "generate", "--path", contract.GENERATED, "--output-path", target,
         "--meta", "none"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0 or "Warning" in result.stdout + result.stderr:
        raise RuntimeError("openapi-python-client: " + (result.stdout + result.stderr).strip())
    if str(VAR) not in sys.path:
        sys.path.insert(0, str(VAR))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def operation(tag: str, operation_id: str):
    try:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")
    except ModuleNotFoundError as exc:
        raise Missing(f"{operation_id} ({tag})") from exc


def call(tag: str, operation_id: str, client, expected: int, body: dict | None = None, **kwargs):
    """Call an operation with a body built from a plain dict by the client's own model class."""
    module = operation(tag, operation_id)
    if body is not None:
        annotation = inspect.signature(module.sync_detailed).parameters["body"].annotation
        model = next(
            t for t in typing.get_args(annotation) or [annotation] if hasattr(t, "from_dict")
        )
        kwargs["body"] = model.from_dict(body)
    response = module.sync_detailed(client=client, **kwargs)
    if response.status_code != expected:
        raise AssertionError(
            f"{operation_id}: expected {expected}, got {response.status_code}: "
            f"{response.content[:500]!r}"
        )
    return response


def token(base_url: str, client_id: str, secret: str) -> str:
    """Step 1 of the README: the client credentials grant (not part of the OpenAPI document)."""
    response = httpx.post(
        base_url + "/oauth/token/",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def quick_start(stack) -> dict:
    generate()
    client_module = importlib.import_module(f"{PACKAGE}.client")
    clients = {
        client_id: client_module.AuthenticatedClient(
            base_url=stack.base_url,
            token=token(stack.base_url, client_id, entry["client_secret"]),
            raise_on_unexpected_status=False,
        )
        for client_id, entry in stack.credentials.items()
    }
    sender, receiver = clients["demo-collective"], clients["demo-clinic"]
    receiver_id = stack.credentials["demo-clinic"]["organisation_id"]
    done, missing = [], []

    def step(name, function):
        try:
            result = function()
        except Missing as exc:
            missing.append(f"{name}: {exc}")
            say(f"quick start: {name}: MISSING {exc}")
            return None
        done.append(name)
        say(f"quick start: {name}: ok")
        return result

    step("token and /me", lambda: call("me", "me_retrieve", receiver, 200))

    def search():
        page = call("services", "services_search", sender, 200, body={"taxonomy": ["sti-testing"]})
        return [
            service
            for service in page.parsed.to_dict()["results"]
            if service["organisation"]["id"] == receiver_id
        ]

    found = step("search services", search)

    def service_for_the_clinic():
        """The demo seed may not carry a clinic service yet; publish one as the README would."""
        if found:
            return found[0]["id"]
        created = call(
            "services", "services_create", receiver, 201,
            body={
                "name": "Walk-in STI testing", "taxonomy": ["sti-testing"], "languages": ["pt", "en"],
                "cost": "free", "no_id_required": True, "walk_in": True,
            },
        )  # fmt: skip
        return created.parsed.to_dict()["id"]

    service_id = step("a clinic service", service_for_the_clinic)

    def update_capacity():
        current = call("capacity", "capacity_retrieve", receiver, 200, id=service_id)
        call(
            "capacity", "capacity_update", receiver, 200, id=service_id,
            if_match=current.headers["etag"],
            body={
                "available": 3, "maximum": 10, "unit": "appointments", "accepting_referrals": "open",
                "valid_until": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
            },
        )  # fmt: skip

    step("update capacity", update_capacity)

    def partnership():
        """Referrals need an active partnership; propose and accept one if the seed has none."""
        listed = call("partnerships", "partnerships_list", sender, 200).parsed.to_dict()["results"]
        if any(p["status"] == "active" and receiver_id in str(p) for p in listed):
            return
        proposed = call(
            "partnerships", "partnerships_create", sender, 201,
            body={"partner_id": receiver_id, "data_categories": ["contact", "health", "notes"],
                  "purposes": ["Referral for sexual health care"]},
        )  # fmt: skip
        call("partnerships", "partnerships_accept", receiver, 200, id=proposed.parsed.id)

    step("active partnership", partnership)

    def create_referral():
        now = datetime.now(UTC).isoformat()
        created = call(
            "referrals", "referrals_create", sender, 201,
            idempotency_key=str(uuid.uuid4()),
            body={
                "receiver": receiver_id, "service": service_id, "urgency": "soon",
                "needs": ["sti-testing"], "person": {"name": "Mia", "languages": ["pt"]},
                "safe_contact": {"do_not_contact": False, "channels": ["signal"]},
                "contact": {"handle": "mia.signal.42"}, "reason": "An STI test this week.",
                "consent": {
                    "consented": True, "method": "verbal", "language": "pt", "given_at": now,
                    "recorded_by": "staff-17", "purpose": "Sexual health appointment",
                    "recipient": receiver_id, "data_categories": ["contact", "notes"],
                    "by_representative": False, "wording_version": "2026-10",
                },
            },
        )  # fmt: skip
        return created.parsed.to_dict()["id"]

    referral_id = step("create a referral", create_referral)

    def accept():
        opened = call("referrals", "referrals_retrieve", receiver, 200, id=referral_id)
        etag = opened.headers["etag"]
        if opened.parsed.to_dict()["referral"]["status"] == "requested":
            etag = call("referrals", "referrals_receive", receiver, 200, id=referral_id,
                        if_match=etag).headers["etag"]  # fmt: skip
        accepted = call(
            "referrals", "referrals_accept", receiver, 200, id=referral_id, if_match=etag
        )
        assert accepted.parsed.to_dict()["status"] == "accepted", accepted.content

    step("accept it", accept)

    def timeline():
        entries = call("referrals", "referrals_timeline", sender, 200, id=referral_id).parsed
        assert any("accepted" in str(entry.to_dict()) for entry in entries), entries

    step("read its timeline", timeline)
    return {
        "name": "Generated Python client runs the README quick start",
        "tool": tools.version([GENERATOR, "--version"]),
        "ok": not missing,
        "detail": f"{len(done)} steps ok" + (f"; missing: {'; '.join(missing)}" if missing else ""),
    }
