"""The attacker of a seized server: a copy of the database (or its raw files) and every secret
the server holds. Written against the storage formats only (referrals/crypto.py's docstring:
a format byte, a 12-byte nonce, AES-256-GCM with associated data naming what a ciphertext
belongs to), not against the application's code, so it runs against any version of it."""

import base64
import json
import re
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 0x01
OVERHEAD = 1 + 12 + 16
WRAPPED_KEY_LENGTH = OVERHEAD + 32
FIELDS = ("person", "safe_contact", "reason", "contact", "health", "legal", "decline_note")
# A row's bytea values sit within a page of its referral id (a heap tuple, a WAL record).
WINDOW = 8192


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes | None:
    blob = bytes(blob)
    if len(blob) < OVERHEAD or blob[0] != FORMAT:
        return None
    try:
        return aead.decrypt(blob[1:13], blob[13:], aad)
    except InvalidTag:
        return None


def server_keys(keks: str, keyring: Path | None) -> list[AESGCM]:
    """Every key the server holds: its key-encryption keys, and every key in its keyring
    directory that one of them unwraps."""
    kek_bytes = [
        base64.b64decode(item.strip().partition(":")[2]) for item in keks.split(",") if item.strip()
    ]
    keys = [AESGCM(kek) for kek in kek_bytes]
    for path in sorted(keyring.iterdir()) if keyring and keyring.is_dir() else []:
        try:
            stored = json.loads(path.read_bytes())
            wrapped = base64.b64decode(stored["wrapped"])
            aad = b"srn:epoch-key:" + str(stored["epoch"]).encode()
        except (ValueError, KeyError, TypeError):
            continue
        for kek in kek_bytes:
            key = _open(AESGCM(kek), wrapped, aad)
            if key is not None:
                keys.append(AESGCM(key))
    return keys


def recover(
    referral_id: uuid.UUID, wrapped: set[bytes], ciphertexts: set[bytes], keys: list[AESGCM]
) -> list[str]:
    """The plaintexts of the referral's fields that any data key, unwrapped from any candidate
    by any of the server's keys, decrypts."""
    aad = b"srn:data-key:" + str(referral_id).encode()
    data_keys = {
        key
        for blob in wrapped
        if len(blob) == WRAPPED_KEY_LENGTH
        for wrapping in keys
        if (key := _open(wrapping, blob, aad)) is not None
    }
    plaintexts = []
    for data_key in data_keys:
        aead = AESGCM(data_key)
        for blob in ciphertexts:
            for field in FIELDS:
                aad = b"srn:field:" + str(referral_id).encode() + b":" + field.encode()
                plain = _open(aead, blob, aad)
                if plain is not None:
                    plaintexts.append(plain.decode())
    return plaintexts


def _varlenas(data: bytes, start: int, end: int) -> set[bytes]:
    """Values framed as PostgreSQL stores a bytea inline (a 1-byte header up to 126 bytes, a
    4-byte one beyond) whose first byte is the format byte."""
    found = set()
    for match in re.finditer(bytes([FORMAT]), data[start:end]):
        at = start + match.start()
        short = data[at - 1] if at >= 1 else 0
        if short & 1 and short > 3:
            value = data[at : at - 1 + (short >> 1)]
            if len(value) >= OVERHEAD:
                found.add(value)
        if at >= 4:
            header = int.from_bytes(data[at - 4 : at], "little")
            if header & 3 == 0 and OVERHEAD + 4 <= header >> 2 <= WINDOW:
                found.add(data[at : at - 4 + (header >> 2)])
    return found


def candidates(root: Path, referral_id: uuid.UUID) -> set[bytes]:
    """Every bytea value near a copy of the referral's id in any file under `root`: table and
    index pages, dead tuples, WAL records and full-page images alike."""
    needle = referral_id.bytes
    found: set[bytes] = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        covered = -1
        at = data.find(needle)
        while at != -1:
            start, end = max(covered, at - WINDOW, 0), at + WINDOW
            if end > start:
                found |= _varlenas(data, start, end)
                covered = end
            at = data.find(needle, at + 1)
    return found
