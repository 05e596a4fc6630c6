"""Envelope encryption of personal data (AES-256-GCM, `cryptography`).

Each referral has a random 256-bit data key. The data key is stored only wrapped (encrypted)
by a key-encryption key (KEK) from the environment, `REFERRAL_KEKS="kid1:base64,kid2:base64"`;
the first KEK is primary and wraps new keys, the others only unwrap until `rotate_keys` has
rewrapped everything. Every ciphertext carries associated data naming its referral and field,
so a ciphertext copied to another row or referral fails authentication instead of decrypting.

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


class KeyUnavailable(Exception):
    """The KEK that wrapped a data key is not configured, or a ciphertext failed to verify."""


@dataclass(frozen=True)
class Keyring:
    primary: str
    keys: dict[str, bytes]


@lru_cache(maxsize=4)
def _parse(spec: str) -> Keyring:
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
        if not sep or not kid or len(key) != 32:
            raise ImproperlyConfigured(
                "REFERRAL_KEKS must be 'kid:base64-of-32-bytes' items separated by commas."
            )
        keys[kid] = key
        primary = primary or kid
    if primary is None:
        raise ImproperlyConfigured("REFERRAL_KEKS is empty: personal data cannot be encrypted.")
    return Keyring(primary=primary, keys=keys)


def keyring() -> Keyring:
    return _parse(settings.REFERRAL_KEKS)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    blob = bytes(blob)
    if blob[:1] != FORMAT_V1:
        raise KeyUnavailable("unknown ciphertext format")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise KeyUnavailable("ciphertext failed authentication") from None


def _key_aad(referral_id: uuid.UUID) -> bytes:
    return b"srn:data-key:" + str(referral_id).encode()


def _field_aad(referral_id: uuid.UUID, field: str) -> bytes:
    return b"srn:field:" + str(referral_id).encode() + b":" + field.encode()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap(referral_id: uuid.UUID, data_key: bytes) -> tuple[str, bytes]:
    """Wrap a data key with the primary KEK; returns (kid, wrapped)."""
    ring = keyring()
    return ring.primary, _seal(ring.keys[ring.primary], data_key, _key_aad(referral_id))


def unwrap(referral_id: uuid.UUID, kid: str, wrapped: bytes) -> bytes:
    kek = keyring().keys.get(kid)
    if kek is None:
        raise KeyUnavailable(f"key-encryption key {kid!r} is not configured")
    return _open(kek, wrapped, _key_aad(referral_id))


def encrypt_field(data_key: bytes, referral_id: uuid.UUID, field: str, value) -> bytes:
    plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return _seal(data_key, plaintext, _field_aad(referral_id, field))


def decrypt_field(data_key: bytes, referral_id: uuid.UUID, field: str, blob: bytes):
    return json.loads(_open(data_key, blob, _field_aad(referral_id, field)))
