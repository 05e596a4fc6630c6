"""The audit trail's hash chain: appends, the database guard, tamper detection, pruning."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from api.audit.models import GENESIS_HASH, AuditAnchor, AuditEntry
from api.audit.selectors import Head, audit_head, audit_verify
from api.audit.services import audit_prune_through, audit_record, entry_hash
from tests.conftest import at_once


def record_many(count):
    return [
        audit_record(action=f"POST test:thing-{n}", result="201", object_type="thing")
        for n in range(count)
    ]


def tamper(sql, params=()):
    """What an attacker with database access does: switch the guard off and edit rows."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE api_auditentry DISABLE TRIGGER api_auditentry_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE api_auditentry ENABLE TRIGGER api_auditentry_append_only")


def verify_command():
    call_command("verify_audit")


@pytest.mark.django_db
def test_entries_chain_from_genesis():
    first, second = record_many(2)
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    stored = AuditEntry.objects.get(sequence=2)
    assert entry_hash(stored) == stored.hash
    assert audit_head() == Head(2, second.hash)
    assert audit_verify() is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE api_auditentry SET result = '200' WHERE sequence = 2",
        "DELETE FROM api_auditentry WHERE sequence = 2",
        "DELETE FROM api_auditentry",
    ],
)
def test_database_refuses_update_and_delete(sql):
    record_many(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute(sql)
    assert AuditEntry.objects.count() == 3


@pytest.mark.django_db
def test_delete_refused_even_with_the_prune_setting_beyond_the_anchor():
    record_many(3)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL srn.audit_prune = 'on'")
        cursor.execute("DELETE FROM api_auditentry WHERE sequence = 3")


@pytest.mark.django_db
def test_anchors_cannot_be_edited():
    record_many(2)
    audit_prune_through(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute("UPDATE api_auditanchor SET hash = 'x'")


@pytest.mark.django_db
def test_verify_command_passes_on_an_intact_chain(capsys):
    record_many(5)
    verify_command()
    assert "intact through #5" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sql", "broken_at"),
    [
        # An edited field: the entry's own hash no longer matches.
        ("UPDATE api_auditentry SET result = '200' WHERE sequence = 3", 3),
        # An edit with the hash recomputed by the attacker: the next entry's prev_hash breaks.
        (
            "UPDATE api_auditentry SET action = 'GET x', hash = repeat('a', 64) WHERE sequence = 3",
            3,
        ),
        # A removed entry in the middle.
        ("DELETE FROM api_auditentry WHERE sequence = 3", 3),
        # A removed prefix without an anchor.
        ("DELETE FROM api_auditentry WHERE sequence <= 2", 1),
        # Two entries swapped: their sequence numbers are exchanged.
        (
            "UPDATE api_auditentry SET sequence = -2 WHERE sequence = 2; "
            "UPDATE api_auditentry SET sequence = 2 WHERE sequence = 4; "
            "UPDATE api_auditentry SET sequence = 4 WHERE sequence = -2",
            2,
        ),
    ],
    ids=["edit", "edit-rehash", "delete-middle", "delete-prefix", "reorder"],
)
def test_tampering_is_detected(sql, broken_at):
    record_many(5)
    tamper(sql)
    broken = audit_verify()
    assert broken is not None
    assert broken.sequence == broken_at
    with pytest.raises(CommandError, match=f"broken at entry #{broken_at}"):
        verify_command()


@pytest.mark.django_db
def test_a_consistent_rewrite_is_caught_by_a_kept_head():
    """An attacker who rewrites an entry and recomputes every hash after it produces a valid
    chain; the head a partner copied earlier no longer matches."""
    entries = record_many(4)
    kept = Head(entries[-1].sequence, entries[-1].hash)
    tamper("UPDATE api_auditentry SET result = '500' WHERE sequence = 2")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE api_auditentry DISABLE TRIGGER api_auditentry_append_only")
        for entry in AuditEntry.objects.filter(sequence__gte=2).order_by("sequence"):
            entry.prev_hash = AuditEntry.objects.get(sequence=entry.sequence - 1).hash
            entry.hash = entry_hash(entry)
            entry.save()
        cursor.execute("ALTER TABLE api_auditentry ENABLE TRIGGER api_auditentry_append_only")
    assert audit_verify() is None
    assert audit_verify(known_head=kept).reason.endswith("has another hash")
    with pytest.raises(CommandError, match="#4"):
        call_command("verify_audit", head=f"{kept.sequence}:{kept.hash}")


@pytest.mark.django_db
def test_truncated_tail_is_caught_by_a_kept_head():
    entries = record_many(4)
    tamper("DELETE FROM api_auditentry WHERE sequence = 4")
    assert audit_verify() is None
    broken = audit_verify(known_head=Head(4, entries[-1].hash))
    assert broken.reason.endswith("is missing")


@pytest.mark.django_db
def test_pruning_a_prefix_keeps_the_chain_verifiable():
    entries = record_many(5)
    assert audit_prune_through(3) == 3
    assert list(AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True)) == [
        4,
        5,
    ]
    anchor = AuditAnchor.objects.get()
    assert (anchor.pruned_through, anchor.hash) == (3, entries[2].hash)
    assert audit_verify() is None
    following = audit_record(action="POST test:after", result="201")
    assert following.sequence == 6
    assert following.prev_hash == entries[-1].hash
    assert audit_verify() is None
    # Pruning everything leaves the anchor as the head; the next entry chains onto it.
    audit_prune_through(6)
    assert audit_head() == Head(6, following.hash)
    assert audit_record(action="POST test:later", result="201").prev_hash == following.hash
    assert audit_verify() is None


@pytest.mark.django_db
def test_deleting_past_the_anchor_is_detected_even_with_prune_on():
    record_many(4)
    audit_prune_through(2)
    tamper("DELETE FROM api_auditentry WHERE sequence = 3")
    assert audit_verify().sequence == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_linear_chain():
    threads_count, per_thread = 8, 15
    at_once(lambda: record_many(per_thread), threads_count)
    sequences = list(AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, threads_count * per_thread + 1))
    assert audit_verify() is None
