"""A referral created through a transaction Bundle is the REST API's own referral: the same
service (partnership gating, consent categories, encryption, events), the same idempotency."""

import json
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from api.models import IdempotencyKey
from partners.models import Service
from referrals.fhir import codes
from referrals.models import PersonalData, Referral
from tests.referrals.fhir.conftest import get, outcome, post


def test_a_transaction_creates_the_referral_the_rest_api_shows(sender, receiver, bundle):
    response = post(sender, "", bundle())
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json"
    answer = response.json()
    assert answer["type"] == "transaction-response"
    locations = [entry["response"]["location"] for entry in answer["entry"]]
    referral_id = locations[0].rpartition("/")[2]
    assert locations == [
        f"ServiceRequest/{referral_id}",
        f"Task/{referral_id}",
        f"Consent/{referral_id}",
    ]
    task = answer["entry"][1]["resource"]
    assert task["status"] == "requested"
    assert task["identifier"][0]["value"] == Referral.objects.get(pk=referral_id).claim_code
    assert "Mia" not in response.content.decode()

    rest = receiver.get(f"/api/v1/referrals/{referral_id}").json()
    assert rest["person"] == {
        "name": "Mia", "pronouns": "she/her", "age_band": "25_34",
        "languages": ["pt-BR", "es"], "interpreter_needed": False,
    }  # fmt: skip
    assert rest["safe_contact"]["channels"] == ["signal", "sms"]
    assert rest["safe_contact"]["code_word"] == "sunflower"
    assert rest["contact"] == {"phone": "+351 900 000 000", "handle": "mia.42"}
    assert rest["reason"] == "Wants PrEP and an STI test."
    assert rest["health"] == "Missed last PrEP refill."
    assert rest["referral"]["urgency"] == "soon"
    assert rest["referral"]["needs"] == ["sti-testing"]
    assert rest["consent"]["recorded_by"] == "staff-17"
    assert rest["consent"]["purpose"] == "sexual-health"
    assert sorted(rest["consent"]["data_categories"]) == ["contact", "health", "legal", "notes"]
    assert PersonalData.objects.filter(referral_id=referral_id).count() == 7

    read = get(receiver, f"/Task/{referral_id}")
    assert read.status_code == 200, read.content
    assert read["ETag"] == 'W/"1"'


def _entry(bundle, resource_type):
    return next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def _patient(resource):
    return resource["contained"][0]


@pytest.mark.parametrize(
    ("element", "value", "why"),
    [
        (
            "identifier",
            [{"system": "urn:oid:1.2.3", "value": "MRN-123"}],
            "identifier from another system",
        ),
        ("birthDate", "1990-05-01", "age band"),
        ("address", [{"city": "Lisboa"}], "address is never stored"),
        ("gender", "female", "not accepted"),
    ],
)
def test_patient_identifying_elements_are_refused_saying_why(sender, bundle, element, value, why):
    body = bundle(ServiceRequest=lambda sr: _patient(sr).update({element: value}))
    result = outcome(post(sender, "", body), 422)
    issues = [issue for issue in result["issue"] if issue.get("expression")]
    assert issues[0]["expression"] == [f"Bundle.entry[0].resource.contained[0].{element}"]
    assert why in issues[0]["diagnostics"]
    assert not Referral.objects.exists()


def test_a_patient_resource_of_its_own_is_refused(sender, bundle):
    body = bundle()
    body["entry"].append(
        {
            "resource": {"resourceType": "Patient", "id": "x"},
            "request": {"method": "POST", "url": "Patient"},
        }
    )
    result = outcome(post(sender, "", body), 422)
    assert "contained in the ServiceRequest" in str(result)


def test_fields_the_consent_does_not_cover_are_refused_where_they_were_sent(sender, bundle):
    def only_notes(consent):
        consent["provision"]["class"] = [{"system": codes.DATA_CATEGORY, "code": "notes"}]

    def no_details(sr):
        sr["extension"] = []

    result = outcome(post(sender, "", bundle(Consent=only_notes, ServiceRequest=no_details)), 422)
    expressions = [issue.get("expression") for issue in result["issue"]]
    assert ["Bundle.entry[0].resource.contained[0].telecom[0]"] in expressions


def test_no_active_partnership_no_referral(sender, bundle, partnership):
    partnership.status = "suspended"
    partnership.save()
    result = outcome(post(sender, "", bundle()), 422)
    assert result["issue"][0]["code"] == "business-rule"
    assert "partnership" in result["issue"][0]["diagnostics"]
    assert not Referral.objects.exists()


def test_the_requester_is_the_callers_own_organisation(sender, bundle, stranger_org):
    def forged(task):
        task["requester"] = {"reference": f"Organization/{stranger_org.pk}"}

    result = outcome(post(sender, "", bundle(Task=forged)), 422)
    assert result["issue"][1]["expression"] == ["Bundle.entry[1].resource.requester"]


def test_a_service_of_another_organisation_is_refused(sender, bundle, make_organisation):
    other = Service.objects.create(organisation=make_organisation("Other"), name="Other")

    def elsewhere(sr):
        sr["performer"] = [{"reference": f"HealthcareService/{other.pk}"}]

    result = outcome(post(sender, "", bundle(ServiceRequest=elsewhere)), 422)
    assert ["Bundle.entry[0].resource.performer[0]"] in [
        i.get("expression") for i in result["issue"]
    ]


def test_consent_refused_by_the_person_is_no_referral(sender, bundle):
    def deny(consent):
        consent["provision"]["type"] = "deny"

    result = outcome(post(sender, "", bundle(Consent=deny)), 422)
    assert ["Bundle.entry[2].resource.provision.type"] in [
        i.get("expression") for i in result["issue"]
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resourceType": "Task"}, 400),
        ([], 400),
        ({"resourceType": "Bundle", "type": "batch", "entry": []}, 422),
        ({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Task", "bogus": 1}}]}, 400),
        ({"resourceType": "Bundle", "type": "transaction", "entry": []}, 422),
    ],
)  # fmt: skip
def test_malformed_bundles_are_400_or_422(sender, body, status):
    outcome(post(sender, "", body), status)


def test_an_invalid_date_is_named_by_its_fhir_path(sender, bundle):
    result = outcome(
        post(sender, "", bundle(Consent=lambda c: c.update(dateTime="yesterday"))), 400
    )
    assert ["Bundle.entry[2].resource.dateTime"] in [i.get("expression") for i in result["issue"]]


def test_idempotency_key_replays_the_answer_and_creates_once(sender, bundle):
    body = bundle()
    first = post(sender, "", body, HTTP_IDEMPOTENCY_KEY="clinic-42")
    again = post(sender, "", body, HTTP_IDEMPOTENCY_KEY="clinic-42")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Referral.objects.count() == 1
    outcome(post(sender, "", bundle(Task=lambda t: t.update(priority="urgent")) | {"id": "x"},
                 HTTP_IDEMPOTENCY_KEY="clinic-42"), 422)  # fmt: skip


@pytest.mark.parametrize("where", ["header", "entry"])
def test_if_none_exist_is_a_conditional_create(sender, bundle, where):
    condition = "identifier=https://clinic.example/orders|A-17"
    body = bundle()
    headers = {}
    if where == "header":
        headers["HTTP_IF_NONE_EXIST"] = condition
    else:
        for entry in body["entry"]:
            entry["request"]["ifNoneExist"] = condition
    first = post(sender, "", body, **headers)
    again = post(sender, "", body, **headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert Referral.objects.count() == 1
    key = IdempotencyKey.objects.get()
    assert "A-17" not in key.key and key.object_id == uuid.UUID(referral_detail_id(first))


def referral_detail_id(response) -> str:
    return response.json()["entry"][1]["response"]["location"].rpartition("/")[2]


def test_two_conditions_are_refused(sender, bundle):
    outcome(
        post(sender, "", bundle(), HTTP_IDEMPOTENCY_KEY="k", HTTP_IF_NONE_EXIST="identifier=x"), 400
    )


def test_revocation_forgets_the_condition(sender, bundle):
    response = post(sender, "", bundle(), HTTP_IF_NONE_EXIST="identifier=x|1")
    rid = referral_detail_id(response)
    assert IdempotencyKey.objects.filter(object_id=rid).exists()
    sender.post(f"/api/v1/referrals/{rid}/consent/revoke")
    assert not IdempotencyKey.objects.exists()


def test_the_documented_example_creates_a_referral(sender, receiver_org, service, partnership):
    text = (Path(settings.BASE_DIR) / "docs" / "FHIR.md").read_text()
    example = text.split("```json\n")[1].split("```")[0]
    example = example.replace("<service id>", str(service.pk))
    example = example.replace("<receiver id>", str(receiver_org.pk))
    body = json.loads(example)
    # The example's consent date ages; the rest is used as written.
    body["entry"][2]["resource"]["dateTime"] = timezone.now().isoformat()
    response = post(sender, "", body)
    assert response.status_code == 200, response.content
