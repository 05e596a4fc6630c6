"""The request examples in the OpenAPI document tell one story, and it works: this plays every
one of them, in the story's order, against a fresh demo network and expects the status the
document gives for the operation (its 2xx).

The examples name one cast (EXAMPLE_IDS: the collective refers to the clinic's walk-in
service); the player puts the demo network's real ids in their place, and the real claim code
for the example's. Example times are written as of EXAMPLE_NOW and are moved to today. Only
steps the examples cannot hold (an If-Match read, a partnership's acceptance) are the
player's own, and those are named `glue` below. Along the way,
every response header from the declared set must be declared on that response, and every event
the story emitted must match its payload schema in `webhooks:`."""

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import jsonschema
import pytest
from django.test import Client
from django.utils import timezone

from api.models import Event
from api.webhooks import services as webhooks
from api.webhooks.models import WebhookDelivery
from partners.demo import seed_demo
from partners.models import Partnership, Service
from tests.api.helpers import basic_auth
from tests.api.test_openapi import generated, operations, schema  # noqa: F401 (fixtures)
from tests.api.test_openapi_docs import HEADERS

EXAMPLE_NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
COLLECTIVE = "5e2b7f4c-8a1d-4e3f-9b6c-7d8e9f0a1b2c"
CLINIC = "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f"
SERVICE = "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa"
OTHER_SERVICE = "8c6d1f0b-1e2a-4b3c-9d4e-5f6a7b8c9d0e"
CLAIM_CODE = "7KQ4 M2XH"
WEBHOOK_URL = "https://partner.example.org/hooks/srn"
# Tests never reach the internet: the example's receiver becomes one on this machine.
LOCAL_URL = "http://127.0.0.1:9/hooks/srn"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def request_examples(document):
    """(operationId, example name) -> (method, path, media type, value), for every example."""
    found = {}
    for path, method, operation in operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            examples = dict(media.get("examples", {}))
            if "example" in media:
                examples[""] = {"value": media["example"]}
            for name, example in examples.items():
                found[operation["operationId"], name] = (method, path, media_type, example["value"])
    return found


class Player:
    def __init__(self, document, credentials):
        self.document = document
        self.examples = request_examples(document)
        self.by_id = {
            operation["operationId"]: (path, method, operation)
            for path, method, operation in operations(document)
        }
        self.credentials = credentials
        self.tokens = {}
        self.ids = {
            COLLECTIVE: credentials["demo-collective"]["organisation_id"],
            CLINIC: credentials["demo-clinic"]["organisation_id"],
            WEBHOOK_URL: LOCAL_URL,
        }
        self.shift = timezone.now() - EXAMPLE_NOW
        self.played = []
        self.http = Client()

    def real(self, value):
        if isinstance(value, dict):
            return {key: self.real(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.real(item) for item in value]
        if isinstance(value, str) and TIME.match(value):
            moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + self.shift
            return moved.isoformat().replace("+00:00", "Z")
        if isinstance(value, str):
            return self.ids.get(value, value)
        return value

    def call(self, actor, operation_id, example=None, *, headers=None, **path_params):
        path, method, operation = self.by_id[operation_id]
        url = path
        for name, value in path_params.items():
            url = url.replace("{" + name + "}", str(value))
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        if actor in self.tokens:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.tokens[actor]}"
        body, content_type = None, "application/json"
        if example is not None:
            _, _, content_type, value = self.examples[operation_id, example]
            self.played.append((operation_id, example))
            body = self.real(value)
        if content_type == "application/x-www-form-urlencoded":
            data = urlencode(body)
        else:
            data = json.dumps(body) if body is not None else ""
        response = self.http.generic(method.upper(), url, data, content_type=content_type, **extra)
        expected = min(code for code in operation["responses"] if code.startswith("2"))
        where = f"{operation_id} {example or '(glue)'}"
        assert str(response.status_code) == expected, f"{where}: {response.content[:600]!r}"
        declared = set(operation["responses"][expected].get("headers", {}))
        sent = {name for name in HEADERS if response.has_header(name)}
        assert sent <= declared, f"{where}: sends {sorted(sent - declared)} undeclared"
        return response

    def token(self, actor, client_id):
        secret = self.credentials[client_id]["client_secret"]
        response = self.call(
            actor, "create_token", "", headers={"Authorization": basic_auth(client_id, secret)}
        )
        self.tokens[actor] = response.json()["access_token"]

    def etag(self, actor, operation_id, **path_params):
        return {"If-Match": self.call(actor, operation_id, **path_params)["ETag"]}


@pytest.fixture
def demo(db, settings, tmp_path):
    """A fresh demo network in which the examples' two organisations have not agreed yet (the
    examples propose their partnership)."""
    settings.VAR_DIR = tmp_path
    credentials = seed_demo()
    cast = [credentials[c]["organisation_id"] for c in ("demo-collective", "demo-clinic")]
    Partnership.objects.filter(proposer__in=cast, partner__in=cast).delete()
    return credentials


def test_every_request_example_plays_in_order_against_the_demo_network(schema, demo):  # noqa: F811
    play = Player(schema, demo)
    play.token("collective", "demo-collective")
    play.token("clinic", "demo-clinic")

    # The clinic keeps its directory entry and capacity current.
    play.call("clinic", "update_my_organisation", "NewLanguages")
    service = play.call("clinic", "create_service", "Walk-inTesting").json()["id"]
    play.ids[SERVICE] = service
    clinic_id = demo["demo-clinic"]["organisation_id"]
    play.ids[OTHER_SERVICE] = str(
        Service.objects.filter(organisation_id=clinic_id).exclude(pk=service).first().pk
    )
    play.call("clinic", "update_service", "AddALanguage", id=service)
    etag = play.etag("clinic", "get_capacity", id=service)  # glue
    play.call("clinic", "update_capacity", "FourSlots", id=service, headers=etag)
    play.call("clinic", "bulk_update_capacity", "TwoServices")
    play.call("collective", "search_services", "AbortionCareInThaiNearLisbon")

    # The collective proposes the partnership the referral needs; the clinic accepts.
    partnership = play.call("collective", "create_partnership", "Proposal").json()["id"]
    play.call("clinic", "accept_partnership", id=partnership)  # glue

    # A referral, through to completion, with the person's own self-service on the way.
    created = play.call("collective", "create_referral", "AReferralToAClinic").json()
    referral = created["id"]
    play.ids[CLAIM_CODE] = created["claim_code"]
    etag = play.etag("collective", "get_referral", id=referral)  # glue
    play.call(
        "collective", "update_referral_safe_contact", "SignalOnlyNow", id=referral, headers=etag
    )
    play.call("collective", "renew_referral_consent", "RenewedFor90Days", id=referral)
    for action, example in (
        ("receive_referral", "MarkReceivedRequest"),
        ("accept_referral", "AcceptRequest"),
        ("hold_referral", "PutOnHoldRequest"),
        ("resume_referral", "ResumeRequest"),
        ("start_referral", "StartRequest"),
    ):
        etag = play.etag("clinic", "get_referral", id=referral)  # glue
        play.call("clinic", action, example, id=referral, headers=etag)
    play.call("clinic", "create_referral_notes", "ANote", id=referral)
    self_token = play.call("person", "create_self_token", "CodeAndPIN").json()["token"]
    play.tokens["person"] = self_token
    play.call("person", "update_self_safe_contact", "SignalOnly")
    play.call("person", "update_self_safe_contact", "StopAllContact")
    etag = play.etag("clinic", "get_referral", id=referral)  # glue
    play.call("clinic", "complete_referral", "CompleteRequest", id=referral, headers=etag)

    # A second referral the clinic cannot take; the person then stops contact and revokes.
    second = play.call("collective", "create_referral", "AReferralToAClinic").json()["id"]
    etag = play.etag("clinic", "get_referral", id=second)  # glue
    play.call("clinic", "receive_referral", id=second, headers=etag)  # glue
    etag = play.etag("clinic", "get_referral", id=second)  # glue
    play.call("clinic", "decline_referral", "DeclineRequest", id=second, headers=etag)
    etag = play.etag("collective", "get_referral", id=second)  # glue
    play.call(
        "collective", "update_referral_safe_contact", "StopAllContact", id=second, headers=etag
    )
    play.call("collective", "revoke_referral_consent", "ToldByPhone", id=second)

    # A third the collective withdraws before the clinic answers.
    third = play.call("collective", "create_referral", "AReferralToAClinic").json()["id"]
    etag = play.etag("collective", "get_referral", id=third)  # glue
    play.call("collective", "cancel_referral", "CancelRequest", id=third, headers=etag)

    # The collective subscribes to its referrals' events, and re-enables the endpoint.
    endpoint = play.call("collective", "create_webhook_endpoint", "Subscribe").json()["id"]
    play.call("collective", "update_webhook_endpoint", "Re-enable", id=endpoint)

    assert set(play.played) == set(play.examples), set(play.examples) - set(play.played)

    # Every event the story emitted matches its documented payload, and names no key the
    # payload does not document (so an id cannot keep an old name).
    events = list(Event.objects.all())
    assert {event.type for event in events} >= {
        "capacity.updated",
        "partnership.changed",
        "referral.received",
        "referral.status_changed",
        "referral.note_added",
        "referral.consent_renewed",
        "referral.consent_revoked",
        "referral.safe_contact_changed",
    }
    for event in events:
        body = json.loads(webhooks.payload(WebhookDelivery(event=event, sequence=1)))
        name = f"{''.join(p.capitalize() for p in re.split('[._]', event.type))}Event"
        resource = {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}
        jsonschema.validate(body, resource, cls=jsonschema.Draft202012Validator)
        documented = schema["components"]["schemas"][name]["properties"]["data"]["properties"]
        assert set(body["data"]) <= set(documented), (event.type, body["data"])


def test_example_times_move_by_whole_story(schema):  # noqa: F811
    """The examples are written as of EXAMPLE_NOW: the referral's consent was given just
    before, and the capacity holds for the rest of that day."""
    examples = request_examples(schema)
    consent = examples["create_referral", "AReferralToAClinic"][3]["consent"]
    given = datetime.fromisoformat(consent["given_at"].replace("Z", "+00:00"))
    assert timedelta(0) < EXAMPLE_NOW - given < timedelta(hours=1)
    capacity = examples["update_capacity", "FourSlots"][3]
    until = datetime.fromisoformat(capacity["valid_until"].replace("Z", "+00:00"))
    assert timedelta(0) < until - EXAMPLE_NOW < timedelta(days=1)
