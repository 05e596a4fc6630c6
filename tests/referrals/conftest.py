"""Factories for referrals: two partner organisations with an active partnership, a service of
the receiver, a valid create payload, and API clients for each side and for a stranger."""

import copy
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from partners.models import Partnership, PartnershipStatus, Service, TaxonomyTerm
from referrals.api.examples import CREATE_EXAMPLE

ALL_CATEGORIES = ["contact", "health", "legal", "notes"]


def referral_payload(receiver, service, /, **overrides) -> dict:
    """The documented create example between `receiver` and `service`, with a phone number,
    health and legal notes, every data category and no self-service PIN."""
    payload = copy.deepcopy(CREATE_EXAMPLE)
    del payload["self_service_pin"]
    consent = payload.pop("consent")
    del consent["purpose_note"]
    payload["safe_contact"].update(
        channels=["signal", "sms"],
        safe_times="weekdays 10-12",
        instructions="Text first; never call after 18:00.",
    )
    payload.update(
        receiver=str(receiver.pk),
        service=str(service.pk),
        contact={"phone": "+351 900 000 000", "handle": "mia.42"},
        reason="Wants PrEP and an STI test.",
        health="Missed last PrEP refill.",
        legal="Landlord threatening eviction.",
        consent={
            **consent,
            "given_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
            "recipient": str(receiver.pk),
            "data_categories": list(ALL_CATEGORIES),
        },
    )
    for key, value in overrides.items():
        if key == "consent":
            payload["consent"].update(value)
        else:
            payload[key] = value
    return copy.deepcopy(payload)


def ensure_taxonomy() -> None:
    """The seeded taxonomy is gone after any earlier transactional test (pytest-django empties
    every table after one), so the codes these tests refer to are made sure of."""
    for code in ("sti-testing", "contraception"):
        TaxonomyTerm.objects.get_or_create(code=code, defaults={"names": {"en": code}})


@pytest.fixture
def sender_org(make_organisation):
    return make_organisation("Red Umbrella Collective", kind="sex_worker_led")


@pytest.fixture
def receiver_org(make_organisation):
    return make_organisation("Clínica Aberta", kind="clinic")


@pytest.fixture
def stranger_org(make_organisation):
    return make_organisation("Unrelated Org", kind="shelter")


def active_partnership(sender_org, receiver_org) -> Partnership:
    """The partnership a referral from `sender_org` to `receiver_org` needs: active, every data
    category."""
    return Partnership.objects.create(
        proposer=sender_org,
        partner=receiver_org,
        status=PartnershipStatus.ACTIVE,
        data_categories=list(ALL_CATEGORIES),
        purposes=["health care"],
    )


@pytest.fixture
def partnership(sender_org, receiver_org):
    return active_partnership(sender_org, receiver_org)


@pytest.fixture
def service(receiver_org):
    return Service.objects.create(organisation=receiver_org, name="Sexual health clinic")


@pytest.fixture
def sender(api_client_for, sender_org):
    return api_client_for(sender_org)


@pytest.fixture
def receiver(api_client_for, receiver_org):
    return api_client_for(receiver_org)


@pytest.fixture
def stranger(api_client_for, stranger_org):
    return api_client_for(stranger_org)


@pytest.fixture
def payload(receiver_org, service, partnership):
    ensure_taxonomy()

    def make(**overrides):
        return referral_payload(receiver_org, service, **overrides)

    return make


@pytest.fixture
def create_referral(sender, payload):
    """POST a referral as the sender and return the 201 body."""

    def create(**overrides):
        response = sender.post("/api/v1/referrals", payload(**overrides), format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return create


def act(client, referral_id, action, etag=None, body=None, **headers):
    """Take a transition with the current ETag (read from the summary when not given)."""
    if etag is None:
        etag = current_etag(client, referral_id)
    return client.post(
        f"/api/v1/referrals/{referral_id}/{action}",
        body or {},
        format="json",
        HTTP_IF_MATCH=etag,
        **headers,
    )


def timeline(client, referral_id) -> list[dict]:
    """The referral's timeline entries, oldest first, as `client` reads them."""
    return client.get(f"/api/v1/referrals/{referral_id}/timeline").json()["results"]


def current_etag(client, referral_id) -> str:
    from referrals.models import Referral

    return Referral.objects.get(pk=referral_id).etag


def database_text() -> str:
    """Every row of every table as JSON text (bytea as hex): what a seized disk would give."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        out = []
        for table in tables:
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
            out.extend(row[0] for row in cursor.fetchall())
    return "\n".join(out)


PIN = "480391"


@pytest.fixture
def self_referral(create_referral):
    """A referral whose person got a PIN with the claim code: its summary, with `pin` added."""

    def create(**overrides):
        created = create_referral(self_service_pin=PIN, **overrides)
        return {**created, "pin": PIN}

    return create


def sign_in(client, code: str, pin: str = PIN, **extra):
    """POST /api/v1/self/token as the person's phone would."""
    return client.post("/api/v1/self/token", {"code": code, "pin": pin}, format="json", **extra)


@pytest.fixture
def person(self_referral):
    """The person of a new self-service referral, signed in: an APIClient with their token."""
    created = self_referral()
    client = APIClient()
    response = sign_in(client, created["claim_code"])
    assert response.status_code == 201, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    client.referral = created
    return client
