"""A unique canary string in every personal field (the consent's staff reference and purpose
note included) must appear nowhere in a pg_dump of the database (neither as text nor
hex-encoded in a bytea column) nor in the logs."""

import importlib.util
import logging
import subprocess
import uuid
from pathlib import Path

import pytest

from api.logging import JSONFormatter
from partners.models import Service
from tests.conftest import pg_dump_args
from tests.referrals.conftest import act, ensure_taxonomy, referral_payload

# The pg_dump that ships in the pgserver wheel (found without importing pgserver, whose import
# warns about XDG_RUNTIME_DIR and warnings are errors here).
PG_DUMP = Path(importlib.util.find_spec("pgserver").origin).parent / "pginstall" / "bin" / "pg_dump"


def pg_dump() -> str:
    args, env = pg_dump_args()
    result = subprocess.run(
        [str(PG_DUMP), "--no-owner", *args], capture_output=True, check=True, env=env
    )
    return result.stdout.decode()


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JSONFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))
        self.lines.append(repr(record.__dict__))


@pytest.fixture
def captured_logs():
    handler = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db(transaction=True)
def test_canary_is_in_neither_the_dump_nor_the_logs(
    sender_org, receiver_org, partnership, sender, receiver, captured_logs
):
    canary = "cnry" + uuid.uuid4().hex[:16]
    control = "ctrl" + uuid.uuid4().hex[:16]
    ensure_taxonomy()
    service = Service.objects.create(organisation=receiver_org, name=control)
    body = referral_payload(
        receiver_org,
        service,
        person={"name": canary, "pronouns": canary, "age_band": "25_34", "languages": ["th"]},
        safe_contact={
            "do_not_contact": False,
            "channels": ["whatsapp"],
            "safe_times": canary,
            "voicemail_ok": True,
            "may_name_organisation": False,
            "neutral_name": canary,
            "code_word": canary,
            "instructions": canary,
        },
        contact={"phone": canary, "email": f"{canary}@example.org", "handle": canary},
        reason=canary,
        health=canary,
        legal=canary,
        consent={"recorded_by": canary, "purpose_note": canary},
    )

    created = sender.post(
        "/api/v1/referrals", body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
    )
    assert created.status_code == 201
    rid = created.json()["id"]
    assert sender.post(f"/api/v1/referrals/{rid}/notes", {"text": canary}).status_code == 201
    act(receiver, rid, "receive")
    declined = act(receiver, rid, "decline", body={"reason": "other", "note": canary})
    assert declined.status_code == 200
    detail = receiver.get(f"/api/v1/referrals/{rid}")
    assert detail.json()["legal"] == canary
    assert detail.json()["decline_note"] == canary
    assert receiver.get(f"/api/v1/referrals/{rid}/notes").json()["results"][0]["text"] == canary

    dump = pg_dump()

    assert control in dump, "the dump must hold plain metadata, or this test proves nothing"
    assert canary not in dump, [line[:300] for line in dump.splitlines() if canary in line]
    assert canary.encode().hex() not in dump
    logs = "\n".join(captured_logs.lines)
    assert "api.access" in logs, "the request logs must have been captured"
    assert canary not in logs
