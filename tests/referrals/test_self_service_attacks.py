"""Attacks on the person's self-service entry, from the attacker's side:

- code enumeration: every code that opens nothing answers the same, and one address soon
  runs out of tries;
- PIN guessing up to the lock: five failures lock the code for 15 minutes, then 30, 60...;
- an unknown code and a wrong PIN answer identically, run the same SQL statements and make the
  same writes (counted, not timed);
- with a self-service token, another referral is out of reach;
- the self-service token is refused on every partner route (walked from the URL
  configuration), and a partner's OAuth token on every self-service route."""

import json
import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from api.audit.models import AuditEntry
from referrals import pins
from referrals.models import PersonalData, Referral, SelfServiceLock
from tests.api.routes import api_routes
from tests.api.test_tenancy_matrix import BODIES, TENANT, World, unknown_kwargs
from tests.referrals.conftest import PIN, act, sign_in

RATES = {"address": "30/h", "code": "20/h"}
SELF_ROUTES = [route for route in api_routes() if route.name.startswith("self:")]
PARTNER_ROUTES = [route for route in api_routes() if not route.name.startswith("self:")]


def table_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = sorted(row[0] for row in cursor.fetchall())
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


SAVEPOINT = re.compile(r'"s\d+_x\d+"')


@contextmanager
def statements():
    """Every SQL statement sent, as its template (values are bound parameters, so two attempts
    with other codes, PINs or times still send the same text)."""
    sent: list[str] = []

    def record(execute, sql, params, many, context):
        sent.append(SAVEPOINT.sub('"sp"', sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield sent


def answer(response) -> tuple:
    body = response.json()
    body.pop("instance", None)
    headers = {
        name: value for name, value in response.items() if name not in ("X-Request-ID", "Date")
    }
    return response.status_code, body, headers


def attempt(code: str, pin: str, address: str):
    """One sign-in with everything it did: the answer, the statements, the rows it added."""
    before = table_counts()
    with statements() as sent:
        response = sign_in(APIClient(), code, pin, REMOTE_ADDR=address)
    after = table_counts()
    added = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    return answer(response), sent, added


@pytest.fixture
def codes(self_referral, create_referral, sender):
    """A code with a PIN, a code without one, and the former code of a closed referral."""
    with_pin = self_referral()["claim_code"]
    without_pin = create_referral()["claim_code"]
    closed = self_referral()
    act(sender, closed["id"], "cancel")
    assert Referral.objects.get(pk=closed["id"]).claim_code is None
    return {"with_pin": with_pin, "without_pin": without_pin, "closed": closed["claim_code"]}


@override_settings(SELF_SERVICE_RATES=RATES)
def test_unknown_and_wrong_answer_alike_with_the_same_statements_and_writes(codes):
    cases = {
        "wrong PIN": attempt(codes["with_pin"], "000001", "198.51.100.1"),
        "unknown code": attempt("ZZZZ2345", "000001", "198.51.100.2"),
        "code without a PIN": attempt(codes["without_pin"], PIN, "198.51.100.3"),
        "code of a closed referral": attempt(codes["closed"], PIN, "198.51.100.4"),
    }
    reference_answer, reference_sent, reference_added = cases["wrong PIN"]
    assert reference_answer[0] == 422
    assert reference_answer[1]["type"] == "/problems/self-service-refused"
    assert reference_sent, "statements were recorded"
    assert reference_added == {
        "referrals_selfservicelock": 1,
        "api_ratelimitwindow": 2,
        "api_auditentry": 2,
    }, reference_added
    for name, (answered, sent, added) in cases.items():
        assert answered == reference_answer, name
        assert sent == reference_sent, name
        assert len(sent) == len(reference_sent), name
        assert added == reference_added, name
    refused = AuditEntry.objects.filter(action="self-service sign-in")
    assert sorted(refused.values_list("result", "object_id")) == [("refused", "")] * 4


@override_settings(SELF_SERVICE_RATES=RATES)
def test_code_enumeration_learns_nothing_and_runs_out_of_tries(codes, self_referral):
    real = self_referral()["claim_code"]
    guesses = [f"{n:08d}".translate(str.maketrans("01", "AB")) for n in range(27)]
    guesses[5:5] = [codes["with_pin"], codes["without_pin"], real]
    answers = {
        json.dumps(answer(sign_in(APIClient(), code, "000001", REMOTE_ADDR="203.0.113.9")))
        for code in guesses
    }
    assert len(guesses) == 30
    assert len(answers) == 1, "thirty codes, real or not, one answer"
    assert json.loads(answers.pop())[0] == 422
    # The address has used its tries: even the right code and PIN are refused from it...
    throttled = sign_in(APIClient(), real, PIN, REMOTE_ADDR="203.0.113.9")
    assert throttled.status_code == 429
    assert throttled.json()["type"] == "/problems/self-service-throttled"
    assert int(throttled["Retry-After"]) > 0
    # ...while the person, elsewhere, is not locked out by it.
    assert sign_in(APIClient(), real, PIN, REMOTE_ADDR="192.0.2.44").status_code == 201


@override_settings(SELF_SERVICE_RATES={"address": "1000/h", "code": "1000/h"})
@pytest.mark.parametrize("which", ["known", "unknown"])
def test_pin_guessing_up_to_the_lock_and_the_lock_doubles(self_referral, which):
    code = self_referral()["claim_code"] if which == "known" else "ZZZZ3456"
    key = pins.code_key(code)

    def guesses(count: int) -> list[int]:
        # Each from another address: the lock is the code's, not the address's.
        return [
            sign_in(APIClient(), code, f"{n:06d}", REMOTE_ADDR=f"192.0.2.{n % 250}").status_code
            for n in range(count)
        ]

    for round_, minutes in enumerate((15, 30, 60), start=1):
        assert guesses(4) == [422] * 4
        started = timezone.now()
        assert guesses(1) == [422], "the fifth failure is still answered as a failure"
        lock = SelfServiceLock.objects.get(key=key)
        assert lock.locks == round_
        assert (
            timedelta(minutes=minutes)
            <= lock.locked_until - started
            < timedelta(minutes=minutes, seconds=5)
        )
        locked = sign_in(APIClient(), code, PIN, REMOTE_ADDR="192.0.2.251")
        assert locked.status_code == 429, "locked: even the right PIN waits"
        assert int(locked["Retry-After"]) > (minutes - 1) * 60
        # The lock runs out (as if the time had passed).
        SelfServiceLock.objects.filter(key=key).update(locked_until=timezone.now())
    right = sign_in(APIClient(), code, PIN, REMOTE_ADDR="192.0.2.252")
    assert right.status_code == (201 if which == "known" else 422)
    if which == "known":
        lock = SelfServiceLock.objects.get(key=key)
        assert (lock.failures, lock.locks, lock.locked_until) == (0, 0, None)


@override_settings(SELF_SERVICE_RATES={"address": "1000/h", "code": "3/h"})
def test_tries_per_code_are_limited_across_addresses(self_referral):
    code = self_referral()["claim_code"]
    for unknown in (False, True):
        target = "ZZZZ4567" if unknown else code
        statuses = [
            sign_in(APIClient(), target, PIN, REMOTE_ADDR=f"192.0.2.{n}").status_code
            for n in range(4)
        ]
        assert statuses == ([422, 422, 422, 429] if unknown else [201, 201, 201, 429])


@pytest.fixture
def two(self_referral, anonymous):
    """Two people's referrals; the first one's self-service token."""
    mine, theirs = self_referral(), self_referral()
    token = sign_in(anonymous, mine["claim_code"]).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, mine, theirs


def test_another_referral_is_out_of_reach_with_a_self_token(two, receiver):
    client, mine, theirs = two
    receiver.get(f"/api/v1/referrals/{theirs['id']}")
    assert client.get(f"/api/v1/self/status?referral={theirs['id']}").status_code == 400
    assert client.get("/api/v1/self/disclosures").json()["results"] == []
    assert (
        client.patch(
            "/api/v1/self/safe-contact", {"do_not_contact": True}, format="json"
        ).status_code
        == 200
    )
    assert client.post("/api/v1/self/withdraw").status_code == 200
    assert not PersonalData.objects.filter(referral_id=mine["id"]).exists()
    assert PersonalData.objects.filter(referral_id=theirs["id"]).count() == 8
    detail = receiver.get(f"/api/v1/referrals/{theirs['id']}").json()
    assert detail["safe_contact"]["do_not_contact"] is False
    for path in ("", "/notes", "/timeline", "/disclosures", "/consent/revoke"):
        response = client.get(f"/api/v1/referrals/{theirs['id']}{path}")
        assert response.status_code in (401, 405), (path, response.status_code)


def test_the_self_token_is_refused_on_every_partner_route(two, make_organisation, api_client_for):
    client, _, _ = two
    world = World(make_organisation, api_client_for)
    built = {}
    tried = 0
    for route in PARTNER_ROUTES:
        kwargs = {}
        if route.name in TENANT:
            builder = TENANT[route.name][0]
            kwargs = built.get(builder) or built.setdefault(builder, getattr(world, builder)())
        elif route.parameters:
            kwargs = unknown_kwargs(route)
        path = route.template.format(**kwargs)
        for method in sorted(route.methods):
            versions = dict(Referral.objects.values_list("pk", "version"))
            body = BODIES.get(route.name, {}) if method != "get" else None
            response = getattr(client, method)(path, body, format="json", HTTP_IF_MATCH='"1"')
            tried += 1
            assert response.status_code == 401, (method, path, response.status_code)
            assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
            assert dict(Referral.objects.values_list("pk", "version")) == versions, path
    assert tried > 50


def test_an_unserved_method_is_405_whatever_the_token(person, sender):
    for client in (person, sender, APIClient()):
        for method in ("put", "trace", "options"):
            response = client.generic(method.upper(), "/api/v1/self/token")
            assert response.status_code == 405, (method, response.content)


def test_a_partner_token_is_refused_on_every_self_route(person, sender, receiver):
    assert len(SELF_ROUTES) == 5
    for client in (sender, receiver):
        for route in SELF_ROUTES:
            for method in sorted(route.methods):
                response = getattr(client, method)(route.template, {}, format="json")
                if (route.name, method) == ("self:token", "post"):
                    assert response.status_code == 401, "a bearer header it cannot honour"
                    continue
                assert response.status_code == 401, (method, route.template)
                assert response["WWW-Authenticate"] == 'Bearer realm="self-service"'
    assert PersonalData.objects.filter(referral_id=person.referral["id"]).exists()
