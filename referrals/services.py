"""Writes of referrals: create with consent, lifecycle transitions, notes, revocation and the
scheduled expiry and destruction jobs. Keyword-only, one transaction each, domain errors."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from api.audit.services import audit_record
from api.errors import InvalidInput
from api.events import emit
from partners.models import (
    Organisation,
    Partnership,
    ServiceStatus,
    TaxonomyTerm,
)
from partners.selectors import known_taxonomy_codes
from referrals import crypto
from referrals.errors import (
    CategoryNotAllowed,
    IfMatchRequired,
    IllegalTransition,
    NotConsented,
    PartnershipRequired,
    StaleReferral,
    WrongSide,
)
from referrals.models import (
    TERMINAL_STATUSES,
    Consent,
    PersonalData,
    PersonalDataState,
    Referral,
    ReferralKey,
    ReferralNote,
    Status,
    TimelineEntry,
    TimelineKind,
    Urgency,
)
from referrals.selectors import (
    data_key,
    ensure_personal_data,
    receiving_service_and_partnership,
    referral_for_party,
)

# No 0/O, 1/I/L: a person reads the code aloud or copies it from a scrap of paper.
CLAIM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CLAIM_LENGTH = 8

RESPOND_WITHIN = {
    Urgency.URGENT: timedelta(days=1),
    Urgency.SOON: timedelta(days=3),
    Urgency.ROUTINE: timedelta(days=10),
}
CONSENT_DEFAULT = timedelta(days=90)
CONSENT_MAX = timedelta(days=365)
# Clocks of partner systems drift; a consent "given" a little in the future is not an error.
CLOCK_SKEW = timedelta(minutes=5)

# Encrypted field groups and the consent category each needs (None: part of every referral).
FIELD_CATEGORIES: dict[str, str | None] = {
    "person": None,
    "safe_contact": None,
    "reason": None,
    "contact": "contact",
    "health": "health",
    "legal": "legal",
    "decline_note": None,
}
CREATE_FIELDS = ("person", "safe_contact", "reason", "contact", "health", "legal")


@dataclass(frozen=True)
class Transition:
    side: str
    sources: frozenset
    target: str


TRANSITIONS: dict[str, Transition] = {
    "receive": Transition("receiver", frozenset({Status.REQUESTED}), Status.RECEIVED),
    "accept": Transition("receiver", frozenset({Status.RECEIVED}), Status.ACCEPTED),
    "decline": Transition("receiver", frozenset({Status.RECEIVED}), Status.DECLINED),
    "hold": Transition("receiver", frozenset({Status.ACCEPTED}), Status.ON_HOLD),
    "resume": Transition("receiver", frozenset({Status.ON_HOLD}), Status.ACCEPTED),
    "start": Transition("receiver", frozenset({Status.ACCEPTED}), Status.IN_PROGRESS),
    "complete": Transition("receiver", frozenset({Status.IN_PROGRESS}), Status.COMPLETED),
    "cancel": Transition(
        "sender",
        frozenset(
            {
                Status.REQUESTED,
                Status.RECEIVED,
                Status.ACCEPTED,
                Status.ON_HOLD,
                Status.IN_PROGRESS,
            }
        ),
        Status.CANCELLED,
    ),
}


SIDE_NAMES = {"sender": "sending", "receiver": "receiving"}


def side_of(referral: Referral, organisation: Organisation) -> str:
    return "sender" if referral.sender_id == organisation.pk else "receiver"


def allowed_actions(referral: Referral, side: str) -> list[str]:
    return [
        name
        for name, transition in TRANSITIONS.items()
        if transition.side == side and referral.status in transition.sources
    ]


def _event_data(referral: Referral, at: datetime, **extra) -> dict:
    return {
        "referral": str(referral.pk),
        "status": referral.status,
        "at": at.isoformat(),
        **extra,
    }


def _new_claim_code() -> str:
    return "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(CLAIM_LENGTH))


def _field_error(pointer: str, detail: str, message: str | None = None) -> InvalidInput:
    return InvalidInput(message or detail, errors=[{"pointer": pointer, "detail": detail}])


def _partnership_refused(sender: Organisation, receiver: Organisation) -> PartnershipRequired:
    """Why there is no active partnership, for the problem the sender gets."""
    latest = (
        Partnership.objects.filter(proposer__in=[sender, receiver], partner__in=[sender, receiver])
        .order_by("-updated")
        .values_list("status", flat=True)
        .first()
    )
    if latest is None:
        return PartnershipRequired(
            "There is no partnership between your organisation and the receiving organisation: "
            "referrals flow only inside an active partnership.",
            rule="partnership_exists",
        )
    return PartnershipRequired(
        f"The partnership with the receiving organisation is {latest}, not active: referrals "
        "flow only inside an active partnership.",
        rule="partnership_active",
        partnership_status=latest,
    )


def _validate_consent(
    *, consent: dict, receiver: Organisation, partnership: Partnership, now: datetime
) -> datetime:
    """Check the consent record against the partnership; return its expiry."""
    if not consent["consented"]:
        raise _field_error(
            "/consent/consented", "A referral needs the person's consent.", "Consent is required."
        )
    if consent["recipient"] != receiver.pk:
        raise _field_error(
            "/consent/recipient",
            "Consent must name the receiving organisation: it covers one recipient only.",
        )
    not_allowed = sorted(set(consent["data_categories"]) - set(partnership.data_categories))
    if not_allowed:
        raise CategoryNotAllowed(
            "The partnership does not allow these data categories: " + ", ".join(not_allowed),
            rule="category_allowed",
            categories=not_allowed,
            errors=[
                {"pointer": "/consent/data_categories", "detail": f"{c} is not allowed."}
                for c in not_allowed
            ],
        )
    given_at = consent["given_at"]
    if given_at > now + CLOCK_SKEW:
        raise _field_error("/consent/given_at", "Consent cannot be given in the future.")
    expires_at = consent.get("expires_at") or given_at + CONSENT_DEFAULT
    if expires_at > given_at + CONSENT_MAX:
        raise _field_error(
            "/consent/expires_at", "Consent lasts at most 365 days from when it was given."
        )
    if expires_at <= now:
        raise _field_error("/consent/expires_at", "This consent has already expired.")
    return expires_at


def _service_refused(*, sender: Organisation, receiver_id) -> InvalidInput:
    """Which of the two ids is wrong, for the problem the sender gets."""
    receiver_ok = (
        receiver_id != sender.pk
        and Organisation.objects.filter(pk=receiver_id, suspended=False).exists()
    )
    if not receiver_ok:
        return _field_error("/receiver", "No organisation you can refer to has this id.")
    return _field_error("/service", "The receiving organisation has no service with this id.")


# Referral, consent, data key, ciphertexts and the first timeline entry in ONE statement: the
# ORM took eight round trips (two of them savepoints for the claim-code retry), and under load
# each round trip costs a context switch to PostgreSQL. ON CONFLICT on the claim code inserts
# nothing at all on a collision (about one in a million at a million referrals), and the caller
# simply retries with a new code. The columns mirror referrals/models.py; the create tests read
# every row back through the ORM.
_INSERT_REFERRAL = """
WITH referral AS (
    INSERT INTO referrals_referral (
        id, sender_id, receiver_id, service_id, partnership_id, urgency, needs, respond_by,
        status, decline_reason, outcome, claim_code, personal_data, version, created, updated)
    VALUES (%(id)s, %(sender)s, %(receiver)s, %(service)s, %(partnership)s, %(urgency)s,
            %(needs)s::varchar[], %(respond_by)s, %(status)s, '', '', %(claim_code)s,
            %(personal_data)s, 1, %(now)s, %(now)s)
    ON CONFLICT (claim_code) DO NOTHING
    RETURNING id
), consent AS (
    INSERT INTO referrals_consent (
        referral_id, method, language, given_at, recorded_by, purpose, data_categories,
        by_representative, wording_version, expires_at)
    SELECT id, %(method)s, %(language)s, %(given_at)s, %(recorded_by)s, %(purpose)s,
           %(data_categories)s::varchar[], %(by_representative)s, %(wording_version)s,
           %(expires_at)s
    FROM referral
), data_key AS (
    INSERT INTO referrals_referralkey (referral_id, kid, wrapped, updated)
    SELECT id, %(kid)s, %(wrapped)s, %(now)s FROM referral
), personal AS (
    INSERT INTO referrals_personaldata (referral_id, field, ciphertext)
    SELECT referral.id, item.field, item.ciphertext
    FROM referral, unnest(%(fields)s::varchar[], %(ciphertexts)s::bytea[]) AS item(field, ciphertext)
), timeline AS (
    INSERT INTO referrals_timelineentry (
        referral_id, kind, actor_id, from_status, to_status, code, at)
    SELECT id, %(kind)s, %(sender)s, '', %(status)s, '', %(now)s FROM referral
)
SELECT count(*) FROM referral
"""


def _insert(referral: Referral, *, kid: str, wrapped: bytes, fields, ciphertexts) -> bool:
    consent = referral.consent
    params = {
        "id": referral.pk,
        "sender": referral.sender_id,
        "receiver": referral.receiver_id,
        "service": referral.service_id,
        "partnership": referral.partnership_id,
        "urgency": referral.urgency,
        "needs": referral.needs,
        "respond_by": referral.respond_by,
        "status": referral.status,
        "claim_code": referral.claim_code,
        "personal_data": referral.personal_data,
        "now": referral.created,
        "method": consent.method,
        "language": consent.language,
        "given_at": consent.given_at,
        "recorded_by": consent.recorded_by,
        "purpose": consent.purpose,
        "data_categories": consent.data_categories,
        "by_representative": consent.by_representative,
        "wording_version": consent.wording_version,
        "expires_at": consent.expires_at,
        "kid": kid,
        "wrapped": wrapped,
        "fields": fields,
        "ciphertexts": ciphertexts,
        "kind": TimelineKind.CREATED,
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_REFERRAL, params)
        inserted = cursor.fetchone()[0] == 1
    if inserted:
        referral._state.adding = False
        consent._state.adding = False
    return inserted


def referral_create(*, sender: Organisation, data: dict) -> Referral:
    """Create a referral from validated input (see ReferralCreateSerializer).

    Every check that can refuse it runs before the transaction, which holds only the writes:
    inside a caller's transaction (the Idempotency-Key's) it then needs no savepoint, two round
    trips fewer on the busiest write."""
    now = timezone.now()
    service, partnership = receiving_service_and_partnership(
        sender_id=sender.pk, receiver_id=data["receiver"], service_id=data["service"]
    )
    if service is None:
        raise _service_refused(sender=sender, receiver_id=data["receiver"])
    receiver = service.organisation
    if service.status != ServiceStatus.ACTIVE:
        raise _field_error("/service", "This service is not active.")
    if partnership is None:
        raise _partnership_refused(sender, receiver)
    consent = data["consent"]
    expires_at = _validate_consent(
        consent=consent, receiver=receiver, partnership=partnership, now=now
    )
    categories = set(consent["data_categories"])
    outside = [
        name
        for name in CREATE_FIELDS
        if name in data and FIELD_CATEGORIES[name] and FIELD_CATEGORIES[name] not in categories
    ]
    if outside:
        raise InvalidInput(
            "These fields belong to data categories the person did not consent to share.",
            errors=[
                {"pointer": f"/{name}", "detail": f"Needs the {FIELD_CATEGORIES[name]} category."}
                for name in outside
            ],
        )
    needs = sorted(set(data.get("needs", [])))
    if needs:
        # The per-process cache answers nearly always; only codes it lacks hit the table.
        unknown = [code for code in needs if code not in known_taxonomy_codes()]
        if unknown:
            known = TaxonomyTerm.objects.filter(code__in=unknown).values_list("code", flat=True)
            unknown = sorted(set(unknown) - set(known))
        if unknown:
            raise InvalidInput(
                "Unknown taxonomy codes: " + ", ".join(unknown),
                errors=[{"pointer": "/needs", "detail": f"Unknown code {c}."} for c in unknown],
            )
    respond_by = data.get("respond_by") or now + RESPOND_WITHIN[data["urgency"]]
    if respond_by <= now:
        raise _field_error("/respond_by", "respond_by must be in the future.")

    referral = Referral(
        id=uuid.uuid4(),
        sender=sender,
        receiver=receiver,
        service=service,
        partnership=partnership,
        urgency=data["urgency"],
        needs=needs,
        respond_by=respond_by,
        created=now,
        updated=now,
    )
    referral.consent = Consent(
        referral=referral,
        method=consent["method"],
        language=consent["language"],
        given_at=consent["given_at"],
        recorded_by=consent["recorded_by"],
        purpose=consent["purpose"],
        data_categories=sorted(categories),
        by_representative=consent["by_representative"],
        wording_version=consent["wording_version"],
        expires_at=expires_at,
    )
    key = crypto.new_data_key()
    kid, wrapped = crypto.wrap(referral.pk, key)
    fields = [name for name in CREATE_FIELDS if name in data]
    ciphertexts = [crypto.encrypt_field(key, referral.pk, name, data[name]) for name in fields]
    with transaction.atomic(savepoint=False):
        for _attempt in range(5):
            referral.claim_code = _new_claim_code()
            if _insert(referral, kid=kid, wrapped=wrapped, fields=fields, ciphertexts=ciphertexts):
                emit("referral.received", organisations=[receiver], data=_event_data(referral, now))
                return referral
    raise IntegrityError("no free claim code after 5 attempts")


def _check_if_match(referral: Referral, if_match: str | None) -> None:
    """Transitions require If-Match (RFC 9110 §13.1.1): two people at the receiving
    organisation must not both act on what they each saw as 'received'."""
    if if_match is None:
        raise IfMatchRequired(
            "Send If-Match with the referral's ETag: transitions are refused without it.",
            etag=referral.etag,
        )
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" not in tags and referral.etag not in tags:
        raise StaleReferral(
            "The referral changed since you read it. Read it again and retry.",
            etag=referral.etag,
            status_now=referral.status,
        )


@transaction.atomic
def referral_transition(
    *,
    organisation: Organisation,
    referral_id: uuid.UUID,
    action: str,
    if_match: str | None,
    reason: str = "",
    note: str = "",
    outcome: str = "",
) -> Referral:
    transition = TRANSITIONS[action]
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    side = side_of(referral, organisation)
    if transition.side != side:
        raise WrongSide(
            f"Only the {SIDE_NAMES[transition.side]} organisation may {action} a referral.",
            allowed_actions=allowed_actions(referral, side),
        )
    _check_if_match(referral, if_match)
    if referral.status not in transition.sources:
        allowed = allowed_actions(referral, side)
        raise IllegalTransition(
            f"'{action}' is not possible on a {referral.status} referral. Allowed now: "
            + (", ".join(allowed) or "nothing"),
            status_now=referral.status,
            allowed_actions=allowed,
        )
    now = timezone.now()
    previous = referral.status
    referral.status = transition.target
    referral.version += 1
    referral.updated = now
    code = ""
    if action == "decline":
        referral.decline_reason = code = reason
        if note:
            ensure_personal_data(referral)
            PersonalData.objects.create(
                referral=referral,
                field="decline_note",
                ciphertext=crypto.encrypt_field(
                    data_key(referral), referral.pk, "decline_note", note
                ),
            )
    if action == "complete":
        referral.outcome = code = outcome
    if referral.status in TERMINAL_STATUSES:
        referral.closed = now
    referral.save(
        update_fields=["status", "version", "updated", "decline_reason", "outcome", "closed"]
    )
    TimelineEntry.objects.create(
        referral=referral,
        kind=TimelineKind.STATUS_CHANGED,
        actor=organisation,
        from_status=previous,
        to_status=referral.status,
        code=code,
        at=now,
    )
    emit(
        "referral.status_changed",
        organisations=_parties(referral),
        data=_event_data(referral, now, previous_status=previous),
    )
    return referral


def _parties(referral: Referral) -> list[Organisation]:
    return [Organisation(pk=referral.sender_id), Organisation(pk=referral.receiver_id)]


def ensure_notes_consented(referral: Referral) -> None:
    if "notes" not in referral.consent.data_categories:
        raise NotConsented(
            "The person did not consent to notes being exchanged about this referral."
        )


@transaction.atomic
def note_add(
    *, organisation: Organisation, referral_id: uuid.UUID, text: str
) -> tuple[Referral, ReferralNote]:
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    ensure_personal_data(referral)
    ensure_notes_consented(referral)
    now = timezone.now()
    note = ReferralNote(id=uuid.uuid4(), referral=referral, author=organisation, created=now)
    note.ciphertext = crypto.encrypt_field(data_key(referral), referral.pk, f"note:{note.id}", text)
    note.save(force_insert=True)
    TimelineEntry.objects.create(
        referral=referral, kind=TimelineKind.NOTE_ADDED, actor=organisation, at=now
    )
    other = referral.receiver_id if organisation.pk == referral.sender_id else referral.sender_id
    emit(
        "referral.note_added",
        organisations=[Organisation(pk=other)],
        data=_event_data(referral, now, note=str(note.id)),
    )
    return referral, note


def _destroy_personal_data(referral: Referral, state: str, *, actor, now: datetime) -> None:
    """Crypto-shredding: delete every ciphertext and the data key. Metadata, consent metadata
    and the timeline stay; a backup taken earlier is unreadable once its key copies age out."""
    PersonalData.objects.filter(referral=referral).delete()
    ReferralNote.objects.filter(referral=referral).delete()
    ReferralKey.objects.filter(referral=referral).delete()
    Referral.objects.filter(pk=referral.pk).update(
        personal_data=state, version=F("version") + 1, updated=now
    )
    referral.refresh_from_db(fields=["personal_data", "version", "updated"])
    kind = TimelineKind.CONSENT_REVOKED if state == "revoked" else TimelineKind.CONSENT_EXPIRED
    TimelineEntry.objects.create(referral=referral, kind=kind, actor=actor, at=now)
    audit_record(
        action=f"destroy personal data ({state})",
        result="ok",
        object_type="referral",
        object_id=referral.pk,
        organisation=actor,
    )
    emit(
        "referral.consent_revoked",
        organisations=[Organisation(pk=referral.receiver_id)],
        data=_event_data(referral, now, reason=state),
    )


@transaction.atomic
def consent_revoke(*, organisation: Organisation, referral_id: uuid.UUID) -> Referral:
    """The person withdrew consent (told the sender). Repeating it changes nothing more."""
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    if side_of(referral, organisation) != "sender":
        raise WrongSide("Only the sending organisation, which recorded the consent, may revoke it.")
    if referral.personal_data != PersonalDataState.PRESENT:
        return referral
    now = timezone.now()
    Consent.objects.filter(referral=referral).update(revoked_at=now)
    _destroy_personal_data(referral, PersonalDataState.REVOKED, actor=organisation, now=now)
    return referral


def consents_destroy_expired(*, now: datetime | None = None, batch: int = 200) -> int:
    """Destroy the personal data of every referral whose consent has expired. Batches with
    SKIP LOCKED, so it runs beside the API and beside another copy of itself."""
    now = now or timezone.now()
    done = 0
    while True:
        with transaction.atomic():
            referrals = list(
                Referral.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(personal_data=PersonalDataState.PRESENT, consent__expires_at__lte=now)
                .order_by("pk")[:batch]
            )
            for referral in referrals:
                _destroy_personal_data(referral, PersonalDataState.EXPIRED, actor=None, now=now)
        done += len(referrals)
        if len(referrals) < batch:
            return done


def referrals_expire_overdue(*, now: datetime | None = None, batch: int = 500) -> int:
    """Mark `expired` what is still requested or received after its respond_by."""
    now = now or timezone.now()
    done = 0
    while True:
        with transaction.atomic():
            referrals = list(
                Referral.objects.select_for_update(skip_locked=True)
                .filter(status__in=[Status.REQUESTED, Status.RECEIVED], respond_by__lte=now)
                .order_by("respond_by")[:batch]
            )
            entries = []
            for referral in referrals:
                entries.append(
                    TimelineEntry(
                        referral=referral,
                        kind=TimelineKind.STATUS_CHANGED,
                        from_status=referral.status,
                        to_status=Status.EXPIRED,
                        at=now,
                    )
                )
                previous = referral.status
                referral.status = Status.EXPIRED
                referral.version += 1
                referral.updated = referral.closed = now
                emit(
                    "referral.status_changed",
                    organisations=_parties(referral),
                    data=_event_data(referral, now, previous_status=previous),
                )
            Referral.objects.bulk_update(referrals, ["status", "version", "updated", "closed"])
            TimelineEntry.objects.bulk_create(entries)
        done += len(referrals)
        if len(referrals) < batch:
            return done


def keys_rotate(*, batch: int = 500) -> int:
    """Rewrap every data key not wrapped by the primary KEK. Row by row under SKIP LOCKED in
    short transactions: the API keeps reading and writing throughout."""
    primary = crypto.keyring().primary
    done = 0
    while True:
        with transaction.atomic():
            keys = list(
                ReferralKey.objects.select_for_update(skip_locked=True)
                .exclude(kid=primary)
                .order_by("pk")[:batch]
            )
            for key in keys:
                plain = crypto.unwrap(key.referral_id, key.kid, key.wrapped)
                key.kid, key.wrapped = crypto.wrap(key.referral_id, plain)
                key.updated = timezone.now()
            ReferralKey.objects.bulk_update(keys, ["kid", "wrapped", "updated"])
        done += len(keys)
        if len(keys) < batch:
            return done
