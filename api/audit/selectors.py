"""Reads of the audit trail: its head, and a full verification of the chain."""

from dataclasses import dataclass

from api.audit.models import GENESIS_HASH, AuditAnchor, AuditEntry
from api.audit.services import entry_hash


@dataclass(frozen=True)
class Head:
    sequence: int
    hash: str


@dataclass(frozen=True)
class Break:
    """The first entry that does not verify, and why."""

    sequence: int
    reason: str


def audit_head() -> Head:
    last = AuditEntry.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if last is not None:
        return Head(*last)
    anchor = AuditAnchor.objects.order_by("-pruned_through").first()
    if anchor is not None:
        return Head(anchor.pruned_through, anchor.hash)
    return Head(0, GENESIS_HASH)


def audit_verify(*, known_head: Head | None = None, chunk_size: int = 2000) -> Break | None:
    """Recompute the chain from the latest anchor (or the genesis hash). Returns the first
    broken entry, or None when the whole chain holds. A `known_head` a partner kept earlier
    also catches the one edit the chain alone cannot: removing entries from the end."""
    anchor = AuditAnchor.objects.order_by("-pruned_through").first()
    expected_sequence, expected_prev = (
        (anchor.pruned_through + 1, anchor.hash) if anchor else (1, GENESIS_HASH)
    )
    head_hash = None
    entries = AuditEntry.objects.order_by("sequence").iterator(chunk_size=chunk_size)
    for entry in entries:
        if entry.sequence != expected_sequence:
            return Break(expected_sequence, f"entry missing (next present is #{entry.sequence})")
        if entry.prev_hash != expected_prev:
            return Break(entry.sequence, "prev_hash does not match the previous entry's hash")
        if entry_hash(entry) != entry.hash:
            return Break(entry.sequence, "hash does not match the entry's contents")
        if known_head is not None and entry.sequence == known_head.sequence:
            head_hash = entry.hash
        expected_sequence, expected_prev = entry.sequence + 1, entry.hash
    first = anchor.pruned_through + 1 if anchor else 1
    if known_head is not None and known_head.sequence >= first and head_hash != known_head.hash:
        why = "is missing" if head_hash is None else "has another hash"
        return Break(known_head.sequence, f"a previously published head {why}")
    return None
