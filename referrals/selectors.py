"""Reads of referrals. Every read takes the caller's organisation: a referral the caller is not a
party to is indistinguishable from one that does not exist."""

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from api.audit.models import Disclosure
from api.errors import NotFound
from api.joins import Joined, instances, select_list
from api.timestamps import iso, iso_sql
from partners.models import (
    ACTIVE_PARTNERSHIP_PARAMS,
    Organisation,
    Partnership,
    PartnershipStatus,
    Service,
    active_partnership_sql,
)
from referrals import crypto, keyring, pins
from referrals.consent import FIELD_CATEGORIES, ensure_notes_consented
from referrals.errors import (
    ConsentExpired,
    ConsentRevoked,
    PartnershipSuspended,
    RetentionEnded,
)
from referrals.models import (
    TERMINAL_STATUSES,
    Consent,
    PersonalData,
    PersonalDataState,
    Referral,
    ReferralNote,
    SelfServiceLock,
    SelfServiceToken,
    Status,
    TimelineEntry,
)

NOT_FOUND = "No referral with this id."
# The personal-data group holding the hash of the person's PIN: destroyed with the rest, and
# never shown to either organisation.
SELF_SERVICE_FIELD = "self_service"
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
    "self_service",
    "version",
    "created",
    "updated",
    "closed",
)


# What creating a referral reads of them (any other field loads on first access): each column
# fetched is converted and set on a model instance, on every referral created.
_RECEIVING = (
    Joined.of(Service, "s", only={"id", "organisation_id", "name", "status"}),
    Joined.of(Organisation, "o", only={"id", "name"}),
    Joined.of(
        Partnership, "p", only={"id", "proposer_id", "partner_id", "status", "data_categories"}
    ),
)


@functools.cache
def _receiving_sql() -> str:
    """Built from the models' fields once; see receiving_service_and_partnership."""
    # Only model metadata is interpolated; the ids are bound parameters.
    return f"""
SELECT {select_list(_RECEIVING)}
FROM "{Service._meta.db_table}" s
JOIN "{Organisation._meta.db_table}" o ON o.id = s.organisation_id AND NOT o.suspended
LEFT JOIN "{Partnership._meta.db_table}" p ON {active_partnership_sql("p", "%(sender)s", "o.id")}
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
                **ACTIVE_PARTNERSHIP_PARAMS,
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


def referral_not_found() -> NotFound:
    return NotFound(NOT_FOUND)


def referrals_for_party(organisation: Organisation) -> QuerySet[Referral]:
    return Referral.objects.filter(Q(sender=organisation) | Q(receiver=organisation))


def referral_for_party(
    *, organisation: Organisation, referral_id: uuid.UUID, for_update: bool = False
) -> Referral:
    queryset = referrals_for_party(organisation).select_related("consent", "partnership")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    referral = queryset.filter(pk=referral_id).first()
    if referral is None:
        raise referral_not_found()
    return referral


def personal_data_retention() -> timedelta:
    """How long personal data outlives the referral's closing."""
    return timedelta(days=getattr(settings, "RETENTION_PERSONAL_DATA_DAYS", 30))


# When personal data ends: when the consent expires, or a retention period after the referral
# closed, whichever comes first. Every request checks it (ensure_personal_data), so access ends
# on the second; the jobs only destroy what is already unreadable. The rule is stated here
# twice, as predicates for one referral and as the jobs' querysets, and a test holds the two
# equal at the boundaries.


def consent_expired(referral: Referral, now: datetime) -> bool:
    return referral.consent.expires_at <= now


def retention_ended(referral: Referral, now: datetime) -> bool:
    return referral.closed is not None and referral.closed <= now - personal_data_retention()


def referrals_with_expired_consent(now: datetime) -> QuerySet[Referral]:
    """Referrals still holding personal data whose consent has expired."""
    return Referral.objects.filter(
        personal_data=PersonalDataState.PRESENT, consent__expires_at__lte=now
    )


def referrals_with_expiring_consent(now: datetime, *, within: timedelta) -> QuerySet[Consent]:
    """Consents of open referrals lapsing within `within` whose sender was not told yet."""
    return Consent.objects.filter(
        expiring_notified_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + within,
        referral__personal_data=PersonalDataState.PRESENT,
    ).exclude(referral__status__in=TERMINAL_STATUSES)


def referrals_past_retention(now: datetime) -> QuerySet[Referral]:
    """Closed referrals still holding personal data past the retention period."""
    return Referral.objects.filter(
        personal_data=PersonalDataState.PRESENT,
        status__in=TERMINAL_STATUSES,
        closed__lte=now - personal_data_retention(),
    )


def ensure_personal_data(referral: Referral, *, organisation: Organisation | None) -> None:
    """The gate in front of every read and write of a referral's personal data (anything that
    uses its data key). 410 once the consent was revoked or expired or the retention period
    ended, whether or not the data was destroyed yet: it is gone, not hidden. 409 for the
    receiver while the partnership it received the referral through is suspended.
    `organisation` None is the person themselves, through self-service."""
    now = timezone.now()
    gone = {"referral_status": referral.status, "etag": referral.etag}
    if referral.personal_data == PersonalDataState.REVOKED:
        raise ConsentRevoked(
            "The person revoked their consent: this referral's personal data was destroyed. "
            "Its status and timeline remain.",
            **gone,
        )
    if consent_expired(referral, now):
        raise ConsentExpired(
            "The person's consent expired: this referral's personal data is no longer "
            "available and is destroyed. Its status and timeline remain.",
            consent_expired_at=iso(referral.consent.expires_at),
            **gone,
        )
    if referral.personal_data == PersonalDataState.EXPIRED or retention_ended(referral, now):
        raise RetentionEnded(
            f"This referral closed more than {personal_data_retention().days} days ago: its "
            "personal data is past retention and is destroyed. Its status and timeline remain.",
            **gone,
        )
    if (
        organisation is not None
        and referral.receiver_id == organisation.pk
        and referral.partnership.status == PartnershipStatus.SUSPENDED
    ):
        raise PartnershipSuspended(
            "The partnership this referral was received through is suspended: its personal "
            "data cannot be used until the partnership is active again.",
            partnership=str(referral.partnership_id),
        )


def data_key(referral: Referral) -> bytes:
    key = referral.key
    try:
        return keyring.unwrap(referral.pk, key)
    except keyring.EpochDestroyed:
        # The epoch job moved this key to a newer epoch and destroyed the old one after the row
        # was read: read it again (only then, so reads cost no extra round trip).
        key.refresh_from_db(fields=["epoch", "kid", "wrapped"])
        return keyring.unwrap(referral.pk, key)


def referral_detail(*, organisation: Organisation, referral_id: uuid.UUID) -> tuple[Referral, dict]:
    """The referral with its decrypted personal data: only the groups the consent covers."""
    referral = (
        referrals_for_party(organisation)
        .select_related("consent", "key", "sender", "receiver", "partnership")
        .prefetch_related("personal")
        .filter(pk=referral_id)
        .first()
    )
    if referral is None:
        raise referral_not_found()
    return referral, personal_data_of(referral, organisation=organisation)


def personal_data_of(referral: Referral, *, organisation: Organisation) -> dict:
    """The decrypted field groups the consent covers. The `consent` group (who recorded the
    consent, the note on its purpose) is also set on `referral.consent`, beside its codes.
    While the person asked not to be contacted, their contact details are left out too: a
    number in someone else's hands must not be called by mistake."""
    ensure_personal_data(referral, organisation=organisation)
    key = data_key(referral)
    allowed = set(referral.consent.data_categories)
    out = {}
    for row in referral.personal.all():
        category = FIELD_CATEGORIES.get(row.field)
        if row.field == SELF_SERVICE_FIELD or (category is not None and category not in allowed):
            continue
        out[row.field] = crypto.decrypt_field(key, referral.pk, row.field, row.ciphertext)
    if out.get("safe_contact", {}).get("do_not_contact"):
        out.pop("contact", None)
    for name, value in out.get("consent", {}).items():
        setattr(referral.consent, name, value)
    return out


def referral_by_claim_code(*, organisation: Organisation, code: str) -> uuid.UUID:
    """Only the receiver can look a claim code up; for anyone else it does not exist."""
    found = (
        Referral.objects.filter(receiver=organisation, claim_code=pins.normalise_code(code))
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise NotFound("No referral with this claim code.")
    return found


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
        'service', {r}.service_id, 'respond_by', {iso_sql(f"{r}.respond_by")},
        'decline_reason', {r}.decline_reason, 'outcome', {r}.outcome,
        'personal_data', {r}.personal_data,
        'self_service', {r}.self_service AND {r}.claim_code IS NOT NULL,
        'version', {r}.version,
        'created', {iso_sql(f"{r}.created")}, 'updated', {iso_sql(f"{r}.updated")},
        'closed', {iso_sql(f"{r}.closed")})::text"""


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
    """Inbox (received) or outbox (sent), newest first. Metadata only: no decryption. The rows
    are shaped by referral_summaries, which names its own columns."""
    side = {"receiver": organisation} if box == "inbox" else {"sender": organisation}
    wanted = {
        "status__in": status,
        "urgency__in": urgency,
        "service_id": service,
        "needs__overlap": taxonomy,
        "created__gte": created_after,
        "created__lt": created_before,
        "updated__gte": updated_after,
        "updated__lt": updated_before,
    }
    given = {lookup: value for lookup, value in wanted.items() if value}
    return Referral.objects.filter(**side, **given).order_by("-created", "-id")


def referral_notes(
    *, organisation: Organisation, referral_id: uuid.UUID
) -> tuple[Referral, list[dict]]:
    referral = (
        referrals_for_party(organisation)
        .select_related("consent", "key", "partnership")
        .filter(pk=referral_id)
        .first()
    )
    if referral is None:
        raise referral_not_found()
    ensure_personal_data(referral, organisation=organisation)
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


# --- Self-service: what the person sees with their token --------------------------------------


@dataclass(frozen=True)
class SelfGrant:
    """What a self-service token opens: one referral, until `expires`."""

    referral_id: uuid.UUID
    expires: datetime
    checksum: str


def self_grant(*, token: str) -> SelfGrant | None:
    """The live grant of a self-service token, or None (unknown, expired, or its referral's
    metadata deleted)."""
    checksum = pins.token_checksum(token)
    row = (
        SelfServiceToken.objects.filter(checksum=checksum, expires__gt=timezone.now())
        .values_list("referral_id", "expires")
        .first()
    )
    return None if row is None else SelfGrant(referral_id=row[0], expires=row[1], checksum=checksum)


def referral_for_person(*, grant: SelfGrant, for_update: bool = False) -> Referral:
    queryset = Referral.objects.select_related("consent", "partnership")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    return queryset.get(pk=grant.referral_id)


class PersonState:
    """Where the referral stands, in the person's terms."""

    WAITING = "waiting"
    ACCEPTED = "accepted"
    WAITING_LIST = "waiting_list"
    DECLINED = "declined"
    FINISHED = "finished"
    STOPPED = "stopped"
    NO_ANSWER = "no_answer"
    WITHDRAWN = "withdrawn"
    PERMISSION_ENDED = "permission_ended"


PERSON_STATES = {
    Status.REQUESTED: PersonState.WAITING,
    Status.RECEIVED: PersonState.WAITING,
    Status.ACCEPTED: PersonState.ACCEPTED,
    Status.IN_PROGRESS: PersonState.ACCEPTED,
    Status.ON_HOLD: PersonState.WAITING_LIST,
    Status.DECLINED: PersonState.DECLINED,
    Status.COMPLETED: PersonState.FINISHED,
    Status.CANCELLED: PersonState.STOPPED,
    Status.EXPIRED: PersonState.NO_ANSWER,
}

# Short sentences in plain words, for someone with little reading practice: no names, no
# service, nothing that says what the referral is for. A slip found by someone else shows
# only this. Translated in referrals/locale (the nine languages of the taxonomy).
STATUS_SENTENCES = {
    PersonState.WAITING: _("Your request was sent. They have not answered yet."),
    PersonState.ACCEPTED: _("They said yes. They can help you."),
    PersonState.WAITING_LIST: _("You are on their waiting list."),
    PersonState.DECLINED: _("They cannot help you this time."),
    PersonState.FINISHED: _("This request is finished."),
    PersonState.STOPPED: _("This request was stopped."),
    PersonState.NO_ANSWER: _("They did not answer in time."),
    PersonState.WITHDRAWN: _("You took back your permission. Your details are deleted."),
    PersonState.PERMISSION_ENDED: _("Your permission ended. Your details are deleted."),
}
CONTACT_OK = _("They will contact you only in the way you chose.")
CONTACT_STOPPED = _("They will not contact you. If you want help, go to them and show your code.")
ASK_AGAIN = _("Ask the people who sent you to find another place.")
NOTHING_TO_DO = _("Nothing more to do. You can ask for help again at any time.")
NEXT_STEPS = {
    PersonState.WAITING_LIST: _("They will tell you when there is a place."),
    PersonState.DECLINED: ASK_AGAIN,
    PersonState.STOPPED: ASK_AGAIN,
    PersonState.NO_ANSWER: ASK_AGAIN,
    PersonState.FINISHED: NOTHING_TO_DO,
    PersonState.WITHDRAWN: NOTHING_TO_DO,
    PersonState.PERMISSION_ENDED: NOTHING_TO_DO,
}
# States in which the organisations may still act on the safe-contact instructions.
ACTIVE_STATES = (PersonState.WAITING, PersonState.ACCEPTED, PersonState.WAITING_LIST)


@dataclass(frozen=True)
class PersonStatus:
    language: str
    state: str
    status: str
    next_step: str
    # None once the details may no longer be used (there is nothing left to contact with).
    contact_stopped: bool | None
    # What the person can still do: withdraw while their details exist; change how to be
    # contacted while the referral is open too.
    can_withdraw: bool
    can_change_contact: bool
    updated: datetime


def person_state(referral: Referral, now: datetime) -> str:
    if referral.personal_data == PersonalDataState.REVOKED:
        return PersonState.WITHDRAWN
    if referral.status not in TERMINAL_STATUSES and consent_expired(referral, now):
        return PersonState.PERMISSION_ENDED
    return PERSON_STATES[referral.status]


def person_language(tag: str | None) -> str | None:
    """One of the page's languages for a BCP 47 tag (`pt-BR` is `pt`), or None."""
    primary = (tag or "").split("-")[0].lower()
    return primary if primary in dict(settings.LANGUAGES) else None


def self_status(*, grant: SelfGrant, language: str | None = None) -> PersonStatus:
    """The referral's state as the person sees it, in `language`, by default the one consent
    was explained in. Reads the one flag it needs of the safe contact (whether contact is
    stopped) only while the data may be used."""
    referral = Referral.objects.select_related("consent", "partnership", "key").get(
        pk=grant.referral_id
    )
    language = language or person_language(referral.consent.language) or settings.LANGUAGE_CODE
    with translation.override(language):
        return _person_status(referral, language)


def _person_status(referral: Referral, language: str) -> PersonStatus:
    now = timezone.now()
    state = person_state(referral, now)
    contact_stopped = None
    try:
        ensure_personal_data(referral, organisation=None)
    except (ConsentRevoked, ConsentExpired, RetentionEnded):
        pass
    else:
        row = PersonalData.objects.filter(referral=referral, field="safe_contact").first()
        if row is not None:
            group = crypto.decrypt_field(data_key(referral), referral.pk, row.field, row.ciphertext)
            contact_stopped = bool(group.get("do_not_contact"))
    active = state in ACTIVE_STATES
    if active:
        waiting_list = NEXT_STEPS[PersonState.WAITING_LIST]
        contact = CONTACT_STOPPED if contact_stopped else CONTACT_OK
        next_step = f"{waiting_list} {contact}" if state == PersonState.WAITING_LIST else contact
    else:
        next_step = NEXT_STEPS[state]
    return PersonStatus(
        language=language,
        state=state,
        status=str(STATUS_SENTENCES[state]),
        next_step=str(next_step),
        contact_stopped=contact_stopped,
        can_withdraw=contact_stopped is not None,
        can_change_contact=contact_stopped is not None and active,
        updated=referral.updated,
    )


SELF_DISCLOSURES_SHOWN = 100


def self_disclosures(*, grant: SelfGrant) -> list[dict]:
    """Who opened the person's details and when: organisation names and times only (not what
    was opened, nor through which client), newest first, the latest SELF_DISCLOSURES_SHOWN."""
    rows = (
        Disclosure.objects.filter(referral_id=grant.referral_id)
        .order_by("-created", "-id")
        .values_list("organisation__name", "created")[:SELF_DISCLOSURES_SHOWN]
    )
    return [{"organisation": name, "at": at} for name, at in rows]


def self_service_tokens_expired(now: datetime) -> QuerySet[SelfServiceToken]:
    return SelfServiceToken.objects.filter(expires__lte=now)


SELF_SERVICE_LOCK_RETENTION = timedelta(days=30)


def self_service_locks_idle(now: datetime) -> QuerySet[SelfServiceLock]:
    """Lock rows untouched for SELF_SERVICE_LOCK_RETENTION and not locked now. Forgetting one
    resets the doubling, which costs an attacker who waited a month five more guesses."""
    return SelfServiceLock.objects.filter(updated__lt=now - SELF_SERVICE_LOCK_RETENTION).exclude(
        locked_until__gt=now
    )


def disclosures_for_sender(*, organisation, referral_id) -> QuerySet[Disclosure]:
    """The sender's account of who saw what, which only the sender may see: the receiver, like
    anyone else, gets the same 404 as for an unknown id."""
    sender = Referral.objects.filter(pk=referral_id).values_list("sender_id", flat=True).first()
    if sender != organisation.pk:
        raise referral_not_found()
    return Disclosure.objects.filter(referral_id=referral_id).select_related("organisation")
