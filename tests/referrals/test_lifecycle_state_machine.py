"""A Hypothesis state machine over one referral's lifecycle and consent, driven through the API by
both organisations. The expected lifecycle below is written from the issue (the HL7 FHIR Task
statuses for closed-loop referrals), not copied from referrals/services.py, so the two check each
other. Random sequences of actions, by the right side and the wrong one, must:

- never reach a status the lifecycle does not allow (the API's status always equals the model's);
- never show a category the person did not consent to (absent, not null);
- never show any personal data after revocation (410 for reads of it, and no trace of it in
  the lists, the timeline or the claim-code look-up).
"""

import json
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from partners.services import service_create
from tests.referrals.conftest import ALL_CATEGORIES, referral_payload

# action -> (side that may take it, statuses it may start from, status it leads to)
LIFECYCLE = {
    "receive": ("receiver", {"requested"}, "received"),
    "accept": ("receiver", {"received"}, "accepted"),
    "decline": ("receiver", {"received"}, "declined"),
    "hold": ("receiver", {"accepted"}, "on_hold"),
    "resume": ("receiver", {"on_hold"}, "accepted"),
    "start": ("receiver", {"accepted"}, "in_progress"),
    "complete": ("receiver", {"in_progress"}, "completed"),
    "cancel": (
        "sender",
        {"requested", "received", "accepted", "on_hold", "in_progress"},
        "cancelled",
    ),
}
BODIES = {"decline": {"reason": "no_capacity"}, "complete": {"outcome": "service_provided"}}
ALL_STATUSES = {"requested"} | {target for _, _, target in LIFECYCLE.values()}
CATEGORY_FIELDS = ("contact", "health", "legal")


class ReferralLifecycle(RuleBasedStateMachine):
    """One referral per example; the organisations and clients come from the test's fixtures."""

    world: dict = {}

    @initialize(consented=st.sets(st.sampled_from(ALL_CATEGORIES)))
    def create(self, consented):
        self.sender = self.world["sender"]
        self.receiver = self.world["receiver"]
        self.canary = f"canary-{uuid.uuid4().hex}"
        payload = referral_payload(
            self.world["receiver_org"],
            self.world["service"],
            person={"name": f"{self.canary}-name"},
            reason=f"{self.canary}-reason",
            contact={"handle": f"{self.canary}-handle"},
            health=f"{self.canary}-health",
            legal=f"{self.canary}-legal",
            consent={"data_categories": sorted(consented)},
        )
        for field in CATEGORY_FIELDS:
            if field not in consented:
                del payload[field]  # details the person did not agree to share are not sent
        response = self.sender.post("/api/v1/referrals", payload, format="json")
        assert response.status_code == 201, response.content
        self.id = response.json()["id"]
        self.code = response.json()["claim_code"]
        self.consented = set(consented)
        self.status = "requested"
        self.revoked = False
        self.notes = 0

    def client(self, side):
        return self.sender if side == "sender" else self.receiver

    @rule(action=st.sampled_from(sorted(LIFECYCLE)), side=st.sampled_from(["sender", "receiver"]))
    def transition(self, action, side):
        allowed_side, sources, target = LIFECYCLE[action]
        response = self.client(side).post(
            f"/api/v1/referrals/{self.id}/{action}",
            BODIES.get(action, {}),
            format="json",
            HTTP_IF_MATCH="*",
        )
        if side != allowed_side:
            assert response.status_code == 409, (action, side, response.content)
            assert response.json()["type"] == "/problems/wrong-party", (action, side)
        elif self.status in sources:
            assert response.status_code == 200, (action, side, self.status, response.content)
            assert response.json()["status"] == target
            self.status = target
        else:
            assert response.status_code == 409, (action, side, self.status, response.content)

    @rule(side=st.sampled_from(["sender", "receiver"]))
    def stale_transition(self, side):
        """A stale ETag changes nothing, whatever the action (RFC 9110 §13.1.1)."""
        action = next(a for a, (s, sources, _) in LIFECYCLE.items() if s == side)
        response = self.client(side).post(
            f"/api/v1/referrals/{self.id}/{action}",
            BODIES.get(action, {}),
            format="json",
            HTTP_IF_MATCH='"stale-etag"',
        )
        assert response.status_code in (409, 412), response.content

    @rule(side=st.sampled_from(["sender", "receiver"]))
    def add_note(self, side):
        response = self.client(side).post(
            f"/api/v1/referrals/{self.id}/notes",
            {"text": f"{self.canary}-note"},
            format="json",
        )
        if self.revoked:
            assert response.status_code == 410, response.content
        elif "notes" not in self.consented:
            assert response.status_code == 409, response.content
            assert response.json()["type"] == "/problems/not-consented"
        else:
            assert response.status_code == 201, response.content
            self.notes += 1

    @precondition(lambda self: not self.revoked)
    @rule(side=st.sampled_from(["sender", "receiver"]))
    def revoke(self, side):
        """Either side records the person's withdrawal (issue 13)."""
        response = self.client(side).post(f"/api/v1/referrals/{self.id}/consent/revoke")
        assert response.status_code == 200, response.content
        self.revoked = True

    @invariant()
    def status_is_the_models(self):
        if not hasattr(self, "id"):
            return
        assert self.status in ALL_STATUSES
        for side, box in (("sender", "outbox"), ("receiver", "inbox")):
            page = self.client(side).get(f"/api/v1/referrals?box={box}&limit=100")
            assert page.status_code == 200, page.content
            mine = [r for r in page.json()["results"] if r["id"] == self.id]
            assert [r["status"] for r in mine] == [self.status], (side, mine)
            assert self.canary not in json.dumps(page.json())

    @invariant()
    def shows_only_what_was_consented(self):
        if not hasattr(self, "id"):
            return
        for side in ("sender", "receiver"):
            detail = self.client(side).get(f"/api/v1/referrals/{self.id}")
            notes = self.client(side).get(f"/api/v1/referrals/{self.id}/notes")
            timeline = self.client(side).get(f"/api/v1/referrals/{self.id}/timeline")
            assert timeline.status_code == 200, timeline.content
            assert self.canary not in timeline.content.decode()
            if self.revoked:
                assert detail.status_code == 410, detail.content
                assert notes.status_code == 410, notes.content
                assert self.canary not in detail.content.decode() + notes.content.decode()
                continue
            assert detail.status_code == 200, detail.content
            body = detail.json()
            assert f"{self.canary}-name" in json.dumps(body["person"])
            for field in CATEGORY_FIELDS:
                assert (field in body) == (field in self.consented), (side, field, body.keys())
            if "notes" in self.consented:
                assert notes.status_code == 200, notes.content
                assert len(notes.json()["results"]) == self.notes
            else:
                assert notes.status_code == 409, notes.content
                assert notes.json()["type"] == "/problems/not-consented"
        # A claim code leads nowhere once the referral closed or its personal data is gone.
        claim = self.receiver.get(f"/api/v1/referrals/claim/{self.code}")
        closed = self.status in ("declined", "completed", "cancelled", "expired")
        assert claim.status_code == (404 if self.revoked or closed else 200), claim.content
        assert self.canary not in claim.content.decode() or not (self.revoked or closed)


@pytest.fixture
def world(sender, receiver, receiver_org, partnership):
    service = service_create(organisation=receiver_org, name="Testing", taxonomy=["sti-testing"])
    return {
        "sender": sender,
        "receiver": receiver,
        "receiver_org": receiver_org,
        "service": service,
    }


def test_random_lifecycles_stay_legal_and_consent_bound(world):
    ReferralLifecycle.world = world
    run_state_machine_as_test(
        ReferralLifecycle,
        settings=settings(
            max_examples=12,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
