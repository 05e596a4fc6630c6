"""Reads of referrals. Every read takes the caller's organisation: a referral the caller is not a
party to is indistinguishable from one that does not exist."""

import functools
import uuid
from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.expressions import RawSQL

from api.rows import Joined, instances, select_list
from partners.models import Organisation, Partnership, PartnershipStatus, Service
from referrals import crypto
from referrals.errors import ConsentExpired, ConsentRevoked, ReferralNotFound
from referrals.models import (
    PersonalDataState,
    Referral,
    ReferralNote,
    TimelineEntry,
)

NOT_FOUND = "No referral with this id."
SUMMARY_COLUMNS = (
    "id",
    "claim_code",
    "status",
    "urgency",
    "needs",
    "sender_id",
    "receiver_id",
    "service_id",
    "respond_by",
    "decline_reason",
    "outcome",
    "personal_data",
    "version",
    "created",
    "updated",
    "closed",
)


_RECEIVING = (Joined.of(Service, "s"), Joined.of(Organisation, "o"), Joined.of(Partnership, "p"))


@functools.cache
def _receiving_sql() -> str:
    """Built from the models' fields once; see receiving_service_and_partnership."""
    # Only model metadata is interpolated; the ids are bound parameters.
    return f"""
SELECT {select_list(_RECEIVING)}
FROM "{Service._meta.db_table}" s
JOIN "{Organisation._meta.db_table}" o ON o.id = s.organisation_id AND NOT o.suspended
LEFT JOIN "{Partnership._meta.db_table}" p ON p.status = %(active)s AND (
    (p.proposer_id = %(sender)s AND p.partner_id = o.id)
    OR (p.proposer_id = o.id AND p.partner_id = %(sender)s))
WHERE s.id = %(service)s AND s.organisation_id = %(receiver)s AND s.organisation_id <> %(sender)s
LIMIT 1"""  # noqa: S608


def receiving_service_and_partnership(
    *, sender_id, receiver_id, service_id
) -> tuple[Service | None, Partnership | None]:
    """The service a new referral goes to, with its (not suspended) organisation, and the active
    partnership between that organisation and the sender: one round trip on every referral
    created. (None, None) when the service is not one the sender may refer to."""
    with connection.cursor() as cursor:
        cursor.execute(
            _receiving_sql(),
            {
                "active": PartnershipStatus.ACTIVE,
                "sender": sender_id,
                "receiver": receiver_id,
                "service": service_id,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None, None
    service, organisation, partnership = instances(row, _RECEIVING)
    service.organisation = organisation
    return service, partnership if partnership.pk is not None else None


def referral_not_found() -> ReferralNotFound:
    return ReferralNotFound(NOT_FOUND)


def referrals_for_party(organisation: Organisation) -> QuerySet[Referral]:
    return Referral.objects.filter(Q(sender=organisation) | Q(receiver=organisation))


def referral_for_party(
    *, organisation: Organisation, referral_id: uuid.UUID, for_update: bool = False
) -> Referral:
    queryset = referrals_for_party(organisation).select_related("consent")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    referral = queryset.filter(pk=referral_id).first()
    if referral is None:
        raise referral_not_found()
    return referral


def ensure_personal_data(referral: Referral) -> None:
    """410 once consent was revoked or expired: the data is gone, not hidden."""
    if referral.personal_data == PersonalDataState.REVOKED:
        raise ConsentRevoked(
            "The person revoked their consent: this referral's personal data was destroyed. "
            "Its status and timeline remain.",
            referral_status=referral.status,
            etag=referral.etag,
        )
    if referral.personal_data == PersonalDataState.EXPIRED:
        raise ConsentExpired(
            "The person's consent expired: this referral's personal data was destroyed. "
            "Its status and timeline remain.",
            referral_status=referral.status,
            etag=referral.etag,
        )


def data_key(referral: Referral) -> bytes:
    key = referral.key
    return crypto.unwrap(referral.pk, key.kid, key.wrapped)


def referral_detail(*, organisation: Organisation, referral_id: uuid.UUID) -> tuple[Referral, dict]:
    """The referral with its decrypted personal data: only the groups the consent covers."""
    referral = (
        referrals_for_party(organisation)
        .select_related("consent", "key", "sender", "receiver")
        .prefetch_related("personal")
        .filter(pk=referral_id)
        .first()
    )
    if referral is None:
        raise referral_not_found()
    return referral, personal_data_of(referral)


def personal_data_of(referral: Referral) -> dict:
    ensure_personal_data(referral)
    from referrals.services import FIELD_CATEGORIES

    key = data_key(referral)
    allowed = set(referral.consent.data_categories)
    out = {}
    for row in referral.personal.all():
        category = FIELD_CATEGORIES.get(row.field)
        if category is not None and category not in allowed:
            continue
        out[row.field] = crypto.decrypt_field(key, referral.pk, row.field, row.ciphertext)
    return out


def referral_by_claim_code(*, organisation: Organisation, code: str) -> uuid.UUID:
    """Only the receiver can look a claim code up; for anyone else it does not exist."""
    found = (
        Referral.objects.filter(receiver=organisation, claim_code=code.strip().upper())
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise ReferralNotFound("No referral with this claim code.")
    return found


def _iso_sql(column: str) -> str:
    """A timestamptz as DRF renders it: UTC with `Z`, microseconds only when there are any."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )


def _summary_sql() -> str:
    """ReferralSummarySerializer's shape, built in SQL (a test compares the two)."""
    r = f'"{Referral._meta.db_table}"'
    organisations = f'"{Organisation._meta.db_table}"'

    def party(side: str) -> str:
        # Only model metadata is interpolated: this SQL takes no input.
        name = f"(SELECT o.name FROM {organisations} o WHERE o.id = {r}.{side}_id)"  # noqa: S608
        return f"json_build_object('id', {r}.{side}_id, 'name', {name})"

    return f"""json_build_object(
        'id', {r}.id, 'claim_code', {r}.claim_code, 'status', {r}.status,
        'urgency', {r}.urgency, 'needs', to_json({r}.needs),
        'sender', {party("sender")}, 'receiver', {party("receiver")},
        'service', {r}.service_id, 'respond_by', {_iso_sql(f"{r}.respond_by")},
        'decline_reason', {r}.decline_reason, 'outcome', {r}.outcome,
        'personal_data', {r}.personal_data, 'version', {r}.version,
        'created', {_iso_sql(f"{r}.created")}, 'updated', {_iso_sql(f"{r}.updated")},
        'closed', {_iso_sql(f"{r}.closed")})::text"""


def referral_summaries(queryset: QuerySet[Referral]) -> QuerySet:
    """Each referral of `queryset` as its summary, JSON text PostgreSQL built, beside the
    `created` the cursor pagination needs: the inbox lists 25 of these per request, and
    loading and rendering them in Python was most of its time."""
    return queryset.values("created").annotate(
        summary=RawSQL(_summary_sql(), (), output_field=TextField())  # noqa: S611 - no input
    )


def referrals_list(
    *,
    organisation: Organisation,
    box: str,
    status: list[str] | None = None,
    urgency: list[str] | None = None,
    service: uuid.UUID | None = None,
    taxonomy: list[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
) -> QuerySet[Referral]:
    """Inbox (received) or outbox (sent), newest first. Metadata only: no decryption."""
    side = {"receiver": organisation} if box == "inbox" else {"sender": organisation}
    queryset = (
        Referral.objects.filter(**side)
        .select_related("sender", "receiver")
        # Only what the summary shows: compiling and loading two whole organisations per row
        # was a third of the page's time.
        .only(*SUMMARY_COLUMNS, "sender__name", "receiver__name")
    )
    if status:
        queryset = queryset.filter(status__in=status)
    if urgency:
        queryset = queryset.filter(urgency__in=urgency)
    if service:
        queryset = queryset.filter(service_id=service)
    if taxonomy:
        queryset = queryset.filter(needs__overlap=taxonomy)
    if created_after:
        queryset = queryset.filter(created__gte=created_after)
    if created_before:
        queryset = queryset.filter(created__lt=created_before)
    if updated_after:
        queryset = queryset.filter(updated__gte=updated_after)
    if updated_before:
        queryset = queryset.filter(updated__lt=updated_before)
    return queryset.order_by("-created", "-id")


def referral_notes(
    *, organisation: Organisation, referral_id: uuid.UUID
) -> tuple[Referral, list[dict]]:
    from referrals.services import ensure_notes_consented

    referral = (
        referrals_for_party(organisation)
        .select_related("consent", "key")
        .filter(pk=referral_id)
        .first()
    )
    if referral is None:
        raise referral_not_found()
    ensure_personal_data(referral)
    ensure_notes_consented(referral)
    key = data_key(referral)
    notes = [
        {
            "id": note.id,
            "author": note.author_id,
            "created": note.created,
            "text": crypto.decrypt_field(key, referral.pk, f"note:{note.id}", note.ciphertext),
        }
        for note in ReferralNote.objects.filter(referral=referral).order_by("created", "id")
    ]
    return referral, notes


def referral_timeline(
    *, organisation: Organisation, referral_id: uuid.UUID
) -> QuerySet[TimelineEntry]:
    if not referrals_for_party(organisation).filter(pk=referral_id).exists():
        raise referral_not_found()
    return TimelineEntry.objects.filter(referral_id=referral_id).order_by("at", "id")
