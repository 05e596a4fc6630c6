"""Envelope encryption: associated data binds ciphertexts to their referral, field and epoch,
key-encryption keys rotate without touching ciphertext, and configuration mistakes fail
loudly."""

import base64
import io
import json
import os
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from referrals import crypto, keyring
from referrals.models import KeyEpoch, PersonalData, ReferralKey

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


def test_wrapped_key_is_bound_to_its_referral_and_epoch():
    keyring.create(1)
    keyring.create(2)
    rid = uuid.uuid4()
    wrapped = keyring.wrap(1, rid, b"k" * 32)

    assert keyring.unwrap(rid, SimpleNamespace(epoch=1, kid="", wrapped=wrapped)) == b"k" * 32
    with pytest.raises(crypto.KeyUnavailable):
        keyring.unwrap(uuid.uuid4(), SimpleNamespace(epoch=1, kid="", wrapped=wrapped))
    with pytest.raises(crypto.KeyUnavailable):
        keyring.unwrap(rid, SimpleNamespace(epoch=2, kid="", wrapped=wrapped))
    with pytest.raises(keyring.EpochDestroyed):
        keyring.unwrap(rid, SimpleNamespace(epoch=3, kid="", wrapped=wrapped))


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
        crypto.keks()


def legacy_wrap(referral_id, data_key: bytes) -> bytes:
    """A data key wrapped by the dev KEK directly, as stored before epochs."""
    kek = base64.b64decode(settings.DEV_REFERRAL_KEKS.partition(":")[2])
    nonce = os.urandom(12)
    aad = b"srn:data-key:" + str(referral_id).encode()
    return b"\x01" + nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def epoch_files(directory) -> dict[int, str]:
    return {
        int(path.stem.removeprefix("epoch-")): json.loads(path.read_text())["kek"]
        for path in directory.glob("epoch-*.key")
    }


def test_rotate_keys(create_referral, receiver, settings, referral_keyring):
    old = [create_referral()["id"] for _ in range(2)]
    legacy = create_referral()["id"]
    key = ReferralKey.objects.get(referral_id=legacy)
    data_key = keyring.unwrap(legacy, key)
    ReferralKey.objects.filter(pk=legacy).update(
        epoch=None, kid="dev1", wrapped=legacy_wrap(legacy, data_key)
    )
    assert receiver.get(f"/api/v1/referrals/{legacy}").json()["reason"]
    ciphertexts = dict(PersonalData.objects.values_list("pk", "ciphertext"))
    settings.REFERRAL_KEKS = f"{NEW_KEK},{settings.DEV_REFERRAL_KEKS}"
    newer = create_referral()["id"]
    assert set(epoch_files(referral_keyring).values()) == {"dev1"}
    out = io.StringIO()

    call_command("rotate_keys", "--batch", "2", stdout=out)

    assert (
        "Rewrapped 1 epoch keys with key-encryption key k2026; moved 1 data keys from before "
        "epochs under the newest epoch." in out.getvalue()
    )
    assert set(epoch_files(referral_keyring).values()) == {"k2026"}
    epoch = KeyEpoch.objects.get(retired=None).pk
    assert set(ReferralKey.objects.values_list("epoch", "kid")) == {(epoch, "")}
    assert {pk: bytes(c) for pk, c in PersonalData.objects.values_list("pk", "ciphertext")} == {
        pk: bytes(c) for pk, c in ciphertexts.items()
    } | {
        pk: bytes(c)
        for pk, c in PersonalData.objects.filter(referral_id=newer).values_list("pk", "ciphertext")
    }
    # The old KEK can now be removed: everything still reads.
    settings.REFERRAL_KEKS = NEW_KEK
    for rid in [*old, legacy, newer]:
        assert receiver.get(f"/api/v1/referrals/{rid}").json()["reason"]
    call_command("rotate_keys", stdout=out)
    assert "Rewrapped 0 epoch keys with key-encryption key k2026; moved 0" in out.getvalue()


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
