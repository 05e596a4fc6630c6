"""The epoch keyring: short-lived keys that wrap referral data keys, kept outside PostgreSQL.

Why: a copy of the database (its pages, dead tuples, WAL, backups) keeps every wrapped data key
it ever held, and the key-encryption keys are in the environment, so deleting a data key's row
removes nothing from an attacker holding an older copy. Destroying the key that wrapped every
copy of it does. The epoch job (`services.key_epochs_rotate`) moves the live data keys to a new
epoch and then destroys the old epoch key here, so a destroyed referral's data key becomes
undecryptable everywhere within `REFERRAL_SHRED_WITHIN` (see `Schedule`).

Files: `REFERRAL_KEYRING_DIR/epoch-<n>.key`, JSON naming the KEK and holding the epoch key
wrapped by it. One directory per database, never backed up (docs/DATA.md). The database's
`referrals_keyepoch` rows say which epochs are live; the files hold the keys.

Each process caches the epoch keys it used and the newest epoch's number for `Schedule.cache`,
then drops them, also when idle (a sweeper thread), so a destroyed epoch key leaves every
long-lived process within that time. A forked child starts with an empty cache.
"""

import base64
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from referrals import crypto

EPOCH_FILE = re.compile(r"^epoch-([1-9]\d{0,9})\.key$")
CACHE_AT_MOST = timedelta(minutes=5)


class EpochDestroyed(crypto.KeyUnavailable):
    """The epoch key is not in the keyring: the epoch job destroyed it."""


@dataclass(frozen=True)
class Schedule:
    """The epoch job's timings, all derived from the promise (`bound`)."""

    bound: timedelta
    rotate_after: timedelta
    job_every: timedelta
    cache: timedelta
    grace: timedelta

    @property
    def worst_case(self) -> timedelta:
        """Longest time from a referral's destruction until no key for it is left anywhere: the
        epoch that last wrapped it becomes due (rotate_after), the next run starts a successor
        (job_every), the first run after the grace retires and destroys it (job_every, as
        grace <= job_every), and every process drops its cached copy (cache)."""
        return self.rotate_after + 2 * self.job_every + self.cache


def schedule() -> Schedule:
    bound = settings.REFERRAL_SHRED_WITHIN
    cache = min(bound / 96, CACHE_AT_MOST)
    return Schedule(
        bound=bound,
        rotate_after=bound / 2,
        job_every=settings.REFERRAL_KEY_EPOCH_JOB_EVERY,
        cache=cache,
        # A new epoch is used by every process (their caches refreshed) before the old one is
        # retired, so a create seldom has to retry under the new one.
        grace=2 * cache,
    )


class _Cache:
    """Ciphers of epoch keys and the newest epoch's number, per keyring directory, each with the
    monotonic time it must be dropped at. One sweeper thread per process drops them on time."""

    def __init__(self):
        self.changed = threading.Condition()
        self.ciphers: dict[tuple[str, int], tuple[AESGCM, float]] = {}
        self.newest: dict[str, tuple[int | None, float]] = {}
        self.sweeper: threading.Thread | None = None

    def drop_expired(self) -> None:
        now = time.monotonic()
        for table in (self.ciphers, self.newest):
            for key in [key for key, (_, until) in table.items() if until <= now]:
                del table[key]

    def sweep(self) -> None:
        with self.changed:
            while True:
                self.drop_expired()
                deadlines = [until for _, until in (*self.ciphers.values(), *self.newest.values())]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                self.changed.wait(timeout)

    def put(self, table: dict, key, value) -> None:
        """Store `value` under `key` until the cache time has passed (lock held by the caller)."""
        table[key] = (value, time.monotonic() + schedule().cache.total_seconds())
        if self.sweeper is None:
            self.sweeper = threading.Thread(target=self.sweep, name="keyring-sweeper", daemon=True)
            self.sweeper.start()
        self.changed.notify()


_cache = _Cache()


def _after_fork() -> None:
    """The parent's sweeper does not exist in a child; neither should its keys."""
    global _cache
    _cache = _Cache()


os.register_at_fork(after_in_child=_after_fork)


def forget(epoch: int | None = None) -> None:
    """Drop one epoch's cached key (or everything) from this process now."""
    with _cache.changed:
        if epoch is None:
            _cache.ciphers.clear()
            _cache.newest.clear()
        else:
            for key in [key for key in _cache.ciphers if key[1] == epoch]:
                del _cache.ciphers[key]
            _cache.newest.clear()
        _cache.changed.notify()


@receiver(setting_changed)
def _settings_changed(*, setting, **kwargs) -> None:
    if setting in {"REFERRAL_KEKS", "REFERRAL_KEYRING_DIR", "REFERRAL_SHRED_WITHIN"}:
        forget()


def cached() -> set[int]:
    """The epochs whose keys this process holds now."""
    with _cache.changed:
        return {epoch for (_, epoch) in _cache.ciphers}


def _directory() -> Path:
    return Path(settings.REFERRAL_KEYRING_DIR)


def _directory_key() -> str:
    """The directory as the caches key it: the setting as given, so the hot paths (every
    referral created or read) build no Path."""
    return os.fspath(settings.REFERRAL_KEYRING_DIR)


def _path(epoch: int) -> Path:
    return _directory() / f"epoch-{epoch}.key"


def _fsync_directory() -> None:
    """Make a rename or unlink durable: until the directory is synced, a crash can undo it."""
    fd = os.open(_directory(), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def epochs() -> list[int]:
    """Every epoch with a key file, oldest first."""
    try:
        names = os.listdir(_directory())
    except FileNotFoundError:
        return []
    return sorted(int(match[1]) for name in names if (match := EPOCH_FILE.match(name)))


def newest(*, fresh: bool = False) -> int | None:
    """The epoch new data keys are wrapped under: the newest key file, as this process last
    listed it (`fresh` lists again)."""
    directory = _directory_key()
    with _cache.changed:
        hit = _cache.newest.get(directory)
        if not fresh and hit is not None and hit[1] > time.monotonic():
            return hit[0]
    number = max(epochs(), default=None)
    with _cache.changed:
        _cache.put(_cache.newest, directory, number)
    return number


def _read(epoch: int) -> tuple[str, bytes]:
    try:
        stored = json.loads(_path(epoch).read_bytes())
    except FileNotFoundError:
        raise EpochDestroyed(f"epoch key {epoch} is not in the keyring") from None
    except ValueError:
        raise crypto.KeyUnavailable(f"epoch key file {epoch} is damaged") from None
    return stored["kek"], base64.b64decode(stored["wrapped"])


def _write(epoch: int, kid: str, wrapped: bytes, *, replace: bool) -> None:
    """Write a key file whole or not at all: a temporary file, synced, then linked (a new epoch:
    never over an existing file) or renamed over the old one (a KEK rewrap)."""
    content = json.dumps(
        {"epoch": epoch, "kek": kid, "wrapped": base64.b64encode(wrapped).decode()}
    ).encode()
    directory = _directory()
    temporary = directory / f".epoch-{epoch}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(temporary, _path(epoch))
        else:
            os.link(temporary, _path(epoch))
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory()


def create(epoch: int) -> None:
    """A new random epoch key, wrapped by the primary KEK, written durably; it becomes this
    process's newest epoch at once."""
    _directory().mkdir(mode=0o700, parents=True, exist_ok=True)
    kid, wrapped = crypto.seal_epoch_key(epoch, AESGCM.generate_key(bit_length=256))
    _write(epoch, kid, wrapped, replace=False)
    cipher = crypto.open_epoch_key(epoch, kid, wrapped)
    with _cache.changed:
        _cache.put(_cache.ciphers, (_directory_key(), epoch), cipher)
        _cache.put(_cache.newest, _directory_key(), max(epochs()))


def destroy(epoch: int) -> None:
    """Overwrite the key file, unlink it and sync the directory; then forget the key here.

    The overwrite reaches the same disk blocks only on filesystems that write in place (ext4,
    XFS); copy-on-write filesystems, SSD wear levelling, snapshots and backups of this directory
    keep older blocks (docs/DATA.md)."""
    path = _path(epoch)
    try:
        with path.open("r+b") as file:
            file.write(bytes(os.fstat(file.fileno()).st_size))
            file.flush()
            os.fsync(file.fileno())
        path.unlink()
    except FileNotFoundError:
        pass
    else:
        _fsync_directory()
    forget(epoch)


def rewrap_epoch_keys() -> int:
    """Rewrap every epoch key not wrapped by the primary KEK (for `rotate_keys`)."""
    primary = crypto.keks().primary
    rewrapped = 0
    for epoch in epochs():
        kid, wrapped = _read(epoch)
        if kid != primary:
            _write(epoch, *crypto.rewrap_epoch_key(epoch, kid, wrapped), replace=True)
            rewrapped += 1
    return rewrapped


def _cipher(epoch: int) -> AESGCM:
    key = (_directory_key(), epoch)
    with _cache.changed:
        hit = _cache.ciphers.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
    cipher = crypto.open_epoch_key(epoch, *_read(epoch))
    with _cache.changed:
        _cache.put(_cache.ciphers, key, cipher)
    return cipher


def wrap(epoch: int, referral_id: uuid.UUID, data_key: bytes) -> bytes:
    return crypto.wrap_data_key(_cipher(epoch), referral_id, data_key)


def unwrap(referral_id: uuid.UUID, key) -> bytes:
    """The data key of a ReferralKey (or anything with its `epoch`, `kid` and `wrapped`)."""
    if key.epoch is None:
        return crypto.unwrap_legacy(referral_id, key.kid, key.wrapped)
    return crypto.unwrap_data_key(_cipher(key.epoch), referral_id, key.wrapped)
