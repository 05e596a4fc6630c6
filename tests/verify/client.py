"""The whole partner flow, run with a Python client that openapi-python-client generates from the
document at check time (into var/verify/, never committed), with no hand-written HTTP: two
organisations onboarded as the README does get their tokens, agree a partnership, the clinic
publishes a service and its capacity, the collective refers someone to it and the clinic takes
the referral to completion, while a webhook receiver on this machine verifies every delivery it
gets with `standardwebhooks`, as the document's webhook guide says.

Each step calls the generated operation by its operationId; a step whose operation is not in
the document is reported as missing (and fails the check), so nothing is silently skipped.
"""

import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
import typing
import uuid
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.servers import ROOT, LoopbackServer, QuietHandler
from tests.verify import contract, tools
from tests.verify.stack import VAR, manage, say

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


class Receiver(LoopbackServer):
    """A partner's webhook endpoint on this machine (the verify stack allows loopback): keeps
    each delivery's headers and raw body."""

    def __init__(self):
        deliveries = self.deliveries = []

        class Handler(QuietHandler):
            def do_POST(self):
                deliveries.append((self.headers_lower(), self.read_body()))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/hooks"


def onboard(stack, name: str, kind: str) -> dict:
    """The README's onboarding command, then a steward's verification."""
    created = json.loads(
        manage("onboard_partner", "--name", name, "--kind", kind, "--json", env=stack.env)
    )
    manage("verify_organisation", created["organisation_id"], env=stack.env)
    return created


def partner_flow(stack) -> dict:
    generate()
    client_module = importlib.import_module(f"{PACKAGE}.client")
    run = uuid.uuid4().hex[:6]
    parties = {
        "collective": onboard(stack, f"Flow Collective {run}", "sex_worker_led"),
        "clinic": onboard(stack, f"Flow Clinic {run}", "clinic"),
    }
    anonymous = client_module.Client(base_url=stack.base_url, raise_on_unexpected_status=False)
    clients = {}
    collective_id = parties["collective"]["organisation_id"]
    clinic_id = parties["clinic"]["organisation_id"]
    done, missing = [], []
    state = {}

    def step(name, function):
        try:
            result = function()
        except Missing as exc:
            missing.append(f"{name}: {exc}")
            say(f"partner flow: {name}: MISSING {exc}")
            return None
        done.append(name)
        say(f"partner flow: {name}: ok")
        return result

    def tokens():
        for role, party in parties.items():
            answer = call(
                "oauth", "create_token", anonymous, 200,
                body={"grant_type": "client_credentials", "client_id": party["client_id"],
                      "client_secret": party["client_secret"]},
            )  # fmt: skip
            clients[role] = client_module.AuthenticatedClient(
                base_url=stack.base_url,
                token=answer.parsed.access_token,
                raise_on_unexpected_status=False,
            )
        me = call("me", "get_me", clients["clinic"], 200).parsed.to_dict()
        assert me["organisation"]["id"] == clinic_id, me

    step("tokens (client credentials)", tokens)
    if missing:
        return result_row(done, missing)

    def subscribe():
        created = call(
            "webhooks", "create_webhook_endpoint", clients["clinic"], 201,
            body={"url": receiver.url, "event_types": ["*"], "description": "verify"},
        )  # fmt: skip
        state["secret"] = created.parsed.to_dict()["secret"]

    def partnership():
        proposed = call(
            "partnerships", "create_partnership", clients["collective"], 201,
            body={"partner_id": clinic_id, "data_categories": ["contact", "health", "notes"],
                  "purposes": ["Referral for sexual health care"]},
        )  # fmt: skip
        accepted = call(
            "partnerships", "accept_partnership", clients["clinic"], 200, id=proposed.parsed.id
        )
        assert accepted.parsed.to_dict()["status"] == "active", accepted.content

    def service_and_capacity():
        created = call(
            "services", "create_service", clients["clinic"], 201,
            body={"name": "Walk-in STI testing", "taxonomy": ["sti-testing"],
                  "languages": ["pt", "en"], "cost": "free", "no_id_required": True,
                  "walk_in": True},
        )  # fmt: skip
        state["service"] = service = created.parsed.to_dict()["id"]
        current = call("capacity", "get_capacity", clients["clinic"], 200, id=service)
        call(
            "capacity", "update_capacity", clients["clinic"], 200, id=service,
            if_match=current.headers["etag"],
            body={"available": 3, "maximum": 10, "unit": "appointments",
                  "accepting_referrals": "open",
                  "valid_until": (datetime.now(UTC) + timedelta(hours=8)).isoformat()},
        )  # fmt: skip

    def referral_to_completion():
        now = datetime.now(UTC).isoformat()
        created = call(
            "referrals", "create_referral", clients["collective"], 201,
            idempotency_key=str(uuid.uuid4()),
            body={
                "receiver": clinic_id, "service": state["service"], "urgency": "soon",
                "needs": ["sti-testing"], "person": {"name": "Mia", "languages": ["pt"]},
                "safe_contact": {"do_not_contact": False, "channels": ["signal"]},
                "contact": {"handle": "mia.signal.42"}, "reason": "An STI test this week.",
                "consent": {
                    "consented": True, "method": "verbal", "language": "pt", "given_at": now,
                    "recorded_by": "staff-17", "purpose": "sexual-health",
                    "recipient": clinic_id, "data_categories": ["contact", "notes"],
                    "by_representative": False, "wording_version": "2026-10",
                },
            },
        )  # fmt: skip
        referral = created.parsed.to_dict()
        assert referral["sender"]["id"] == collective_id, referral
        etag = created.headers["etag"]
        for action in ("receive", "accept", "start"):
            etag = call(
                "referrals", f"{action}_referral", clients["clinic"], 200,
                id=referral["id"], if_match=etag,
            ).headers["etag"]  # fmt: skip
        call("referrals", "create_referral_notes", clients["clinic"], 201, id=referral["id"],
             body={"text": "Seen today; results by Signal."})  # fmt: skip
        completed = call(
            "referrals", "complete_referral", clients["clinic"], 200,
            id=referral["id"], if_match=etag, body={"outcome": "service_provided"},
        )  # fmt: skip
        assert completed.parsed.to_dict()["status"] == "completed", completed.content
        state["referral"] = referral["id"]

    def deliveries_verified():
        """Every delivery the clinic's endpoint got verifies with its secret, in sequence."""
        wanted = {"partnership.changed", "capacity.updated", "referral.received",
                  "referral.status_changed"}  # fmt: skip
        webhook = Webhook(state["secret"])

        def received():
            events = [webhook.verify(body, headers) for headers, body in receiver.deliveries]
            sequences = sorted(event["sequence"] for event in events)
            in_order = sequences == list(range(1, len(sequences) + 1))
            return {event["type"] for event in events}, sequences, in_order

        deadline = time.monotonic() + 60  # a bound on waiting, not a measurement
        seen, sequences, in_order = received()
        while time.monotonic() < deadline and not (wanted <= seen and in_order):
            time.sleep(0.5)
            seen, sequences, in_order = received()
        assert wanted <= seen, f"deliveries seen: {sorted(seen)}"
        assert in_order, f"sequence numbers: {sequences}"
        forged = receiver.deliveries[0][0] | {"webhook-signature": "v1,Zm9yZ2Vk"}
        try:
            Webhook(state["secret"]).verify(receiver.deliveries[0][1], forged)
        except WebhookVerificationError:
            pass
        else:
            raise AssertionError("a forged signature verified")
        return len(sequences)

    with Receiver() as receiver:
        step("webhook endpoint", subscribe)
        step("propose and accept a partnership", partnership)
        step("a service and its capacity", service_and_capacity)
        step("a referral to completion", referral_to_completion)
        step("webhook deliveries verified with standardwebhooks", deliveries_verified)
    return result_row(done, missing)


def result_row(done, missing) -> dict:
    return {
        "name": "Generated Python client runs the whole partner flow",
        "tool": tools.version([GENERATOR, "--version"]),
        "ok": not missing and len(done) == 6,
        "detail": f"{len(done)} of 6 steps ok"
        + (f"; missing: {'; '.join(missing)}" if missing else ""),
    }
