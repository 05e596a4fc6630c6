"""Writes of referrals: create with consent, lifecycle transitions, notes, revocation (by either
side or the person), safe-contact changes, consent renewal, the person's self-service, and the
scheduled expiry, warning and destruction jobs. Keyword-only, one transaction each, domain
errors."""

import functools
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from api.audit.services import audit_record
from api.errors import Unprocessable, WrongParty
from api.events import Emission, emission, emit, insert_sql
from api.idempotency import idempotency_forget
from api.joins import Joined, instances, select_list
from api.preconditions import check_if_match
from api.retention import in_locked_batches
from api.throttling import hit, parse_rate
from api.timestamps import iso
from partners.models import (
    Organisation,
    Partnership,
    PartnershipStatus,
    ServiceStatus,
    TaxonomyTerm,
)
from partners.selectors import known_taxonomy_codes
from referrals import crypto, keyring, pins
from referrals.consent import FIELD_CATEGORIES, ensure_notes_consented
from referrals.errors import (
    CategoryNotAllowed,
    IllegalTransition,
    PartnershipRequired,
    ReferralClosed,
    SelfServiceRefused,
    SelfServiceThrottled,
)
from referrals.models import (
    TERMINAL_STATUSES,
    UNANSWERED_STATUSES,
    Consent,
    KeyEpoch,
    PersonalData,
    PersonalDataState,
    Referral,
    ReferralKey,
    ReferralNote,
    SelfServiceLock,
    SelfServiceToken,
    Side,
    Status,
    TimelineEntry,
    TimelineKind,
    ToldBy,
    Urgency,
)
from referrals.selectors import (
    SELF_SERVICE_FIELD,
    SelfGrant,
    data_key,
    ensure_personal_data,
    receiving_service_and_partnership,
    referral_for_party,
    referral_for_person,
    referrals_with_expired_consent,
    referrals_with_expiring_consent,
)

# No 0/O, 1/I/L: a person reads the code aloud or copies it from a scrap of paper.
CLAIM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CLAIM_LENGTH = 8

RESPOND_WITHIN = {
    Urgency.URGENT: timedelta(days=1),
    Urgency.SOON: timedelta(days=3),
    Urgency.ROUTINE: timedelta(days=10),
}
# A partner system's date typo ("2062" for "2026") must not keep a referral open for decades.
RESPOND_BY_MAX = timedelta(days=90)
CONSENT_DEFAULT = timedelta(days=90)
CONSENT_MAX = timedelta(days=365)
# Clocks of partner systems drift; a consent "given" a little in the future is not an error.
CLOCK_SKEW = timedelta(minutes=5)

CREATE_FIELDS = ("person", "safe_contact", "reason", "contact", "health", "legal")
# How long before a consent lapses the sender hears of it (`referral.consent_expiring`).
EXPIRING_NOTICE = timedelta(days=7)
# How an organisation may record that the person told it something; `self_service` is only
# ever recorded by the person's own routes.
TOLD_TO_ORGANISATION = (ToldBy.IN_PERSON, ToldBy.PHONE, ToldBy.MESSAGE)
# The parts of the consent record that say who or why in words: encrypted as the `consent`
# group, so they are destroyed with the rest instead of outliving it on the consent row.
CONSENT_PERSONAL_FIELDS = ("recorded_by", "purpose_note")


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
    """Ids, codes and a time, never personal data. The two parties are named so a receiver can
    ask for only one side's events (a FHIR Subscription filtered by owner or requester)."""
    return {
        "referral_id": str(referral.pk),
        "sender_id": str(referral.sender_id),
        "receiver_id": str(referral.receiver_id),
        "status": referral.status,
        "at": iso(at),
        **extra,
    }


def _new_claim_code() -> str:
    return "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(CLAIM_LENGTH))


def _field_error(pointer: str, detail: str, message: str | None = None) -> Unprocessable:
    """A business rule refused a field the schema allows: 422."""
    return Unprocessable(message or detail, errors=[{"pointer": pointer, "detail": detail}])


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
    *,
    consent: dict,
    receiver: Organisation,
    partnership: Partnership,
    now: datetime,
    pointer: str = "/consent",
) -> datetime:
    """Check the consent record against the partnership; return its expiry. `pointer` is where
    the consent sits in the request body (a renewal's body is the consent itself)."""
    if not consent["consented"]:
        raise _field_error(
            f"{pointer}/consented", "A referral needs the person's consent.", "Consent is required."
        )
    if consent["recipient"] != receiver.pk:
        raise _field_error(
            f"{pointer}/recipient",
            "Consent must name the receiving organisation: it covers one recipient only.",
        )
    not_allowed = sorted(set(consent["data_categories"]) - set(partnership.data_categories))
    if not_allowed:
        raise CategoryNotAllowed(
            "The partnership does not allow these data categories: " + ", ".join(not_allowed),
            rule="category_allowed",
            categories=not_allowed,
            errors=[
                {"pointer": f"{pointer}/data_categories", "detail": f"{c} is not allowed."}
                for c in not_allowed
            ],
        )
    given_at = consent["given_at"]
    if given_at > now + CLOCK_SKEW:
        raise _field_error(f"{pointer}/given_at", "Consent cannot be given in the future.")
    expires_at = consent.get("expires_at") or given_at + CONSENT_DEFAULT
    if expires_at > given_at + CONSENT_MAX:
        raise _field_error(
            f"{pointer}/expires_at", "Consent lasts at most 365 days from when it was given."
        )
    if expires_at <= now:
        raise _field_error(f"{pointer}/expires_at", "This consent has already expired.")
    return expires_at


def _service_refused(*, sender: Organisation, receiver_id) -> Unprocessable:
    """Which of the two ids is wrong, for the problem the sender gets."""
    receiver_ok = (
        receiver_id != sender.pk
        and Organisation.objects.filter(pk=receiver_id, suspended=False).exists()
    )
    if not receiver_ok:
        return _field_error("/receiver", "No organisation you can refer to has this id.")
    return _field_error("/service", "The receiving organisation has no service with this id.")


# Referral, consent, data key, ciphertexts, the first timeline entry and the outbox event in ONE
# statement: the ORM took eight round trips (two of them savepoints for the claim-code retry),
# and under load each round trip costs a context switch to PostgreSQL. ON CONFLICT on the claim
# code inserts nothing at all on a collision (about one in a million at a million referrals),
# and the caller simply retries with a new code. Nor does it insert anything when the data key's
# epoch is retired (key_epochs_rotate): the caller then wraps under the newest epoch and
# retries. The columns mirror referrals/models.py; the create tests read every row back through
# the ORM.
_INSERT_REFERRAL = """
WITH epoch AS (
    SELECT id FROM referrals_keyepoch WHERE id = %(epoch)s AND retired IS NULL
), referral AS (
    INSERT INTO referrals_referral (
        id, sender_id, receiver_id, service_id, partnership_id, urgency, needs, respond_by,
        status, decline_reason, outcome, claim_code, personal_data, self_service, version,
        created, updated)
    SELECT %(id)s, %(sender)s, %(receiver)s, %(service)s, %(partnership)s, %(urgency)s,
           %(needs)s::varchar[], %(respond_by)s, %(status)s, '', '', %(claim_code)s,
           %(personal_data)s, %(self_service)s, 1, %(now)s, %(now)s
    FROM epoch
    ON CONFLICT (claim_code) DO NOTHING
    RETURNING id
), consent AS (
    INSERT INTO referrals_consent (
        referral_id, method, language, given_at, purpose, data_categories, by_representative,
        wording_version, expires_at)
    SELECT id, %(method)s, %(language)s, %(given_at)s, %(purpose)s,
           %(data_categories)s::varchar[], %(by_representative)s, %(wording_version)s,
           %(expires_at)s
    FROM referral
), data_key AS (
    INSERT INTO referrals_referralkey (referral_id, epoch, kid, wrapped, updated)
    SELECT id, %(epoch)s, '', %(wrapped)s, %(now)s FROM referral
), personal AS (
    INSERT INTO referrals_personaldata (referral_id, field, ciphertext)
    SELECT referral.id, item.field, item.ciphertext
    FROM referral, unnest(%(fields)s::varchar[], %(ciphertexts)s::bytea[]) AS item(field, ciphertext)
), timeline AS (
    INSERT INTO referrals_timelineentry (
        referral_id, kind, actor_id, from_status, to_status, code, side, method, at)
    SELECT id, %(kind)s, %(sender)s, '', %(status)s, '', %(side)s, '', %(now)s FROM referral
), event AS ({event}
)
SELECT (SELECT count(*) FROM referral), (SELECT count(*) FROM epoch),
       (SELECT array_agg(id ORDER BY id) FROM event),
       (SELECT array_agg(dispatched_at ORDER BY id) FROM event)
"""


def _insert(
    referral: Referral, *, epoch: int | None, wrapped: bytes, fields, ciphertexts, event: Emission
) -> tuple[bool, bool]:
    """(inserted, whether the epoch was live). The event is inserted with the referral or not
    at all."""
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
        "self_service": referral.self_service,
        "now": referral.created,
        "method": consent.method,
        "language": consent.language,
        "given_at": consent.given_at,
        "purpose": consent.purpose,
        "data_categories": consent.data_categories,
        "by_representative": consent.by_representative,
        "wording_version": consent.wording_version,
        "expires_at": consent.expires_at,
        "epoch": epoch,
        "wrapped": wrapped,
        "fields": fields,
        "ciphertexts": ciphertexts,
        "kind": TimelineKind.CREATED,
        "side": Side.SENDER,
        **event.params(),
    }
    sql = _INSERT_REFERRAL.replace("{event}", insert_sql(only_if="EXISTS (SELECT FROM referral)"))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted, epoch_live, event_ids, dispatched = cursor.fetchone()
    if inserted:
        referral._state.adding = False
        consent._state.adding = False
        event.stored(dict(zip(event_ids, dispatched, strict=True)))
    return inserted == 1, epoch_live == 1


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
        raise Unprocessable(
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
            raise Unprocessable(
                "Unknown taxonomy codes: " + ", ".join(unknown),
                errors=[{"pointer": "/needs", "detail": f"Unknown code {c}."} for c in unknown],
            )
    pin = data.get("self_service_pin")
    if pin is not None:
        _check_pin(pin)
    respond_by = data.get("respond_by") or now + RESPOND_WITHIN[data["urgency"]]
    if respond_by <= now:
        raise _field_error("/respond_by", "respond_by must be in the future.")
    if respond_by > now + RESPOND_BY_MAX:
        raise _field_error(
            "/respond_by", f"respond_by must be at most {RESPOND_BY_MAX.days} days ahead."
        )

    referral = Referral(
        id=uuid.uuid4(),
        sender=sender,
        receiver=receiver,
        service=service,
        partnership=partnership,
        urgency=data["urgency"],
        needs=needs,
        respond_by=respond_by,
        self_service=pin is not None,
        created=now,
        updated=now,
    )
    referral.consent = Consent(
        referral=referral,
        method=consent["method"],
        language=consent["language"],
        given_at=consent["given_at"],
        purpose=consent["purpose"],
        data_categories=sorted(categories),
        by_representative=consent["by_representative"],
        wording_version=consent["wording_version"],
        expires_at=expires_at,
    )
    key = crypto.new_data_key()
    epoch = keyring.newest() or key_epoch_current()
    wrapped = keyring.wrap(epoch, referral.pk, key)
    groups = {name: data[name] for name in CREATE_FIELDS if name in data}
    groups["consent"] = {name: consent[name] for name in CONSENT_PERSONAL_FIELDS if name in consent}
    if pin is not None:
        groups[SELF_SERVICE_FIELD] = {"pin": pins.pin_hash(pin)}
    fields = list(groups)
    ciphertexts = [crypto.encrypt_field(key, referral.pk, name, groups[name]) for name in fields]
    event = emission("referral.received", organisations=[receiver], data=_event_data(referral, now))
    with transaction.atomic(savepoint=False):
        for _attempt in range(5):
            referral.claim_code = _new_claim_code()
            inserted, epoch_live = _insert(
                referral,
                epoch=epoch,
                wrapped=wrapped,
                fields=fields,
                ciphertexts=ciphertexts,
                event=event,
            )
            if inserted:
                return referral
            if not epoch_live:
                epoch = key_epoch_current()
                wrapped = keyring.wrap(epoch, referral.pk, key)
    raise IntegrityError("no free claim code after 5 attempts")


def _check_pin(pin: str) -> None:
    """A PIN printed on the slip or chosen by the person. The lock allows five guesses per
    quarter hour, so the guesses people try first are refused outright."""
    runs = ("0123456789", "9876543210")
    if len(set(pin)) == 1 or any(pin in run for run in runs):
        raise _field_error(
            "/self_service_pin",
            "Choose a PIN that is not one digit repeated or a run such as 1234.",
        )


def _check_if_match(referral: Referral, if_match: str | None) -> None:
    """Transitions require If-Match (RFC 9110 §13.1.1): two people at the receiving
    organisation must not both act on what they each saw as 'received'."""
    check_if_match(if_match, referral.etag, what="referral", status_now=referral.status)


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
        raise WrongParty(
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
            ensure_personal_data(referral, organisation=organisation)
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
        referral.claim_code = None
    referral.save(
        update_fields=[
            "status",
            "version",
            "updated",
            "decline_reason",
            "outcome",
            "closed",
            "claim_code",
        ]
    )
    TimelineEntry.objects.create(
        referral=referral,
        kind=TimelineKind.STATUS_CHANGED,
        actor=organisation,
        side=side,
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


@transaction.atomic
def note_add(
    *, organisation: Organisation, referral_id: uuid.UUID, text: str
) -> tuple[Referral, ReferralNote]:
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    ensure_personal_data(referral, organisation=organisation)
    ensure_notes_consented(referral)
    now = timezone.now()
    note = ReferralNote(id=uuid.uuid4(), referral=referral, author=organisation, created=now)
    note.ciphertext = crypto.encrypt_field(data_key(referral), referral.pk, f"note:{note.id}", text)
    note.save(force_insert=True)
    TimelineEntry.objects.create(
        referral=referral,
        kind=TimelineKind.NOTE_ADDED,
        actor=organisation,
        side=side_of(referral, organisation),
        at=now,
    )
    other = referral.receiver_id if organisation.pk == referral.sender_id else referral.sender_id
    emit(
        "referral.note_added",
        organisations=[Organisation(pk=other)],
        data=_event_data(referral, now, note_id=str(note.id)),
    )
    return referral, note


def personal_data_destroy(
    referral: Referral,
    state: str,
    *,
    actor,
    now: datetime,
    side: str = "",
    method: str = "",
    notify: list[Organisation] | None = None,
) -> None:
    """Crypto-shredding: delete every ciphertext and the data key, the claim code and the
    Idempotency-Key rows of the create (their keyed fingerprint was taken over the personal
    data). Metadata, consent codes and the timeline stay; copies in database files and backups
    become undecryptable when the epoch job destroys the epoch key that wrapped them
    (key_epochs_rotate). The PIN's hash is one of the ciphertexts. `notify` are the
    organisations told (default: the receiver); `side` and `method` say who recorded it and
    how the person told them."""
    PersonalData.objects.filter(referral=referral).delete()
    ReferralNote.objects.filter(referral=referral).delete()
    ReferralKey.objects.filter(referral=referral).delete()
    idempotency_forget(object_id=referral.pk)
    Referral.objects.filter(pk=referral.pk).update(
        personal_data=state, claim_code=None, version=F("version") + 1, updated=now
    )
    referral.refresh_from_db(fields=["personal_data", "claim_code", "version", "updated"])
    kind = TimelineKind.CONSENT_REVOKED if state == "revoked" else TimelineKind.CONSENT_EXPIRED
    TimelineEntry.objects.create(
        referral=referral, kind=kind, actor=actor, side=side, method=method, at=now
    )
    audit_record(
        action=f"destroy personal data ({state})",
        result="ok",
        object_type="referral",
        object_id=referral.pk,
        organisation=actor,
    )
    told = {"side": side, "method": method} if side else {}
    emit(
        "referral.consent_revoked",
        organisations=notify if notify is not None else [Organisation(pk=referral.receiver_id)],
        data=_event_data(referral, now, reason=state, **told),
    )


def _check_told(method: str) -> None:
    if method and method not in TOLD_TO_ORGANISATION:
        raise _field_error(
            "/method", "How the person told you: in_person, phone or message (or nothing)."
        )


def _others(referral: Referral, side: str) -> list[Organisation]:
    """Who hears of what one side did: the other side; both when the person acted."""
    return [
        Organisation(pk=organisation_id)
        for party, organisation_id in (
            (Side.SENDER, referral.sender_id),
            (Side.RECEIVER, referral.receiver_id),
        )
        if party != side
    ]


def _revoke(referral: Referral, *, side: str, method: str, actor) -> Referral:
    if referral.personal_data != PersonalDataState.PRESENT:
        return referral
    now = timezone.now()
    Consent.objects.filter(referral=referral).update(revoked_at=now)
    personal_data_destroy(
        referral,
        PersonalDataState.REVOKED,
        actor=actor,
        now=now,
        side=side,
        method=method,
        notify=_others(referral, side),
    )
    return referral


@transaction.atomic
def consent_revoke(
    *, organisation: Organisation, referral_id: uuid.UUID, method: str = ""
) -> Referral:
    """The person withdrew consent and told one of the organisations (`method`: in_person,
    phone or message; empty when not said). Either side records it; the other side is told.
    Never refused for a stale ETag or a suspended partnership: a withdrawal must not bounce.
    Repeating it changes nothing more."""
    _check_told(method)
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    return _revoke(
        referral, side=side_of(referral, organisation), method=method, actor=organisation
    )


def _new_version(referral: Referral, now: datetime, **entry) -> None:
    """A change beside the status (safe contact, consent): a new version, so the ETag moves,
    and its timeline entry."""
    referral.version += 1
    referral.updated = now
    referral.save(update_fields=["version", "updated"])
    TimelineEntry.objects.create(referral=referral, at=now, **entry)


def _safe_contact_write(
    referral: Referral, group: dict, *, side: str, method: str, actor, now: datetime
) -> Referral:
    """Replace the encrypted safe-contact group, version it in the timeline (metadata only:
    who, how, when and the version number) and tell the others. The group carries its own
    version, time and side, so a read shows what changed first without another query."""
    # Version 1 is what the referral was sent with; each change adds one.
    changes = TimelineEntry.objects.filter(
        referral=referral, kind=TimelineKind.SAFE_CONTACT_CHANGED
    ).count()
    version = changes + 2
    group = {**group, "version": version, "changed_at": iso(now), "changed_by": side}
    ciphertext = crypto.encrypt_field(data_key(referral), referral.pk, "safe_contact", group)
    PersonalData.objects.update_or_create(
        referral=referral, field="safe_contact", defaults={"ciphertext": ciphertext}
    )
    _new_version(
        referral,
        now,
        kind=TimelineKind.SAFE_CONTACT_CHANGED,
        actor=actor,
        side=side,
        method=method,
        version=version,
    )
    emit(
        "referral.safe_contact_changed",
        organisations=_others(referral, side),
        data=_event_data(referral, now, side=side, safe_contact_version=version),
    )
    return referral


@transaction.atomic
def safe_contact_replace(
    *,
    organisation: Organisation,
    referral_id: uuid.UUID,
    safe_contact: dict,
    if_match: str | None,
    method: str = "",
) -> Referral:
    """Either side replaces the safe-contact instructions with what the person told it. Needs
    If-Match, except `do_not_contact: true`, which applies whatever the ETag: "do not contact
    me" must never bounce."""
    _check_told(method)
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    ensure_personal_data(referral, organisation=organisation)
    if not safe_contact["do_not_contact"]:
        _check_if_match(referral, if_match)
    return _safe_contact_write(
        referral,
        safe_contact,
        side=side_of(referral, organisation),
        method=method,
        actor=organisation,
        now=timezone.now(),
    )


@transaction.atomic
def consent_renew(
    *,
    organisation: Organisation,
    referral_id: uuid.UUID,
    method: str,
    language: str,
    wording_version: str,
    recorded_by: str,
    given_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Referral:
    """The sender asked the person again and they agreed: a new consent (method, language,
    wording version, staff reference) with a new expiry, within the partnership's limits (still
    active, still allowing every consented category, at most 365 days). Only before the old
    consent expires: afterwards the data is gone (410) and only a new referral can carry it."""
    referral = referral_for_party(
        organisation=organisation, referral_id=referral_id, for_update=True
    )
    if side_of(referral, organisation) != Side.SENDER:
        raise WrongParty(
            "Only the sending organisation, which records consent, may renew it.",
            allowed_actions=allowed_actions(referral, Side.RECEIVER),
        )
    ensure_personal_data(referral, organisation=organisation)
    if referral.status in TERMINAL_STATUSES:
        raise ReferralClosed(
            f"The referral is {referral.status}: there is nothing left to renew consent for.",
            status_now=referral.status,
        )
    partnership = referral.partnership
    if partnership.status != PartnershipStatus.ACTIVE:
        raise PartnershipRequired(
            f"The partnership is {partnership.status}, not active: consent can be renewed only "
            "inside an active partnership.",
            rule="partnership_active",
            partnership_status=partnership.status,
        )
    consent = referral.consent
    now = timezone.now()
    expires_at = _validate_consent(
        consent={
            "consented": True,
            "recipient": referral.receiver_id,
            "data_categories": consent.data_categories,
            "given_at": given_at or now,
            "expires_at": expires_at,
        },
        receiver=Organisation(pk=referral.receiver_id),
        partnership=partnership,
        now=now,
        pointer="",
    )
    key = data_key(referral)
    row = PersonalData.objects.filter(referral=referral, field="consent").first()
    words = crypto.decrypt_field(key, referral.pk, "consent", row.ciphertext) if row else {}
    words["recorded_by"] = recorded_by
    PersonalData.objects.update_or_create(
        referral=referral,
        field="consent",
        defaults={"ciphertext": crypto.encrypt_field(key, referral.pk, "consent", words)},
    )
    consent.method = method
    consent.language = language
    consent.wording_version = wording_version
    consent.given_at = given_at or now
    consent.expires_at = expires_at
    consent.expiring_notified_at = None
    consent.save(
        update_fields=[
            "method",
            "language",
            "wording_version",
            "given_at",
            "expires_at",
            "expiring_notified_at",
        ]
    )
    _new_version(
        referral,
        now,
        kind=TimelineKind.CONSENT_RENEWED,
        actor=organisation,
        side=Side.SENDER,
        method=method,
    )
    emit(
        "referral.consent_renewed",
        organisations=[Organisation(pk=referral.receiver_id)],
        data=_event_data(referral, now, expires_at=iso(expires_at)),
    )
    return referral


def consents_warn_expiring(*, now: datetime | None = None, batch: int = 500) -> int:
    """Tell each sender, once, that a consent lapses within EXPIRING_NOTICE, so it can ask the
    person to renew it. Batches with SKIP LOCKED, like the other jobs."""
    now = now or timezone.now()
    done = 0
    while True:
        with transaction.atomic():
            consents = list(
                referrals_with_expiring_consent(now, within=EXPIRING_NOTICE)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("referral")
                .order_by("expires_at", "pk")[:batch]
            )
            for consent in consents:
                referral = consent.referral
                emit(
                    "referral.consent_expiring",
                    organisations=[Organisation(pk=referral.sender_id)],
                    data=_event_data(referral, now, expires_at=iso(consent.expires_at)),
                )
            Consent.objects.filter(pk__in=[c.pk for c in consents]).update(expiring_notified_at=now)
        done += len(consents)
        if len(consents) < batch:
            return done


def consents_destroy_expired(*, now: datetime | None = None, batch: int = 200) -> int:
    """Destroy the personal data of every referral whose consent has expired (reads stopped at
    the expiry itself: see selectors.ensure_personal_data). Batches with SKIP LOCKED, so it runs
    beside the API and beside another copy of itself."""
    now = now or timezone.now()
    return in_locked_batches(
        referrals_with_expired_consent(now), functools.partial(personal_data_expire, now=now), batch
    )


def personal_data_expire(referrals: list[Referral], *, now: datetime) -> None:
    """Consent expired or the retention period ended: the same shredding as a revocation, by
    nobody in particular."""
    for referral in referrals:
        personal_data_destroy(referral, PersonalDataState.EXPIRED, actor=None, now=now)


def referrals_expire_overdue(*, now: datetime | None = None, batch: int = 500) -> int:
    """Mark `expired` what is still requested or received after its respond_by."""
    now = now or timezone.now()
    done = 0
    while True:
        with transaction.atomic():
            referrals = list(
                Referral.objects.select_for_update(skip_locked=True)
                .filter(status__in=UNANSWERED_STATUSES, respond_by__lte=now)
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
                referral.claim_code = None
                emit(
                    "referral.status_changed",
                    organisations=_parties(referral),
                    data=_event_data(referral, now, previous_status=previous),
                )
            Referral.objects.bulk_update(
                referrals, ["status", "version", "updated", "closed", "claim_code"]
            )
            TimelineEntry.objects.bulk_create(entries)
        done += len(referrals)
        if len(referrals) < batch:
            return done


def keys_rotate(*, batch: int = 500) -> tuple[int, int]:
    """After a new key-encryption key became primary: rewrap every epoch key under it, and move
    data keys still wrapped by a KEK directly (from before epochs) under the newest epoch.
    Returns (epoch keys rewrapped, data keys moved); the old KEK can then be removed."""
    with transaction.atomic():
        _lock_keyring()
        rewrapped = keyring.rewrap_epoch_keys()
    moved = 0
    if ReferralKey.objects.filter(epoch=None).exists():
        key_epoch_current()
        moved = _rewrap_data_keys(epochs=None, batch=batch)
    return rewrapped, moved


# --- Epoch keys (referrals/keyring.py) -------------------------------------------------------


def _lock_keyring() -> None:
    """Serialises every change to the keyring (a new epoch, retiring, moving data keys,
    destroying, rewrapping under a new KEK) until the caller's transaction ends. A transaction
    lock, not a session lock, so it also holds behind a pooler in transaction mode."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('srn:key-epochs', 0))")


def _epoch_start(now: datetime) -> int:
    """A new newest epoch: its row, then its key file, in the caller's locked transaction. The
    number is past every row and every file, so it never meets an old or stray key file."""
    newest = KeyEpoch.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    number = max(newest, *keyring.epochs(), 0) + 1
    KeyEpoch.objects.create(pk=number, created=now)
    keyring.create(number)
    return number


def _newest_live_epoch() -> int | None:
    newest = keyring.newest(fresh=True)
    if newest is not None and KeyEpoch.objects.filter(pk=newest, retired=None).exists():
        return newest
    return None


def key_epoch_current() -> int:
    """The epoch new data keys go under: the newest key file when the database lists it as
    live, else a new epoch. Needed only when a process has no epoch yet or its cached one was
    retired, so a create seldom pays for it. The keyring's lock is taken only to start an
    epoch: a create holding its insert's locks must not queue for it behind the job."""
    newest = _newest_live_epoch()
    if newest is not None:
        return newest
    with transaction.atomic():
        _lock_keyring()
        return _newest_live_epoch() or _epoch_start(timezone.now())


@dataclass(frozen=True)
class EpochRotation:
    started: int | None
    moved: int
    destroyed: list[int]


def key_epochs_rotate(
    *, now: datetime | None = None, force: bool = False, batch: int = 500
) -> EpochRotation:
    """The epoch job (see keyring.Schedule for why these timings keep the bound):

    1. when the newest epoch is older than `rotate_after`, start a new one;
    2. once the newest is older than the grace (every process uses it by then), retire the
       older epochs: the referral insert refuses new data keys under them;
    3. move every data key under a retired epoch (or none, from before epochs) to the newest;
    4. destroy every epoch key with no data key left under it, and any key file the database
       does not list as live.

    `force` (`rotate_key_epochs --now`) does 1 and 2 at once: every data key destroyed so far
    becomes undecryptable when it returns."""
    now = now or timezone.now()
    timing = keyring.schedule()
    started = None
    with transaction.atomic():
        _lock_keyring()
        newest = KeyEpoch.objects.filter(retired=None).order_by("-pk").first()
        if force or newest is None or newest.created <= now - timing.rotate_after:
            started = _epoch_start(now)
            newest = KeyEpoch(pk=started, created=now)
        if force or newest.created <= now - timing.grace:
            KeyEpoch.objects.filter(retired=None, pk__lt=newest.pk).update(retired=now)
    retired = list(
        KeyEpoch.objects.filter(retired__isnull=False, destroyed=None).values_list("pk", flat=True)
    )
    moved = 0
    if retired:
        _wait_for_key_writers()
        moved = _rewrap_data_keys(epochs=retired, batch=batch)
    destroyed = _destroy_unused_epochs(drained=retired, now=now)
    moved += _rewrap_data_keys(epochs=None, batch=batch)
    return EpochRotation(started=started, moved=moved, destroyed=destroyed)


def _wait_for_key_writers() -> None:
    """Wait until every transaction that may have inserted a data key under an epoch just
    retired has ended. The referral insert takes its lock on the key table before it reads
    whether the epoch is live, so a SHARE lock granted after the retirement committed comes
    after every insert that read it as live; later inserts read it as retired."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        cursor.execute(f'LOCK TABLE "{ReferralKey._meta.db_table}" IN SHARE MODE')


def _rewrap_data_keys(*, epochs: list[int] | None, batch: int) -> int:
    """Move the data keys under `epochs` (None: those wrapped by a KEK directly) to the newest
    live epoch, in short locked transactions; rows being deleted right now are skipped, and
    their epoch is then destroyed by a later run."""
    moved = 0
    while True:
        with transaction.atomic():
            _lock_keyring()
            target = (
                KeyEpoch.objects.filter(retired=None)
                .order_by("-pk")
                .values_list("pk", flat=True)
                .first()
            )
            rows = ReferralKey.objects.select_for_update(skip_locked=True)
            rows = rows.filter(epoch=None) if epochs is None else rows.filter(epoch__in=epochs)
            keys = list(rows.order_by("pk")[:batch])
            now = timezone.now()
            for key in keys:
                data_key = keyring.unwrap(key.referral_id, key)
                key.epoch, key.kid, key.updated = target, "", now
                key.wrapped = keyring.wrap(target, key.referral_id, data_key)
            ReferralKey.objects.bulk_update(keys, ["epoch", "kid", "wrapped", "updated"])
        moved += len(keys)
        if len(keys) < batch:
            return moved


def _destroy_unused_epochs(*, drained: list[int], now: datetime) -> list[int]:
    """Destroy the key of every epoch in `drained` (retired before this run waited for the
    key table's writers) that no data key is left under, and every key file the database does
    not list or lists as destroyed (a stray, or a copy restored by mistake). An epoch retired by
    an overlapping run after that wait may still receive an insert: a later run destroys it."""
    with transaction.atomic():
        _lock_keyring()
        files = keyring.epochs()
        known = dict(KeyEpoch.objects.filter(pk__in=files).values_list("pk", "destroyed"))
        empty = {e for e in drained if not ReferralKey.objects.filter(epoch=e).exists()}
        destroyed = [e for e in files if e in empty or e not in known or known[e] is not None]
        for epoch in destroyed:
            keyring.destroy(epoch)
        KeyEpoch.objects.filter(pk__in=empty, destroyed=None).update(destroyed=now)
    return destroyed


# --- Self-service: the person, with claim code and PIN ---------------------------------------

SELF_TOKEN_LIFETIME = timedelta(minutes=10)
SELF_MAX_FAILURES = 5
SELF_FIRST_LOCK = timedelta(minutes=15)
# The lock doubles with each one after the first; the exponent stops here (about 1.9 years)
# so the date stays representable however long an attacker keeps at it.
SELF_LOCK_DOUBLINGS_MAX = 16
REFUSED = (
    "This code and PIN do not open anything. Check them and try again. A code stops working "
    "when the referral is finished or consent was withdrawn."
)
TOO_MANY = "Too many tries. Wait a while, then try again."

_SELF_PARTS = (Joined.of(Referral, "r", only={"id"}), Joined.of(ReferralKey, "k"))


@functools.cache
def _self_lookup_sql() -> str:
    """The code's referral, its data key and the PIN's ciphertext, as ONE row whether or not
    the code exists: an unknown code and a known one run the same statement."""
    # Only model metadata is interpolated; the code and field are bound parameters.
    return f"""
SELECT {select_list(_SELF_PARTS)}, pd.ciphertext
FROM (SELECT 1) AS one
LEFT JOIN "{Referral._meta.db_table}" r ON r.claim_code = %(code)s AND r.self_service
LEFT JOIN "{ReferralKey._meta.db_table}" k ON k.referral_id = r.id
LEFT JOIN "{PersonalData._meta.db_table}" pd ON pd.referral_id = r.id AND pd.field = %(field)s"""  # noqa: S608


# Take (or make) the code's lock row and hold it to the end of the transaction: concurrent
# guesses at one code queue behind each other, so none slips past the count.
_LOCK_TAKE = f"""
INSERT INTO "{SelfServiceLock._meta.db_table}" AS l (key, failures, locks, locked_until, updated)
VALUES (%(key)s, 0, 0, NULL, %(now)s)
ON CONFLICT (key) DO UPDATE SET updated = EXCLUDED.updated
RETURNING l.locked_until"""  # noqa: S608 - a table name, no input

# One more failure; the fifth locks the code, for SELF_FIRST_LOCK doubled per earlier lock.
_LOCK_FAIL = f"""
UPDATE "{SelfServiceLock._meta.db_table}" SET
    failures = CASE WHEN failures + 1 >= %(max)s THEN 0 ELSE failures + 1 END,
    locks = locks + CASE WHEN failures + 1 >= %(max)s THEN 1 ELSE 0 END,
    locked_until = CASE WHEN failures + 1 >= %(max)s
        THEN %(now)s + make_interval(secs => %(first)s * power(2, LEAST(locks, %(cap)s)))
        ELSE locked_until END,
    updated = %(now)s
WHERE key = %(key)s"""  # noqa: S608 - a table name, no input


def _self_throttle(*, code_key: str, address: str) -> None:
    """Count the attempt against the client address and the code (both as keyed hashes), in
    their own statements outside the sign-in's transaction, so a refusal still counts."""
    rates = settings.SELF_SERVICE_RATES
    for key, rate in (
        ("self-address:" + pins.address_key(address), rates["address"]),
        ("self-code:" + code_key[:32], rates["code"]),
    ):
        limit, window = parse_rate(rate)
        _, remaining, reset = hit(key, limit, window)
        if remaining < 0:
            raise SelfServiceThrottled(TOO_MANY, retry_after=reset)


def _stored_pin(row) -> str | None:
    """The PIN's hash from the looked-up row, or None for a code that opens nothing."""
    referral, key = instances(row, _SELF_PARTS)
    ciphertext = row[-1]
    if referral.pk is None or ciphertext is None:
        return None
    referral.key = key
    group = crypto.decrypt_field(data_key(referral), referral.pk, SELF_SERVICE_FIELD, ciphertext)
    return group["pin"]


def self_sign_in(*, code: str, pin: str, address: str) -> tuple[str, SelfGrant]:
    """Exchange a claim code and PIN for a token that opens that one referral for
    SELF_TOKEN_LIFETIME. Every way of failing (unknown code, wrong PIN, no PIN set, a code no
    longer in use) runs the same statements, the same scrypt and the same writes, and answers
    the same problem; five failures lock the code, known or not."""
    now = timezone.now()
    code = pins.normalise_code(code)
    code_key = pins.code_key(code)
    _self_throttle(code_key=code_key, address=address)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_TAKE, {"key": code_key, "now": now})
            (locked_until,) = cursor.fetchone()
            cursor.execute(_self_lookup_sql(), {"code": code, "field": SELF_SERVICE_FIELD})
            row = cursor.fetchone()
        if locked_until is not None and locked_until > now:
            audit_record(action="self-service sign-in", result="locked")
            outcome = "locked"
        elif pins.pin_matches(pin, _stored_pin(row)):
            SelfServiceLock.objects.filter(key=code_key).update(
                failures=0, locks=0, locked_until=None
            )
            referral_id = row[0]
            token = pins.new_token()
            grant = SelfGrant(
                referral_id=referral_id,
                expires=now + SELF_TOKEN_LIFETIME,
                checksum=pins.token_checksum(token),
            )
            SelfServiceToken.objects.create(
                checksum=grant.checksum, referral_id=referral_id, expires=grant.expires, created=now
            )
            audit_record(
                action="self-service sign-in",
                result="ok",
                object_type="referral",
                object_id=referral_id,
            )
            return token, grant
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    _LOCK_FAIL,
                    {
                        "key": code_key,
                        "now": now,
                        "max": SELF_MAX_FAILURES,
                        "first": SELF_FIRST_LOCK.total_seconds(),
                        "cap": SELF_LOCK_DOUBLINGS_MAX,
                    },
                )
            audit_record(action="self-service sign-in", result="refused")
            outcome = "refused"
    if outcome == "locked":
        raise SelfServiceThrottled(TOO_MANY, retry_after=(locked_until - now).total_seconds())
    raise SelfServiceRefused(REFUSED)


def self_sign_out(*, grant: SelfGrant) -> None:
    """End the token now (the page's exit, or a shared phone)."""
    SelfServiceToken.objects.filter(checksum=grant.checksum).delete()


@transaction.atomic
def self_withdraw(*, grant: SelfGrant) -> Referral:
    """The person withdraws consent themselves: a revocation (side `person`, method
    `self_service`), destroying the data as one does and telling both organisations. The token
    keeps working until it expires, so the person sees it took effect, although the claim
    code is gone."""
    referral = referral_for_person(grant=grant, for_update=True)
    return _revoke(referral, side=Side.PERSON, method=ToldBy.SELF_SERVICE, actor=None)


@transaction.atomic
def self_safe_contact_change(
    *, grant: SelfGrant, do_not_contact: bool = False, channels: list[str] | None = None
) -> Referral:
    """The person says "do not contact me", or names the channels that are safe now. The rest
    of the instructions (times, neutral name, code word) stay. Both organisations are told with
    the same event as a change they record."""
    if do_not_contact == bool(channels):
        raise Unprocessable(
            "Either stop all contact, or name the channels that are safe now.",
            errors=[{"pointer": "/channels", "detail": "Give channels, or do_not_contact."}],
        )
    referral = referral_for_person(grant=grant, for_update=True)
    ensure_personal_data(referral, organisation=None)
    if referral.status in TERMINAL_STATUSES:
        raise ReferralClosed(
            "This request is finished: nobody will contact you about it.",
            status_now=referral.status,
        )
    key = data_key(referral)
    row = PersonalData.objects.filter(referral=referral, field="safe_contact").first()
    group = crypto.decrypt_field(key, referral.pk, "safe_contact", row.ciphertext) if row else {}
    group.pop("channels", None)
    if do_not_contact:
        group["do_not_contact"] = True
    else:
        group.update(do_not_contact=False, channels=list(channels))
    _safe_contact_write(
        referral, group, side=Side.PERSON, method=ToldBy.SELF_SERVICE, actor=None,
        now=timezone.now(),
    )  # fmt: skip
    audit_record(
        action="self-service safe contact changed",
        result="ok",
        object_type="referral",
        object_id=referral.pk,
    )
    return referral
