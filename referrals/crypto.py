"""Envelope encryption of personal data (AES-256-GCM, `cryptography`), in three layers.

1. Each referral has a random 256-bit data key; its personal fields are encrypted under it.
2. The data key is stored (ReferralKey) only wrapped by an epoch key. Epoch keys are short-lived
   and kept outside PostgreSQL, in the keyring (`referrals/keyring.py`); destroying one makes
   every copy of every data key it wrapped useless, including copies in database pages, WAL and
   backups taken earlier.
3. Each epoch key is stored wrapped by a key-encryption key (KEK) from the environment,
   `REFERRAL_KEKS="kid1:base64,kid2:base64"`; the first KEK is primary and wraps new epoch keys,
   the others only unwrap until `rotate_keys` has rewrapped everything.

Data keys from before epochs existed are wrapped by a KEK directly (ReferralKey.kid, no epoch)
until the epoch job moves them under an epoch. Every ciphertext carries associated data naming
what it belongs to, so one copied to another row, field or epoch fails authentication instead of
decrypting.

Stored format: 1 version byte, 12-byte random nonce, ciphertext with the 16-byte GCM tag.
"""

import base64
import json
import os
import uuid
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


class KeyUnavailable(Exception):
    """A key that wrapped a data key is not available, or a ciphertext failed to verify."""


@dataclass(frozen=True)
class KeyEncryptionKeys:
    primary: str
    keys: dict[str, bytes]


@lru_cache(maxsize=4)
def _parse(spec: str) -> KeyEncryptionKeys:
    keys: dict[str, bytes] = {}
    primary = None
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            key = b""
        if not sep or not kid or len(key) != KEY_BYTES:
            raise ImproperlyConfigured(
                "REFERRAL_KEKS must be 'kid:base64-of-32-bytes' items separated by commas."
            )
        keys[kid] = key
        primary = primary or kid
    if primary is None:
        raise ImproperlyConfigured("REFERRAL_KEKS is empty: personal data cannot be encrypted.")
    return KeyEncryptionKeys(primary=primary, keys=keys)


def keks() -> KeyEncryptionKeys:
    return _parse(settings.REFERRAL_KEKS)


def _kek(kid: str) -> AESGCM:
    kek = keks().keys.get(kid)
    if kek is None:
        raise KeyUnavailable(f"key-encryption key {kid!r} is not configured")
    return AESGCM(kek)


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + aead.encrypt(nonce, plaintext, aad)


def _check(blob: bytes) -> bytes:
    blob = bytes(blob)
    if blob[:1] != FORMAT_V1 or len(blob) < 1 + NONCE_BYTES + 16:
        raise KeyUnavailable("unknown ciphertext format")
    return blob


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    blob = _check(blob)
    try:
        return aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise KeyUnavailable("ciphertext failed authentication") from None


def _key_aad(referral_id: uuid.UUID) -> bytes:
    return b"srn:data-key:" + str(referral_id).encode()


def _epoch_aad(epoch: int) -> bytes:
    return b"srn:epoch-key:" + str(epoch).encode()


def _field_aad(referral_id: uuid.UUID, field: str) -> bytes:
    return b"srn:field:" + str(referral_id).encode() + b":" + field.encode()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal_epoch_key(epoch: int, key: bytes) -> tuple[str, bytes]:
    """Wrap a new epoch key with the primary KEK; returns (kid, wrapped)."""
    primary = keks().primary
    return primary, _seal(_kek(primary), key, _epoch_aad(epoch))


def open_epoch_key(epoch: int, kid: str, wrapped: bytes) -> AESGCM:
    """The epoch key as a ready cipher. The key's bytes are decrypted into a buffer that is
    zeroed at once: the cipher keeps its own schedule, and the cache that holds it for a few
    minutes then holds no raw copy."""
    blob = _check(wrapped)
    plain = bytearray(len(blob) - 1 - NONCE_BYTES - 16)
    try:
        _kek(kid).decrypt_into(
            blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], _epoch_aad(epoch), plain
        )
        if len(plain) != KEY_BYTES:
            raise KeyUnavailable("an epoch key must be 32 bytes")
        return AESGCM(plain)
    except InvalidTag:
        raise KeyUnavailable("epoch key failed authentication") from None
    finally:
        plain[:] = bytes(len(plain))


def rewrap_epoch_key(epoch: int, kid: str, wrapped: bytes) -> tuple[str, bytes]:
    """The same epoch key wrapped with the primary KEK (for `rotate_keys`)."""
    primary = keks().primary
    key = _open(_kek(kid), wrapped, _epoch_aad(epoch))
    return primary, _seal(_kek(primary), key, _epoch_aad(epoch))


def wrap_data_key(epoch_key: AESGCM, referral_id: uuid.UUID, data_key: bytes) -> bytes:
    return _seal(epoch_key, data_key, _key_aad(referral_id))


def unwrap_data_key(epoch_key: AESGCM, referral_id: uuid.UUID, wrapped: bytes) -> bytes:
    return _open(epoch_key, wrapped, _key_aad(referral_id))


def unwrap_legacy(referral_id: uuid.UUID, kid: str, wrapped: bytes) -> bytes:
    """A data key wrapped by a KEK directly, as before epochs (until the epoch job moves it)."""
    return _open(_kek(kid), wrapped, _key_aad(referral_id))


def encrypt_field(data_key: bytes, referral_id: uuid.UUID, field: str, value) -> bytes:
    plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return _seal(AESGCM(data_key), plaintext, _field_aad(referral_id, field))


def decrypt_field(data_key: bytes, referral_id: uuid.UUID, field: str, blob: bytes):
    return json.loads(_open(AESGCM(data_key), blob, _field_aad(referral_id, field)))
