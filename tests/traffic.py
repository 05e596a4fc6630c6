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


def start_partner(user, config: dict, services: list) -> None:
    """A Locust user's start in either load: the collective's and the clinic's tokens, a
    service of its own to publish capacity for (while there are enough), no ETag yet."""
    user.sender = {"Authorization": f"Bearer {config['sender_token']}"}
    user.receiver = {"Authorization": f"Bearer {config['receiver_token']}"}
    user.service = services.pop() if services else config["services"][0]
    user.etag = None
    user.turn = 0


def next_search(user) -> dict:
    """The user's next search body, in turn."""
    user.turn += 1
    return SEARCHES[user.turn % len(SEARCHES)]


def capacity_request(user, etag_name: str) -> tuple[str, dict]:
    """The user's next capacity PUT, as its URL and the client's keyword arguments; the
    capacity's ETag is read first (as request `etag_name`) when the user has none yet."""
    url = f"/api/v1/services/{user.service}/capacity"
    if user.etag is None:
        current = user.client.get(url, headers=user.receiver, name=etag_name)
        user.etag = current.headers.get("ETag")
    user.turn += 1
    headers = {**user.receiver, "If-Match": user.etag or "*"}
    return url, {"json": capacity_update(user.turn), "headers": headers, "name": "capacity"}
