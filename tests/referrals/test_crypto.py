"""Envelope encryption: associated data binds ciphertexts to their referral and field, keys
rotate without touching ciphertext, and configuration mistakes fail loudly."""

import base64
import io
import os
import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from referrals import crypto
from referrals.models import PersonalData, ReferralKey

NEW_KEK = "k2026:" + base64.b64encode(b"n" * 32).decode()


def test_round_trip_and_binding():
    key = crypto.new_data_key()
    rid = uuid.uuid4()
    blob = crypto.encrypt_field(key, rid, "reason", {"a": "é"})
    assert crypto.decrypt_field(key, rid, "reason", blob) == {"a": "é"}
    with pytest.raises(crypto.KeyUnavailable):
        crypto.decrypt_field(key, rid, "health", blob)
    with pytest.raises(crypto.KeyUnavailable):
        crypto.decrypt_field(key, uuid.uuid4(), "reason", blob)
    with pytest.raises(crypto.KeyUnavailable):
        crypto.decrypt_field(crypto.new_data_key(), rid, "reason", blob)
    assert blob != crypto.encrypt_field(key, rid, "reason", {"a": "é"}), "nonces must differ"


def test_wrapped_key_is_bound_to_its_referral():
    rid = uuid.uuid4()
    kid, wrapped = crypto.wrap(rid, b"k" * 32)
    assert crypto.unwrap(rid, kid, wrapped) == b"k" * 32
    with pytest.raises(crypto.KeyUnavailable):
        crypto.unwrap(uuid.uuid4(), kid, wrapped)
    with pytest.raises(crypto.KeyUnavailable):
        crypto.unwrap(rid, "unknown-kid", wrapped)


def test_ciphertext_swapped_between_referrals_does_not_decrypt(create_referral, receiver):
    a = create_referral()["id"]
    b = create_referral()["id"]
    stolen = PersonalData.objects.get(referral_id=a, field="reason").ciphertext
    PersonalData.objects.filter(referral_id=b, field="reason").update(ciphertext=stolen)
    response = receiver.get(f"/api/v1/referrals/{b}")
    assert response.status_code == 500
    assert "Wants" not in response.content.decode()


@pytest.mark.parametrize(
    "spec", ["", "nocolon", "k:notbase64!", "k:" + base64.b64encode(b"short").decode()]
)
def test_bad_keyring_configuration(spec, settings):
    settings.REFERRAL_KEKS = spec
    with pytest.raises(ImproperlyConfigured):
        crypto.keyring()


def test_rotate_keys(create_referral, receiver, settings):
    old = [create_referral()["id"] for _ in range(3)]
    ciphertexts = dict(PersonalData.objects.values_list("pk", "ciphertext"))
    settings.REFERRAL_KEKS = f"{NEW_KEK},{settings.DEV_REFERRAL_KEKS}"
    newer = create_referral()["id"]
    assert ReferralKey.objects.get(referral_id=newer).kid == "k2026"
    out = io.StringIO()

    call_command("rotate_keys", "--batch", "2", stdout=out)

    assert "Rewrapped 3 data keys with key-encryption key k2026" in out.getvalue()
    assert set(ReferralKey.objects.values_list("kid", flat=True)) == {"k2026"}
    assert {pk: bytes(c) for pk, c in PersonalData.objects.values_list("pk", "ciphertext")} == {
        pk: bytes(c) for pk, c in ciphertexts.items()
    } | {
        pk: bytes(c)
        for pk, c in PersonalData.objects.filter(referral_id=newer).values_list("pk", "ciphertext")
    }
    # The old KEK can now be removed: everything still reads.
    settings.REFERRAL_KEKS = NEW_KEK
    for rid in [*old, newer]:
        assert receiver.get(f"/api/v1/referrals/{rid}").json()["reason"]
    call_command("rotate_keys", stdout=out)
    assert "Rewrapped 0 data keys" in out.getvalue()


def test_missing_kek_is_refused_not_guessed(create_referral, receiver, settings):
    rid = create_referral()["id"]
    settings.REFERRAL_KEKS = NEW_KEK
    response = receiver.get(f"/api/v1/referrals/{rid}")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"


def test_production_settings_require_referral_keks():
    env = {
        k: v for k, v in os.environ.items() if k not in {"REFERRAL_KEKS", "DJANGO_SETTINGS_MODULE"}
    }
    env["SECRET_KEY"] = "s" * 60
    env.setdefault("DATABASE_URL", "postgres:///unused")
    code = "import api.settings.production"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "REFERRAL_KEKS must be set" in result.stderr
    env["REFERRAL_KEKS"] = NEW_KEK
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
