"""The smallest valid referral, as the load runs (`make bench`, `make cluster-test`) and the
broker-outage test under `make run` send it: consent given a moment ago, for notes only."""

from datetime import UTC, datetime


def minimal_referral(*, receiver_id: str, service_id: str, name: str) -> dict:
    return {
        "receiver": receiver_id,
        "service": service_id,
        "urgency": "soon",
        "needs": ["sti-testing"],
        "person": {"name": name, "languages": ["pt"]},
        "safe_contact": {"do_not_contact": True},
        "reason": "A test this week.",
        "consent": {
            "consented": True,
            "method": "verbal",
            "language": "pt",
            "given_at": datetime.now(UTC).isoformat(),
            "recorded_by": f"staff-{name.lower()}",
            "purpose": "sexual-health",
            "recipient": receiver_id,
            "data_categories": ["notes"],
            "by_representative": False,
            "wording_version": "2026-10",
        },
    }
