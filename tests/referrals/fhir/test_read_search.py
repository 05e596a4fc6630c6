"""Reads and searches: the caller's resources only, paged with `next` links, summaries in
searches, personal data only in a read (gated and logged like the REST detail)."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.audit.models import Disclosure
from partners.models import Capacity, Organisation, Service, TaxonomyTerm
from partners.services import service_create
from referrals.fhir import codes
from referrals.models import Referral
from tests.referrals.fhir.conftest import get, outcome


def test_task_shows_the_lifecycle_without_personal_data(sender, receiver, fhir_create):
    rid = fhir_create()
    for client in (sender, receiver):
        response = get(client, f"/Task/{rid}")
        assert response.status_code == 200, response.content
        task = response.json()
        assert task["status"] == "requested"
        assert task["businessStatus"]["coding"][0]["code"] == "requested"
        assert task["focus"] == {"reference": f"ServiceRequest/{rid}"}
        assert task["owner"]["reference"].endswith(str(receiver.organisation.pk))
        assert task["requester"]["reference"].endswith(str(sender.organisation.pk))
        assert task["priority"] == "urgent"
        assert task["meta"]["versionId"] == "1"
        assert "Mia" not in response.content.decode()
    assert not Disclosure.objects.exists(), "a Task read discloses nothing"


def test_service_request_read_is_the_rest_detail_as_fhir(sender, receiver, fhir_create):
    rid = fhir_create()
    response = get(receiver, f"/ServiceRequest/{rid}")
    assert response.status_code == 200, response.content
    resource = response.json()
    (patient,) = resource["contained"]
    assert resource["subject"] == {"reference": "#patient"}
    assert patient["name"] == [{"use": "anonymous", "text": "Mia"}]
    assert patient["extension"][0]["url"] == codes.SAFE_CONTACT, "safe contact comes first"
    assert {"identifier", "birthDate", "address"}.isdisjoint(patient)
    assert resource["reasonCode"] == [{"text": "Wants PrEP and an STI test."}]
    disclosure = Disclosure.objects.get()
    assert disclosure.organisation_id == receiver.organisation.pk
    assert disclosure.operation == "fhir:service-request"
    assert "consent" not in disclosure.categories and "person" in disclosure.categories


def test_a_suspended_partnership_refuses_the_receiver_as_on_rest(
    sender, receiver, fhir_create, partnership
):
    """409 `partnership-suspended`, as the REST detail answers, never a 403: the receiver's
    token holds every scope."""
    rid = fhir_create()
    partnership.status = "suspended"
    partnership.save()
    body = outcome(get(receiver, f"/ServiceRequest/{rid}"), 409)
    assert body["issue"][0]["code"] == "business-rule"
    assert body["issue"][0]["details"]["coding"][0]["code"] == "partnership-suspended"
    assert "Mia" not in json.dumps(body)
    assert get(sender, f"/ServiceRequest/{rid}").status_code == 200
    assert not Disclosure.objects.filter(organisation=receiver.organisation).exists()


def test_consent_read_carries_the_encrypted_words(receiver, fhir_create):
    rid = fhir_create()
    consent = get(receiver, f"/Consent/{rid}").json()
    assert consent["status"] == "active"
    urls = {extension["url"]: extension for extension in consent["extension"]}
    assert urls[codes.RECORDED_BY]["valueString"] == "staff-17"
    assert consent["provision"]["actor"][0]["reference"]["reference"] == (
        f"Organization/{receiver.organisation.pk}"
    )
    assert Disclosure.objects.get().categories == ["consent"]


def test_searches_show_summaries_and_only_the_callers_referrals(
    sender, receiver, stranger, fhir_create
):
    rid = fhir_create()
    for path in ("/ServiceRequest", "/Consent", "/Task"):
        bundle = get(receiver, path).json()
        assert bundle["type"] == "searchset"
        (entry,) = bundle["entry"]
        assert entry["resource"]["id"] == rid
        assert entry["fullUrl"] == f"http://testserver/fhir/r4{path}/{rid}"
        assert "Mia" not in str(bundle) and "staff-17" not in str(bundle)
        if path != "/Task":
            assert entry["resource"]["meta"]["tag"][0]["code"] == "SUBSETTED"
        assert "entry" not in get(stranger, path).json()
    assert not Disclosure.objects.exists()


def test_task_search_parameters(sender, receiver, fhir_create, receiver_org, sender_org):
    first, second = fhir_create(), fhir_create()
    Referral.objects.filter(pk=second).update(
        status="accepted", updated=timezone.now() + timedelta(days=2)
    )

    def ids(query, client=receiver):
        response = get(client, f"/Task{query}")
        assert response.status_code == 200, response.content
        return {entry["resource"]["id"] for entry in response.json().get("entry", [])}

    assert ids("") == {first, second}
    assert ids(f"?owner=Organization/{receiver_org.pk}") == {first, second}
    assert ids(f"?owner={receiver_org.pk}&requester=Organization/{sender_org.pk}") == {
        first,
        second,
    }
    assert ids(f"?requester=Organization/{receiver_org.pk}") == set()
    assert ids("?status=accepted") == {second}
    assert ids("?status=requested,accepted") == {first, second}
    assert ids("?status=http://hl7.org/fhir/task-status|requested") == {first}
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert ids(f"?_lastUpdated=gt{tomorrow}") == {second}
    assert ids(f"?_lastUpdated=lt{tomorrow}") == {first}
    assert ids(f"?_lastUpdated=ge{timezone.now().year}&_lastUpdated=lt{tomorrow}") == {first}
    assert ids(f"?_id={first}") == {first}


@pytest.mark.parametrize(
    "query",
    ["?colour=red", "?status=pending", "?owner=Practitioner/1", "?_lastUpdated=gt2026-13-01",
     "?_lastUpdated=gt2026-01-01T10:00:00", "?_count=0", "?_count=x", "?_id=1", "?status=",
     "?status:not=accepted", "?_cursor=cD0yMDI2"],
)  # fmt: skip
def test_a_search_it_cannot_run_is_a_400_naming_the_parameter(receiver, query):
    # A cursor of the right shape that no search gave out is refused by a rule: 422.
    body = outcome(get(receiver, f"/Task{query}"), 422 if "_cursor" in query else 400)
    assert body["issue"][0]["code"] in ("invalid", "processing")


def test_lenient_handling_ignores_unknown_parameters(receiver, fhir_create):
    rid = fhir_create()
    response = get(receiver, "/Task?colour=red", HTTP_PREFER="handling=lenient")
    assert [entry["resource"]["id"] for entry in response.json()["entry"]] == [rid]


def test_pages_follow_next_links_without_repeats(receiver, fhir_create):
    created = {fhir_create() for _ in range(5)}
    seen, url, pages = [], "/fhir/r4/Task?_count=2", 0
    while url:
        response = receiver.get(url)
        assert response.status_code == 200, response.content
        bundle = response.json()
        seen += [entry["resource"]["id"] for entry in bundle["entry"]]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next", "").replace("http://testserver", "")
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(created)


@pytest.mark.parametrize("path", ["/Task", "/ServiceRequest", "/Consent"])
def test_a_referral_search_page_is_a_fixed_number_of_queries(receiver, fhir_create, path):
    for _ in range(3):
        fhir_create()
    get(receiver, path)
    with CaptureQueriesContext(connection) as few:
        get(receiver, path)
    for _ in range(3):
        fhir_create()
    with CaptureQueriesContext(connection) as more:
        get(receiver, path)
    assert len(few.captured_queries) == len(more.captured_queries) <= 3


def test_healthcare_service_carries_the_guides_capacity_status(client, make_organisation):
    TaxonomyTerm.objects.get_or_create(
        code="sti-testing", defaults={"names": {"en": "STI testing"}}
    )
    provider = make_organisation("Clinic")
    service = service_create(
        organisation=provider,
        name="Walk-in testing",
        taxonomy=["sti-testing"],
        walk_in=True,
        no_id_required=True,
        capacity={"available": 0, "maximum": 9, "unit": "appointments", "accepting_referrals": "waitlist",
                  "estimated_wait_days": 4},
    )  # fmt: skip
    resource = get(client, f"/HealthcareService/{service.pk}").json()
    (extension,) = resource["extension"]
    assert extension["url"] == codes.CAPACITY_EXTENSION
    parts = {part["url"]: part for part in extension["extension"]}
    assert parts["capacityStatus"]["valueCodeableConcept"]["coding"][0] == {
        "system": codes.SDOHCC_TEMPORARY_CODES, "code": "waitlist", "display": "No Capacity - Has Waitlist",
    }  # fmt: skip
    assert "estimated wait 4 days" in parts["capacityNotes"]["valueString"]
    assert resource["category"][0]["coding"][0]["code"] == "sti-testing"
    assert resource["providedBy"] == {"reference": f"Organization/{provider.pk}"}
    assert "location" not in resource
    assert {c["coding"][0]["code"] for c in resource["characteristic"]} == {
        "no-id-required",
        "walk-in",
    }


def test_healthcare_service_search_by_category_and_last_updated(client, make_organisation):
    for code in ("sti-testing", "contraception"):
        TaxonomyTerm.objects.get_or_create(code=code, defaults={"names": {"en": code}})
    provider = make_organisation("Clinic")
    testing = service_create(organisation=provider, name="Testing", taxonomy=["sti-testing"])
    pills = service_create(organisation=provider, name="Pills", taxonomy=["contraception"])
    Service.objects.filter(pk=pills.pk).update(updated=timezone.now() - timedelta(days=30))
    Capacity.objects.filter(service=pills).update(updated=timezone.now() - timedelta(days=30))

    def ids(query):
        response = get(client, f"/HealthcareService{query}")
        assert response.status_code == 200, response.content
        return {entry["resource"]["id"] for entry in response.json().get("entry", [])}

    assert ids("?service-category=sti-testing") == {str(testing.pk)}
    assert ids(f"?service-category={codes.TAXONOMY}|contraception,sti-testing") == {
        str(testing.pk),
        str(pills.pk),
    }
    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert ids(f"?_lastUpdated=ge{week_ago}") == {str(testing.pk)}
    Capacity.objects.filter(service=pills).update(updated=timezone.now())
    assert ids(f"?_lastUpdated=ge{week_ago}") == {str(testing.pk), str(pills.pk)}, (
        "a capacity change is a change of the HealthcareService"
    )


def test_organizations_read_and_search(client, make_organisation):
    clinic = make_organisation("Casa Segura", kind="clinic", email="info@clinic.example")
    make_organisation("Suspended", suspended=True)
    resource = get(client, f"/Organization/{clinic.pk}").json()
    assert resource["name"] == "Casa Segura"
    assert resource["type"][0]["coding"][0]["code"] == "clinic"
    assert {"system": "email", "value": "info@clinic.example"} in resource["telecom"]
    found = get(client, "/Organization?name=casa").json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == [str(clinic.pk)]
    names = {entry["resource"]["name"] for entry in get(client, "/Organization").json()["entry"]}
    assert "Suspended" not in names
    suspended = Organisation.objects.get(name="Suspended")
    outcome(get(client, f"/Organization/{suspended.pk}"), 404)


def _count_queries(client, path) -> int:
    get(client, path)
    with CaptureQueriesContext(connection) as captured:
        assert get(client, path).status_code == 200
    return len(captured.captured_queries)


def test_directory_and_subscription_searches_are_a_fixed_number_of_queries(
    client, make_organisation
):
    from tests.referrals.fhir.test_subscriptions import subscription_body

    TaxonomyTerm.objects.get_or_create(
        code="sti-testing", defaults={"names": {"en": "STI testing"}}
    )

    def grow():
        provider = make_organisation()
        service_create(organisation=provider, name="Testing", taxonomy=["sti-testing"],
                       capacity={"available": 1, "maximum": 2, "unit": "places"})  # fmt: skip
        body = subscription_body("http://127.0.0.1:9/hook", heartbeat=60)
        assert client.generic("POST", "/fhir/r4/Subscription", json.dumps(body),
                              "application/fhir+json").status_code == 201  # fmt: skip

    grow()
    few = {
        path: _count_queries(client, path)
        for path in ("/HealthcareService", "/Organization", "/Subscription")
    }
    for _ in range(3):
        grow()
    more = {path: _count_queries(client, path) for path in few}
    assert few == more
    assert max(more.values()) <= 3
