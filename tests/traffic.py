"""What the two Locust loads send (`make verify`'s mixed load in tests/bench/load.py and
`make cluster-test`'s in tests/cluster/locustfile.py), so both drive the same API traffic."""

from datetime import UTC, datetime, timedelta

SEARCHES = [
    {"taxonomy": ["sti-testing"], "language": "pt"},
    {"taxonomy": ["sti-testing"], "no_id_required": True, "accepting": ["open", "limited"]},
    {"q": "testing", "walk_in": True},
    {"language": "en", "has_capacity": True},
]


def capacity_update(turn: int) -> dict:
    """A capacity a receiving service publishes: a different number each turn, valid 8 hours."""
    return {
        "available": turn % 10,
        "maximum": 10,
        "unit": "appointments",
        "accepting_referrals": "open",
        "valid_until": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
    }
