"""FHIR test helpers: the referral of tests/referrals/conftest.py written as a transaction
Bundle, and calls with FHIR's media types."""

import copy
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from referrals.fhir import codes

BASE = "/fhir/r4"
FHIR_JSON = "application/fhir+json"


def transaction_bundle(sender, receiver, service, /, **overrides) -> dict:
    """The same referral as referral_payload(), as a clinic's system would send it."""
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "extension": [
            {
                "url": codes.SAFE_CONTACT,
                "extension": [
                    {"url": "do-not-contact", "valueBoolean": False},
                    {"url": "channel", "valueCode": "signal"},
                    {"url": "channel", "valueCode": "sms"},
                    {"url": "safe-times", "valueString": "weekdays 10-12"},
                    {"url": "voicemail-ok", "valueBoolean": False},
                    {"url": "may-name-organisation", "valueBoolean": False},
                    {"url": "neutral-name", "valueString": "Ana from the studio"},
                    {"url": "code-word", "valueString": "sunflower"},
                    {"url": "instructions", "valueString": "Text first; never call after 18:00."},
                ],
            },
            {
                "url": codes.PRONOUNS,
                "extension": [{"url": "value", "valueCodeableConcept": {"text": "she/her"}}],
            },
            {
                "url": codes.AGE_BAND_EXTENSION,
                "valueCodeableConcept": {"coding": [{"system": codes.AGE_BAND, "code": "25_34"}]},
            },
            {"url": codes.INTERPRETER_REQUIRED, "valueBoolean": False},
        ],
        "name": [{"use": "anonymous", "text": "Mia"}],
        "telecom": [
            {"system": "phone", "value": "+351 900 000 000"},
            {"system": "other", "value": "mia.42"},
        ],
        "communication": [
            {"language": {"coding": [{"system": codes.BCP47, "code": "pt-BR"}]}},
            {"language": {"coding": [{"system": codes.BCP47, "code": "es"}]}},
        ],
    }
    service_request = {
        "resourceType": "ServiceRequest",
        "contained": [patient],
        "extension": [
            {"url": codes.HEALTH_DETAILS, "valueString": "Missed last PrEP refill."},
            {"url": codes.LEGAL_DETAILS, "valueString": "Landlord threatening eviction."},
        ],
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": codes.TAXONOMY, "code": "sti-testing"}]}],
        "priority": "urgent",
        "subject": {"reference": "#p1"},
        "requester": {"reference": f"Organization/{sender.pk}"},
        "performer": [{"reference": f"HealthcareService/{service.pk}"}],
        "reasonCode": [{"text": "Wants PrEP and an STI test."}],
        "supportingInfo": [{"reference": "urn:uuid:consent-1"}],
    }
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": codes.TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": "urn:uuid:sr-1"},
        "for": {"type": "Patient"},
        "priority": "urgent",
        "requester": {"reference": f"Organization/{sender.pk}"},
        "owner": {"reference": f"Organization/{receiver.pk}"},
    }
    consent = {
        "resourceType": "Consent",
        "extension": [
            {"url": codes.CONSENT_METHOD, "valueCode": "verbal"},
            {"url": codes.CONSENT_LANGUAGE, "valueCode": "pt-BR"},
            {"url": codes.WORDING_VERSION, "valueString": "2026-10"},
            {"url": codes.RECORDED_BY, "valueString": "staff-17"},
        ],
        "status": "active",
        "scope": {"coding": [{"system": codes.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": codes.ACT_CODE, "code": "IDSCL"}]}],
        "patient": {"type": "Patient"},
        "dateTime": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "performer": [{"type": "Patient"}],
        "organization": [{"reference": f"Organization/{sender.pk}"}],
        "policyRule": {"coding": [{"system": codes.ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {"coding": [{"system": codes.PARTICIPATION_TYPE, "code": "IRCP"}]},
                    "reference": {"reference": f"Organization/{receiver.pk}"},
                }
            ],
            "purpose": [{"system": codes.CONSENT_PURPOSE, "code": "sexual-health"}],
            "class": [
                {"system": codes.DATA_CATEGORY, "code": category}
                for category in ("contact", "health", "legal", "notes")
            ],
        },
    }
    resources = {"ServiceRequest": service_request, "Task": task, "Consent": consent}
    for name, change in overrides.items():
        change(resources[name])
    full_urls = {
        "ServiceRequest": "urn:uuid:sr-1",
        "Task": "urn:uuid:task-1",
        "Consent": "urn:uuid:consent-1",
    }
    return copy.deepcopy(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": full_urls[name],
                    "resource": resource,
                    "request": {"method": "POST", "url": name},
                }
                for name, resource in resources.items()
            ],
        }
    )


def post(client, path, body, content_type=FHIR_JSON, **headers):
    return client.generic("POST", BASE + path, json.dumps(body), content_type, **headers)


def put(client, path, body, **headers):
    return client.generic("PUT", BASE + path, json.dumps(body), FHIR_JSON, **headers)


def patch(client, path, operations, **headers):
    return client.generic(
        "PATCH", BASE + path, json.dumps(operations), "application/json-patch+json", **headers
    )


def get(client, path, **headers):
    return client.get(BASE + path, **headers)


def outcome(response, status: int) -> dict:
    """The answer is an OperationOutcome with this status, never a problem document."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == FHIR_JSON, response["Content-Type"]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(issue["severity"] == "error" for issue in body["issue"])
    return body


@pytest.fixture
def bundle(sender_org, receiver_org, service, partnership):
    from tests.referrals.conftest import ensure_taxonomy

    ensure_taxonomy()

    def make(**overrides):
        return transaction_bundle(sender_org, receiver_org, service, **overrides)

    return make


@pytest.fixture
def fhir_create(sender, bundle):
    """POST a transaction as the sender; returns the referral id."""

    def create(**overrides):
        response = post(sender, "", bundle(**overrides))
        assert response.status_code == 200, response.content
        location = response.json()["entry"][1]["response"]["location"]
        return location.rpartition("/")[2]

    return create


# The real Celery worker of the webhook tests, for the round trip.
from tests.api.webhooks.conftest import worker  # noqa: E402, F401
