"""A worker must not keep a person's details in memory after their referral is shredded. Shared
serializer fields bound to the first request's serializer kept its input (and so the first
person's details) for the worker's whole life. The attack is a fresh worker process (the first
request is the one that was kept): create a referral with a canary, read it, shred it, collect
garbage, and walk every object for the canary."""

import json
import os
from pathlib import Path

import pytest
from rest_framework import serializers

from api.serializers import FieldsBoundOnce
from referrals.api.serializers import ReferralCreateSerializer
from tests.conftest import database_url, issue_token
from tests.referrals.conftest import ensure_taxonomy
from tests.servers import run_python

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_a_fresh_worker_holds_no_canary_after_shredding(
    sender_org, receiver_org, partnership, service, make_application
):
    ensure_taxonomy()
    sender = issue_token(make_application(sender_org))
    receiver = issue_token(make_application(receiver_org))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.test",
        "DATABASE_URL": database_url(),
        "PYTHONPATH": str(ROOT),
    }

    arguments = [sender, receiver, str(receiver_org.pk), str(service.pk)]
    result = run_python("-m", "tests.referrals.memory_worker", *arguments, env=env, timeout=300)

    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["statuses"] == [201, 200, 201, 200], outcome
    assert outcome["read_before_shredding"], "the canary must have reached the worker"
    assert outcome["personal_data"] == "revoked"
    assert "builtins.list" in outcome["control"], "the walk must find a copy that is kept"
    assert outcome["holders"] == [], outcome["holders"]


class Outer(FieldsBoundOnce, serializers.Serializer):
    name = serializers.CharField()


def test_shared_fields_never_belong_to_a_serializer_with_data():
    first = Outer(data={"name": "first person"})
    assert first.is_valid()
    assert first.fields["name"].parent is not first
    assert not hasattr(first.fields["name"].parent, "initial_data")
    assert Outer(data={"name": "second"}).fields is first.fields


def test_referral_create_fields_hold_no_request(payload):
    serializer = ReferralCreateSerializer(data=payload())
    assert serializer.is_valid(), serializer.errors
    nested = [serializer.fields[name].fields for name in ("person", "safe_contact", "consent")]
    for fields in (serializer.fields, *nested):
        for field in fields.values():
            assert field.root is not serializer
            assert not hasattr(field.root, "initial_data")
