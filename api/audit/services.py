"""Appending to the audit trail. Every writer goes through `audit_record`, which takes a
transaction-scoped advisory lock so that concurrent requests form one linear chain."""

import hashlib
import json
import logging
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from api.audit.models import GENESIS_HASH, AuditAnchor, AuditEntry, Disclosure
from api.logging import request_id_var

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock key that serialises appends (and pruning).
AUDIT_LOCK_KEY = 0x5352_4E41_5544  # "SRNAUD"

HASHED_FIELDS = (
    "sequence",
    "time",
    "actor_organisation",
    "actor_application",
    "actor_user",
    "action",
    "object_type",
    "object_id",
    "result",
    "request_id",
    "prev_hash",
)


def _canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 over sorted-key compact JSON of every field but `hash` itself. Times are UTC
    with microseconds (PostgreSQL's precision), so a stored entry hashes the same on reread."""
    values = {}
    for name in HASHED_FIELDS:
        value = getattr(entry, name)
        if name == "time":
            value = _canonical_time(value)
        elif name == "actor_organisation" and value is not None:
            value = str(value)
        values[name] = value
    encoded = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _lock() -> None:
    """Serialise appends (and pruning) until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])


_APPEND = f"""INSERT INTO {AuditEntry._meta.db_table} ({", ".join(("hash", *HASHED_FIELDS))})
VALUES ({", ".join(["%s"] * (len(HASHED_FIELDS) + 1))})"""  # noqa: S608 - names, no input


def _lock_and_chain_tail(*, relaxed_commit: bool) -> tuple[int, str]:
    """Take the lock (see _lock), then the sequence number and hash the next entry chains onto,
    in one call (api_audit_lock_tail, migration api 0010). With `relaxed_commit`, this
    transaction's commit also skips the WAL flush wait (see audit_record)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tail_sequence, tail_hash FROM api_audit_lock_tail(%s, %s)",
            [AUDIT_LOCK_KEY, relaxed_commit],
        )
        last = cursor.fetchone()
    if last is not None:
        return last
    anchor = AuditAnchor.objects.order_by("-pruned_through").first()
    if anchor is not None:
        return anchor.pruned_through, anchor.hash
    return 0, GENESIS_HASH


def audit_record(
    *,
    action: str,
    result: str,
    object_type: str = "",
    object_id: str = "",
    organisation=None,
    application=None,
    user=None,
    request_id: str | None = None,
) -> AuditEntry:
    """Append one entry. Inside a caller's transaction the entry commits (or rolls back) with
    the change it describes; the lock is held until then, which keeps the chain linear."""
    organisation_id = getattr(organisation, "pk", organisation)
    client_id = getattr(application, "client_id", application) or ""
    user_id = getattr(user, "pk", user)
    standalone = not connection.in_atomic_block
    with transaction.atomic():
        # The lock is held until commit, so a synchronous commit (a WAL flush) would cap
        # every audited write in the system at the disk's flush rate. Without the
        # flush a standalone entry is durable at the next WAL flush, which any other commit
        # triggers; a database crash can lose at most the last fraction of a second of
        # entries, as a suffix of the chain, never a hole in it.
        sequence, prev_hash = _lock_and_chain_tail(relaxed_commit=standalone)
        entry = AuditEntry(
            sequence=sequence + 1,
            time=timezone.now(),
            actor_organisation=organisation_id,
            actor_application=client_id,
            actor_user=user_id,
            action=action[:120],
            object_type=object_type[:60],
            object_id=str(object_id or "")[:64],
            result=str(result)[:40],
            request_id=request_id if request_id is not None else _current_request_id(),
            prev_hash=prev_hash,
        )
        entry.hash = entry_hash(entry)
        with connection.cursor() as cursor:
            cursor.execute(_APPEND, [entry.hash, *(getattr(entry, name) for name in HASHED_FIELDS)])
        entry._state.adding = False
    return entry


def _current_request_id() -> str:
    value = request_id_var.get()
    return "" if value == "-" else value


def route_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "-"
    return f"{request.method} {match.view_name}"


def audit_prune_through(sequence: int) -> int:
    """Remove entries 1..sequence (a whole prefix), recording the last removed hash as the new
    anchor. The trigger allows deletes only with `srn.audit_prune` on, and only up to the
    latest anchor. Returns the number of entries removed."""
    with transaction.atomic():
        _lock()
        last = (
            AuditEntry.objects.filter(sequence__lte=sequence)
            .order_by("-sequence")
            .values_list("sequence", "hash")
            .first()
        )
        if last is None:
            return 0
        AuditAnchor.objects.create(pruned_through=last[0], hash=last[1])
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL srn.audit_prune = 'on'")
            cursor.execute("DELETE FROM api_auditentry WHERE sequence <= %s", [last[0]])
            removed = cursor.rowcount
            cursor.execute("SET LOCAL srn.audit_prune = 'off'")
    log.info("audit trail pruned through %s", last[0])
    return removed


# One prepared INSERT: every read of personal data makes one, and the ORM's compiling it was a
# good part of what the detail costs beyond its ceiling.
_DISCLOSED = ("referral", "organisation", "client_id", "categories", "operation", "request_id",
              "created")  # fmt: skip
_DISCLOSE = f"""INSERT INTO {Disclosure._meta.db_table}
({", ".join(Disclosure._meta.get_field(name).column for name in _DISCLOSED)})
VALUES ({", ".join(["%s"] * len(_DISCLOSED))})"""  # noqa: S608 - names, no input


def disclosure_record(*, request, referral, categories, operation: str) -> None:
    """Record that the caller received these personal field groups of `referral` (person,
    safe_contact, reason, contact, health, legal, decline_note, notes). Call it on every read
    path that returns personal fields, before the response leaves: if recording fails, the
    data is not sent either. An empty set records nothing."""
    categories = sorted(set(categories))
    if not categories:
        return None
    http_request = getattr(request, "_request", request)
    application = getattr(http_request, "application", None)
    with connection.cursor() as cursor:
        cursor.execute(
            _DISCLOSE,
            [
                referral.pk,
                http_request.organisation.pk,
                getattr(application, "client_id", ""),
                categories,
                operation,
                getattr(http_request, "request_id", None) or _current_request_id(),
                timezone.now(),
            ],
        )
