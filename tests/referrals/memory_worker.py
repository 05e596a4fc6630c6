"""A fresh API worker for tests/referrals/test_memory.py: its first requests create a referral
whose personal fields hold a canary, read it, shred it; then, after `gc.collect()`, it walks
every object reachable from the collector's list and reports which ones still hold the canary.

Run as `python -m tests.referrals.memory_worker SENDER_TOKEN RECEIVER_TOKEN RECEIVER SERVICE`
with DJANGO_SETTINGS_MODULE and DATABASE_URL set; prints one JSON object."""

import gc
import json
import secrets
import sys
from datetime import UTC, datetime, timedelta


def payload(canary: str, receiver: str, service: str) -> bytes:
    given_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = {
        "receiver": receiver,
        "service": service,
        "urgency": "soon",
        "person": {"name": f"{canary}-name", "pronouns": f"{canary}-pronouns"},
        "safe_contact": {
            "do_not_contact": False,
            "channels": ["signal"],
            "code_word": f"{canary}-code-word",
            "instructions": f"{canary}-instructions",
        },
        "contact": {"handle": f"{canary}-handle"},
        "reason": f"{canary}-reason",
        "health": f"{canary}-health",
        "consent": {
            "consented": True,
            "method": "verbal",
            "language": "th",
            "given_at": given_at,
            "recorded_by": f"{canary}-staff",
            "purpose": "sexual-health",
            "recipient": receiver,
            "data_categories": ["contact", "health", "notes"],
            "by_representative": False,
            "wording_version": "2026-10",
        },
    }
    return json.dumps(body).encode()


def requests(client, canary: str, sender: str, receiver: str, receiver_id: str, service: str):
    """The worker's life: create, read, add a note, shred. Returns what the test must know,
    without keeping any response (a test client's response keeps its request)."""
    created = client.post(
        "/api/v1/referrals",
        payload(canary, receiver_id, service),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sender}",
    )
    referral = created.json()["id"]
    detail = client.get(f"/api/v1/referrals/{referral}", HTTP_AUTHORIZATION=f"Bearer {receiver}")
    note = client.post(
        f"/api/v1/referrals/{referral}/notes",
        json.dumps({"text": f"{canary}-note"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {receiver}",
    )
    revoked = client.post(
        f"/api/v1/referrals/{referral}/consent/revoke",
        b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sender}",
    )
    return {
        "statuses": [r.status_code for r in (created, detail, note, revoked)],
        "read_before_shredding": f"{canary}-staff" in detail.content.decode(),
        "personal_data": revoked.json()["personal_data"],
    }


def holders(canary: str) -> list[str]:
    """Every object reachable from gc.get_objects() (untracked dicts and tuples included, via
    their tracked parents) that refers to a str or bytes containing the canary. The canary
    object itself and this function's own needle are skipped by identity."""
    needle = canary.encode()
    seen: set[int] = set()
    found: set[str] = set()
    stack = gc.get_objects()
    seen.update(id(obj) for obj in stack)
    while stack:
        obj = stack.pop()
        for ref in gc.get_referents(obj):
            if ref is canary or ref is needle:
                continue
            if isinstance(ref, str):
                if canary in ref:
                    found.add(f"{type(obj).__module__}.{type(obj).__qualname__}")
            elif isinstance(ref, bytes | bytearray):
                if needle in ref:
                    found.add(f"{type(obj).__module__}.{type(obj).__qualname__}")
            elif id(ref) not in seen:
                seen.add(id(ref))
                stack.append(ref)
    return sorted(found)


def main() -> None:
    import django

    django.setup()
    from django.test import Client

    sender, receiver, receiver_id, service = sys.argv[1:5]
    canary = "cnry" + secrets.token_hex(12)
    outcome = requests(Client(), canary, sender, receiver, receiver_id, service)
    # A copy kept on purpose: the walk must find it, or it proves nothing.
    control = [canary + "-control"]
    gc.collect()
    outcome["control"] = holders(canary)
    control.clear()
    gc.collect()
    outcome["holders"] = holders(canary)
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
