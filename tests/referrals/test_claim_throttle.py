"""Claim-code look-ups have their own budget per OAuth application, beside the general one: a
prober runs into it whether its guesses hit or miss, and so does the real code afterwards."""

import re

from django.conf import settings
from django.test import override_settings

from tests.api.helpers import assert_problem

# A day-long window, so the test never straddles a window boundary.
CLAIM_BUDGET = override_settings(
    REST_FRAMEWORK={
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "claim": "4/d",
        },
    }
)


def claim(client, code):
    return client.get(f"/api/v1/referrals/claim/{code}")


@CLAIM_BUDGET
def test_guessing_claim_codes_runs_into_a_429(create_referral, receiver, stranger, api_client_for):
    code = create_referral()["claim_code"]
    for guess in ("AAAA2222", "BBBB3333", code, "CCCC4444"):
        response = claim(stranger, guess)
        assert response.status_code == 404
        assert response["RateLimit-Policy"] == '"claim";q=4;w=86400'
    response = claim(stranger, "DDDD5555")
    body = assert_problem(response, 429)
    assert body["type"] == "/problems/throttled"
    assert 0 < int(response["Retry-After"]) <= 86400
    assert re.fullmatch(r'"claim";r=0;t=\d+', response["RateLimit"])
    # The receiver's own look-up is not spent by a stranger's guesses...
    assert claim(receiver, code).status_code == 200
    # ...and the stranger's other requests still pass: only claim look-ups are held.
    assert stranger.get("/api/v1/referrals?box=inbox").status_code == 200


@CLAIM_BUDGET
def test_the_receiver_is_held_too_hits_and_misses_alike(create_referral, receiver):
    code = create_referral()["claim_code"]
    for attempt in range(4):
        assert claim(receiver, code if attempt % 2 else "ZZZZ9999").status_code in (200, 404)
    assert_problem(claim(receiver, code), 429)
