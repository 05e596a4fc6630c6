"""The disclosure log: one row per response carrying personal fields, none otherwise, and the
sender's endpoint to read them."""

import pytest

from api.audit.models import AuditEntry, Disclosure
from partners.models import Partnership, PartnershipStatus, Service
from tests.referrals.conftest import ALL_CATEGORIES, referral_payload

pytestmark = pytest.mark.django_db

CANARY = "CANARY-d1scl0sure-Quispe"


@pytest.fixture
def sender(api_client_for, make_organisation):
    return api_client_for(make_organisation("Sender collective", kind="sex_worker_led"))


@pytest.fixture
def receiver(api_client_for, make_organisation, sender):
    client = api_client_for(make_organisation("Receiver clinic"))
    Partnership.objects.create(
        proposer=sender.organisation,
        partner=client.organisation,
        status=PartnershipStatus.ACTIVE,
        data_categories=list(ALL_CATEGORIES),
        purposes=["care"],
    )
    client.service = Service.objects.create(organisation=client.organisation, name="Clinic")
    return client


@pytest.fixture
def stranger(api_client_for, make_organisation):
    return api_client_for(make_organisation("Stranger"))


@pytest.fixture
def referral(sender, receiver):
    def create(without=(), **overrides):
        body = referral_payload(receiver.organisation, receiver.service, **overrides)
        for field in without:
            del body[field]
        body["person"]["name"] = CANARY
        body["reason"] = CANARY
        response = sender.post("/api/v1/referrals", body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return create


def disclosures():
    return list(Disclosure.objects.order_by("id"))


def test_detail_records_one_disclosure(referral, receiver):
    created = referral()
    assert disclosures() == []
    response = receiver.get(f"/api/v1/referrals/{created['id']}", HTTP_X_REQUEST_ID="read-0001")
    assert response.status_code == 200
    (row,) = disclosures()
    assert str(row.referral_id) == created["id"]
    assert row.organisation == receiver.organisation
    assert row.client_id == receiver.application.client_id
    assert row.categories == [
        "consent",
        "contact",
        "health",
        "legal",
        "person",
        "reason",
        "safe_contact",
    ]
    assert row.operation == "referrals:detail"
    assert row.request_id == "read-0001"
    assert CANARY not in str(Disclosure.objects.values_list().get())


def test_categories_follow_the_consent(referral, receiver):
    created = referral(
        consent={"data_categories": ["notes"]}, without=("contact", "health", "legal")
    )
    receiver.get(f"/api/v1/referrals/{created['id']}")
    (row,) = disclosures()
    assert row.categories == ["consent", "person", "reason", "safe_contact"]


def test_claim_code_lookup_records_a_disclosure(referral, receiver):
    created = referral()
    response = receiver.get(f"/api/v1/referrals/claim/{created['claim_code']}")
    assert response.status_code == 200
    (row,) = disclosures()
    assert row.operation == "referrals:claim"


def test_notes_record_a_disclosure_only_when_there_are_notes(referral, sender, receiver):
    created = referral()
    notes_url = f"/api/v1/referrals/{created['id']}/notes"
    assert receiver.get(notes_url).status_code == 200
    assert disclosures() == []
    assert sender.post(notes_url, {"text": CANARY}, format="json").status_code == 201
    assert receiver.get(notes_url).status_code == 200
    (row,) = disclosures()
    assert (row.categories, row.operation) == (["notes"], "referrals:notes")


def test_reads_without_personal_data_record_nothing(referral, sender, receiver):
    created = referral()
    for client in (sender, receiver):
        for box in ("inbox", "outbox"):
            assert client.get(f"/api/v1/referrals?box={box}").status_code == 200
        assert client.get(f"/api/v1/referrals/{created['id']}/timeline").status_code == 200
    assert disclosures() == []
    # After revocation the detail answers 410 with no personal data: nothing disclosed.
    revoke = sender.post(f"/api/v1/referrals/{created['id']}/consent/revoke", {}, format="json")
    assert revoke.status_code == 200
    assert receiver.get(f"/api/v1/referrals/{created['id']}").status_code == 410
    assert disclosures() == []


def test_sender_reads_disclosures_after_the_data_is_gone(referral, sender, receiver):
    created = referral()
    receiver.get(f"/api/v1/referrals/{created['id']}")
    receiver.get(f"/api/v1/referrals/claim/{created['claim_code']}")
    sender.post(f"/api/v1/referrals/{created['id']}/consent/revoke", {}, format="json")
    response = sender.get(f"/api/v1/referrals/{created['id']}/disclosures")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["operation"] for r in results] == ["referrals:claim", "referrals:detail"]
    assert results[0]["organisation"] == {
        "id": str(receiver.organisation.pk),
        "name": "Receiver clinic",
    }
    assert results[0]["client_id"] == receiver.application.client_id


def test_disclosures_are_sender_only(referral, receiver, stranger, sender):
    created = referral()
    url = f"/api/v1/referrals/{created['id']}/disclosures"
    unknown_url = "/api/v1/referrals/00000000-0000-4000-8000-000000000000/disclosures"
    # The receiver knows the referral, yet its sender's log answers it as an unknown id does.
    for client in (receiver, stranger):
        hidden, unknown = client.get(url), client.get(unknown_url)
        assert hidden.status_code == unknown.status_code == 404
        assert hidden["Content-Type"] == unknown["Content-Type"] == "application/problem+json"
        assert {k: v for k, v in hidden.json().items() if k != "instance"} == {
            k: v for k, v in unknown.json().items() if k != "instance"
        }
    denied = AuditEntry.objects.filter(action__startswith="denied").order_by("sequence")
    assert [(e.object_type, e.object_id, e.actor_organisation) for e in denied] == [
        ("referral", created["id"], receiver.organisation.pk),
        ("referral", "00000000-0000-4000-8000-000000000000", receiver.organisation.pk),
        ("referral", created["id"], stranger.organisation.pk),
        ("referral", "00000000-0000-4000-8000-000000000000", stranger.organisation.pk),
    ]


def test_disclosures_need_referrals_read(referral, api_client_for, sender):
    created = referral()
    writer = api_client_for(sender.organisation, scopes=["referrals:write"])
    assert writer.get(f"/api/v1/referrals/{created['id']}/disclosures").status_code == 403


@pytest.mark.parametrize("page_size", [2, 10])
def test_disclosure_list_query_count_is_constant(
    referral, sender, receiver, page_size, django_assert_num_queries
):
    created = referral()
    for _ in range(12):
        receiver.get(f"/api/v1/referrals/{created['id']}")
    url = f"/api/v1/referrals/{created['id']}/disclosures?limit={page_size}"
    # Token with its rate-limit count, party check, page (with organisations), audit: none
    # per row.
    with django_assert_num_queries(3):
        response = sender.get(url)
    assert len(response.json()["results"]) == page_size


def test_probes_of_other_organisations_referrals_are_audited(referral, stranger):
    created = referral()
    assert stranger.get(f"/api/v1/referrals/{created['id']}").status_code == 404
    assert stranger.get(f"/api/v1/referrals/claim/{created['claim_code']}").status_code == 404
    assert stranger.get("/api/v1/referrals/claim/ZZZZZZZZ").status_code == 404
    denied = AuditEntry.objects.filter(action__startswith="denied").order_by("sequence")
    # A claim code is never stored, so its two probes read alike (as they must, test_denials).
    assert [(e.action, e.object_id) for e in denied] == [
        ("denied GET referrals:detail", created["id"]),
        ("denied GET referrals:claim", ""),
        ("denied GET referrals:claim", ""),
    ]
    stored = " ".join(str(v) for row in AuditEntry.objects.values_list() for v in row)
    assert created["claim_code"] not in stored
