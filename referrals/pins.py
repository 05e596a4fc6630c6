"""Secrets of self-service: the person's PIN (a slow hash, scrypt from the standard library),
their short-lived tokens (stored as SHA-256 checksums), and keyed hashes of claim codes and
client addresses, so throttle and lock rows can be matched but never read back.

The PIN hash is kept only inside the referral's encrypted personal data (see services), so it
is destroyed with the rest; the slowness matters for the time the attacker holds a data key.
"""

import base64
import hashlib
import hmac
import secrets

from django.utils.crypto import salted_hmac

# scrypt cost, Django's own for passwords (16 MiB per check). Stored in each hash, so raising it
# later leaves older hashes verifiable.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
ALGORITHM = "scrypt"

PIN_MIN, PIN_MAX = 4, 8
TOKEN_PREFIX = "srn_self_"

# Domain separation: each keyed hash has its own key derived from SECRET_KEY. Changing
# SECRET_KEY only forgets throttle windows and locks.
CODE_SALT = "srn.referrals.self-service.code"
ADDRESS_SALT = "srn.referrals.self-service.address"


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=HASH_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pin_hash(pin: str) -> str:
    """`scrypt$n$r$p$salt$hash`: everything needed to check the PIN again, nothing more."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{ALGORITHM}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


# The hash of a PIN nobody knows (32 random hex digits, thrown away), with the current cost:
# checked when a code opens nothing, so that costs the same scrypt as a wrong PIN. A constant,
# so no process pays for making it on its first unknown code.
DECOY = "scrypt$16384$8$1$Zn4HnxBaGwELKCqEWkURFA==$DmBLnodtsgdJHcahM/jNxthpx+f/whr9xg55G0UHGvM="


def pin_matches(pin: str, stored: str | None) -> bool:
    """Whether `pin` matches `stored`; with no stored hash, the decoy is checked and fails."""
    known = stored is not None
    algorithm, n, r, p, salt, digest = (stored or DECOY).split("$")
    if algorithm != ALGORITHM:
        return False
    computed = _scrypt(pin, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, base64.b64decode(digest)) and known


def normalise_code(code: str) -> str:
    """What a person types from a slip: any case, with spaces or dashes between groups."""
    return "".join(code.split()).replace("-", "").upper()


def code_key(code: str) -> str:
    return salted_hmac(CODE_SALT, normalise_code(code), algorithm="sha256").hexdigest()


def address_key(address: str) -> str:
    """A client address as a throttle key: keyed, so the table never holds an address, nor a
    hash anyone could reverse by trying the 2**32 IPv4 addresses."""
    return salted_hmac(ADDRESS_SALT, address, algorithm="sha256").hexdigest()[:32]


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
