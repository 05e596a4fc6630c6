"""Writes for the partner directory. Keyword-only, one transaction each, raising domain errors."""

import secrets

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from api.audit.services import audit_record
from api.errors import (
    Conflict,
    InvalidInput,
    Unprocessable,
    WrongParty,
)
from api.events import emit
from api.preconditions import check_if_match
from partners.models import (
    CAPACITY_FIGURES,
    OPEN_PARTNERSHIP_STATUSES,
    ORGANISATION_SHOWN,
    Application,
    Capacity,
    CapacityHistory,
    Location,
    Organisation,
    OrganisationKind,
    Partnership,
    PartnershipStatus,
    Schedule,
    Service,
    ServiceStatus,
    capacity_stale,
)
from partners.selectors import active_partner_ids


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


@transaction.atomic
def organisation_onboard(
    *, name: str, kind: str, scopes: list[str] | None = None, **profile
) -> tuple[Organisation, Application, str]:
    """Create an organisation with one client-credentials application. Returns the plaintext
    client secret: the only time anyone sees it, since only its hash is stored."""
    if kind not in OrganisationKind.values:
        raise InvalidInput(
            f"Unknown organisation kind {kind!r}.",
            errors=[{"pointer": "/kind", "detail": "Unknown kind."}],
        )
    organisation = Organisation.objects.create(name=name, kind=kind, **profile)
    application, secret = application_create(
        organisation=organisation, scopes=list(settings.SCOPES) if scopes is None else scopes
    )
    return organisation, application, secret


def application_create(
    *, organisation: Organisation, scopes: list[str], client_id: str | None = None
) -> tuple[Application, str]:
    """A partner's client, with partner scopes only: `introspection` is not one of them."""
    unknown = sorted(set(scopes) - set(settings.SCOPES))
    if unknown:
        raise InvalidInput(
            "Unknown scopes: " + " ".join(unknown),
            errors=[{"pointer": "/scopes", "detail": "Unknown scope."}],
        )
    secret = _new_secret()
    application = Application(
        name=f"{organisation.name} API client",
        organisation=organisation,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        scopes=scopes,
    )
    if client_id:
        application.client_id = client_id
    application.save()
    return application, secret


@transaction.atomic
def application_rotate_secret(*, application: Application) -> str:
    """Issue a new secret and revoke every token of the client: whoever held the old secret
    may hold its tokens too."""
    secret = _new_secret()
    application.client_secret = secret
    application.save(update_fields=["client_secret", "updated"])
    application_revoke_tokens(application=application)
    return secret


def application_revoke_tokens(*, application: Application) -> int:
    deleted, _ = get_access_token_model().objects.filter(application=application).delete()
    return deleted


# --- Organisation profile -----------------------------------------------------------------

# What an organisation edits of its profile: all but its id, its kind, the stewards' `verified`
# and the timestamps.
ORGANISATION_PROFILE_FIELDS = tuple(
    name
    for name in ORGANISATION_SHOWN
    if name not in ("id", "kind", "verified", "created", "updated")
)


@transaction.atomic
def organisation_update(*, organisation: Organisation, **fields) -> Organisation:
    """Edit the caller's own public profile. `verified` and `suspended` are for network
    stewards in the admin, never for the organisation itself."""
    changed = [name for name in fields if name in ORGANISATION_PROFILE_FIELDS]
    for name in changed:
        setattr(organisation, name, fields[name])
    organisation.save(update_fields=[*changed, "updated"])
    return organisation


@transaction.atomic
def organisation_set_verified(*, organisation: Organisation, verified: bool) -> bool:
    """A network steward vouches for an organisation (partners see `verified`), or withdraws
    it. Returns whether it changed; a change goes into the audit trail."""
    locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if locked.verified == verified:
        return False
    locked.verified = verified
    locked.save(update_fields=["verified", "updated"])
    audit_record(
        action="steward verify" if verified else "steward unverify",
        result="ok",
        object_type="organisation",
        object_id=locked.pk,
    )
    organisation.verified = verified
    return True


# --- Services -------------------------------------------------------------------------------


def _own_service(*, service: Service, organisation: Organisation) -> None:
    """Every organisation may see every service, so editing another's is the wrong party acting
    (409), not hidden (404)."""
    if service.organisation_id != organisation.pk:
        raise WrongParty(
            "This service belongs to another organisation.",
            errors=[{"pointer": "/service_id", "detail": "Not a service of yours."}],
        )


# What a replacement rewrites on a location it keeps: everything but its id, its service and
# the coarse point, which the database alone draws.
_LOCATION_REWRITTEN = [
    field.name
    for field in Location._meta.concrete_fields
    if field.editable and field.name not in ("id", "service")
]


def locations_replace(*, locations_by_service: dict) -> None:
    """Replace each service's locations with these (service id -> location dicts, each with
    its `schedules`). A location sent again at the same coordinates keeps its row (and its id)
    with every other field replaced, so the database keeps its coarse point: drawing a new one
    on every edit or re-import would let an observer average the draws back to the true
    position. Used by the API's edits and by HSDS imports alike."""
    unmatched: dict[tuple, list] = {}
    existing = Location.objects.filter(service_id__in=list(locations_by_service)).values_list(
        "service_id", "pk", "latitude", "longitude"
    )
    for service_id, pk, latitude, longitude in existing:
        unmatched.setdefault((service_id, latitude, longitude), []).append(pk)
    created, kept, schedules = [], [], []
    for service_id, specs in locations_by_service.items():
        for spec in specs:
            spec = dict(spec)
            hours = spec.pop("schedules", [])
            location = Location(service_id=service_id, **spec)
            same_place = unmatched.get((service_id, location.latitude, location.longitude))
            if same_place:
                location.pk = same_place.pop()
                kept.append(location)
            else:
                created.append(location)
            schedules.extend(Schedule(location=location, **hour) for hour in hours)
    gone = [pk for rest in unmatched.values() for pk in rest]
    if gone:
        Location.objects.filter(pk__in=gone).delete()
    if kept:
        Schedule.objects.filter(location_id__in=[location.pk for location in kept]).delete()
        Location.objects.bulk_update(kept, _LOCATION_REWRITTEN)
    Location.objects.bulk_create(created)
    Schedule.objects.bulk_create(schedules)


def _set_taxonomy(*, service: Service, codes: list[str]) -> None:
    codes = sorted(set(codes))
    service.taxonomy_codes = codes
    service.save(update_fields=["taxonomy_codes", "updated"])
    service.taxonomy_terms.set(codes)


@transaction.atomic
def service_create(
    *,
    organisation: Organisation,
    taxonomy: list[str],
    locations: list[dict] | None = None,
    capacity: dict | None = None,
    **fields,
) -> Service:
    """A new service starts with a capacity (empty and open unless given) at version 1 and
    its first history row, so ETags and history exist from the start."""
    service = Service.objects.create(organisation=organisation, **fields)
    _set_taxonomy(service=service, codes=taxonomy)
    locations_replace(locations_by_service={service.pk: locations or []})
    capacity = Capacity.objects.create(service=service, **(capacity or {}))
    capacity_history_record([capacity])
    return service


@transaction.atomic
def service_update(
    *,
    service: Service,
    organisation: Organisation,
    taxonomy: list[str] | None = None,
    locations: list[dict] | None = None,
    **fields,
) -> Service:
    """Partial update. Locations, when given, replace the old ones wholesale (with their
    schedules): partners send what is true now rather than a diff."""
    _own_service(service=service, organisation=organisation)
    for name, value in fields.items():
        setattr(service, name, value)
    service.save()
    if taxonomy is not None:
        _set_taxonomy(service=service, codes=taxonomy)
    if locations is not None:
        locations_replace(locations_by_service={service.pk: locations})
    return service


@transaction.atomic
def service_deactivate(*, service: Service, organisation: Organisation) -> Service:
    """Services are deactivated, never deleted: referrals and capacity history point at them."""
    _own_service(service=service, organisation=organisation)
    service.status = ServiceStatus.INACTIVE
    service.save(update_fields=["status", "updated"])
    return service


# --- Capacity -------------------------------------------------------------------------------

PUBLISHED_CAPACITY_FIELDS = (
    "available",
    "maximum",
    "unit",
    "description",
    "accepting_referrals",
    "estimated_wait_days",
    "valid_until",
)


def capacity_etag(capacity: Capacity) -> str:
    return f'"{capacity.service_id}.{capacity.version}"'


def capacity_history_record(capacities: list[Capacity]) -> None:
    """Append each capacity as it now is to its history (append-only: a trigger refuses
    changes)."""
    CapacityHistory.objects.bulk_create(
        [
            CapacityHistory(
                service_id=c.service_id,
                **{name: getattr(c, name) for name in CAPACITY_FIGURES},
                version=c.version,
            )
            for c in capacities
        ]
    )


def _emit_capacity_updated(*, organisation: Organisation, capacities: list[Capacity]) -> None:
    """The owner and its active partners hear about it. Stub instances carry only the id the
    outbox row needs, saving a query for organisations we never read."""
    recipients = [organisation] + [
        Organisation(pk=pk) for pk in active_partner_ids(organisation.pk)
    ]
    emit(
        "capacity.updated",
        organisations=recipients,
        data={
            "organisation_id": str(organisation.pk),
            "services": [
                {"service_id": str(c.service_id), "version": c.version} for c in capacities
            ],
        },
    )


def _check_capacity_rules(values: dict, pointer: str = "") -> list[dict]:
    """Rules across fields; also enforced by a database constraint for available/maximum."""
    errors = []
    maximum = values.get("maximum")
    if maximum is not None and values["available"] > maximum:
        errors.append({"pointer": f"{pointer}/available", "detail": "Must not be above maximum."})
    valid_until = values.get("valid_until")
    if capacity_stale(valid_until, timezone.now()):
        errors.append({"pointer": f"{pointer}/valid_until", "detail": "Must be in the future."})
    return errors


@transaction.atomic
def capacity_update(
    *, service: Service, organisation: Organisation, if_match: str | None, values: dict
) -> Capacity:
    """Replace a service's capacity, guarded by If-Match (RFC 9110 §13.1.1) so two people
    editing the same figure cannot silently overwrite each other."""
    _own_service(service=service, organisation=organisation)
    capacity, _ = Capacity.objects.select_for_update().get_or_create(service=service)
    check_if_match(if_match, capacity_etag(capacity), what="capacity")
    errors = _check_capacity_rules(values)
    if errors:
        raise Unprocessable("The capacity has invalid fields; see errors.", errors=errors)
    for name in PUBLISHED_CAPACITY_FIELDS:
        setattr(capacity, name, values.get(name, Capacity._meta.get_field(name).get_default()))
    capacity.version += 1
    capacity.save()
    capacity_history_record([capacity])
    _emit_capacity_updated(organisation=organisation, capacities=[capacity])
    return capacity


@transaction.atomic
def capacity_bulk_update(*, organisation: Organisation, items: list[dict]) -> list[Capacity]:
    """Apply many capacity updates all or nothing: any bad item rejects the whole batch with
    an error per item, and nothing is written. Locks every row first, in a fixed order, so
    two batches touching the same services cannot deadlock."""
    service_ids = [item["service_id"] for item in items]
    owners = dict(Service.objects.filter(pk__in=service_ids).values_list("pk", "organisation_id"))
    errors, foreign = [], []
    seen = set()
    for index, item in enumerate(items):
        pointer = f"/items/{index}"
        owner = owners.get(item["service_id"])
        if owner is None:
            errors.append({"pointer": f"{pointer}/service_id", "detail": "No such service."})
        elif owner != organisation.pk:
            foreign.append(
                {"pointer": f"{pointer}/service_id", "detail": "Not a service of yours."}
            )
        if item["service_id"] in seen:
            errors.append(
                {"pointer": f"{pointer}/service_id", "detail": "Service repeated in batch."}
            )
        seen.add(item["service_id"])
        errors.extend(_check_capacity_rules(item, pointer))
    if foreign:
        raise WrongParty(
            "The batch updates services of another organisation; nothing was written.",
            errors=foreign,
        )
    if errors:
        raise Unprocessable("Some items are invalid; nothing was written.", errors=errors)
    locked = set(
        Capacity.objects.select_for_update()
        .filter(service_id__in=service_ids)
        .order_by("service_id")
        .values_list("service_id", flat=True)
    )
    missing = [sid for sid in service_ids if sid not in locked]
    if missing:
        Capacity.objects.bulk_create([Capacity(service_id=sid, version=0) for sid in missing])
    updated = _apply_capacities(items)
    _emit_capacity_updated(organisation=organisation, capacities=updated)
    return updated


# One statement for the whole batch: update every capacity from parallel arrays and append
# the new versions to the history. Django's bulk_update builds a CASE per field per row,
# which takes seconds at 500 rows; this takes milliseconds.
_BULK_APPLY = """
WITH v AS (
    SELECT * FROM unnest(
        %(service_id)s::uuid[], %(available)s::int[], %(maximum)s::int[], %(unit)s::text[],
        %(description)s::text[], %(accepting)s::text[], %(wait)s::int[],
        %(valid_until)s::timestamptz[]
    ) AS v(service_id, available, maximum, unit, description, accepting, wait, valid_until)
), changed AS (
    UPDATE partners_capacity c SET
        available = v.available, maximum = v.maximum, unit = v.unit,
        description = v.description, accepting_referrals = v.accepting,
        estimated_wait_days = v.wait, valid_until = v.valid_until,
        version = c.version + 1, updated = %(now)s
    FROM v WHERE c.service_id = v.service_id
    RETURNING c.*
)
INSERT INTO partners_capacityhistory (
    service_id, available, maximum, unit, accepting_referrals, estimated_wait_days,
    valid_until, version, recorded
)
SELECT service_id, available, maximum, unit, accepting_referrals, estimated_wait_days,
       valid_until, version, %(now)s
FROM changed
RETURNING service_id, version
"""


def _apply_capacities(items: list[dict]) -> list[Capacity]:
    def column(name):
        default = Capacity._meta.get_field(name).get_default()
        return [item.get(name, default) for item in items]

    params = {
        "service_id": [item["service_id"] for item in items],
        "available": column("available"),
        "maximum": column("maximum"),
        "unit": column("unit"),
        "description": column("description"),
        "accepting": column("accepting_referrals"),
        "wait": column("estimated_wait_days"),
        "valid_until": column("valid_until"),
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(_BULK_APPLY, params)
        versions = dict(cursor.fetchall())
    return [
        Capacity(service_id=item["service_id"], version=versions[item["service_id"]])
        for item in items
    ]


# --- Partnerships ---------------------------------------------------------------------------


def _emit_partnership_changed(partnership: Partnership) -> None:
    emit(
        "partnership.changed",
        organisations=[partnership.proposer, partnership.partner],
        data={"partnership_id": str(partnership.pk), "status": partnership.status},
    )


@transaction.atomic
def partnership_propose(
    *,
    proposer: Organisation,
    partner_id,
    data_categories: list[str],
    purposes: list[str],
) -> Partnership:
    if str(partner_id) == str(proposer.pk):
        raise Unprocessable(
            "An organisation cannot partner with itself.",
            errors=[{"pointer": "/partner_id", "detail": "That is your own organisation."}],
        )
    partner = Organisation.objects.filter(pk=partner_id, suspended=False).first()
    if partner is None:
        raise Unprocessable(
            "No such organisation.",
            errors=[{"pointer": "/partner_id", "detail": "No such organisation."}],
        )
    conflict = Conflict(
        "There is already an open partnership between these organisations.",
        errors=[{"pointer": "/partner_id", "detail": "A partnership is already open."}],
    )
    if partnerships_open_between(proposer, partner):
        raise conflict
    try:
        with transaction.atomic():
            partnership = Partnership.objects.create(
                proposer=proposer,
                partner=partner,
                data_categories=sorted(set(data_categories)),
                purposes=purposes,
            )
    except IntegrityError:
        # Two proposals raced past the check; the unique constraint keeps one.
        raise conflict from None
    _emit_partnership_changed(partnership)
    return partnership


def partnerships_open_between(a: Organisation, b: Organisation) -> bool:
    return Partnership.objects.filter(
        Q(proposer=a, partner=b) | Q(proposer=b, partner=a),
        status__in=OPEN_PARTNERSHIP_STATUSES,
    ).exists()


# Who may take each step, and from which statuses. The side that received a proposal decides
# on it; either side may suspend or end; only the side that suspended may resume.
PARTNERSHIP_TRANSITIONS = {
    "accept": ({PartnershipStatus.PROPOSED}, PartnershipStatus.ACTIVE, "partner"),
    "decline": ({PartnershipStatus.PROPOSED}, PartnershipStatus.DECLINED, "partner"),
    "suspend": ({PartnershipStatus.ACTIVE}, PartnershipStatus.SUSPENDED, "either"),
    "resume": ({PartnershipStatus.SUSPENDED}, PartnershipStatus.ACTIVE, "suspender"),
    "end": (set(OPEN_PARTNERSHIP_STATUSES), PartnershipStatus.ENDED, "either"),
}


@transaction.atomic
def partnership_transition(
    *, partnership: Partnership, organisation: Organisation, action: str
) -> Partnership:
    partnership = (
        Partnership.objects.select_for_update()
        .select_related("proposer", "partner")
        .get(pk=partnership.pk)
    )
    allowed_from, target, who = PARTNERSHIP_TRANSITIONS[action]
    if partnership.status not in allowed_from:
        raise Conflict(
            f"{article(partnership.status).capitalize()} {partnership.status} partnership does "
            f"not allow {action!r}.",
            errors=[{"pointer": "/status", "detail": f"Is {partnership.status}."}],
        )
    if who == "partner" and organisation.pk != partnership.partner_id:
        raise WrongParty(f"Only the organisation a partnership was proposed to may {action} it.")
    if who == "suspender" and organisation.pk != partnership.suspended_by_id:
        raise WrongParty("Only the organisation that suspended a partnership may resume it.")
    partnership.status = target
    partnership.suspended_by = organisation if action == "suspend" else None
    partnership.save(update_fields=["status", "suspended_by", "updated"])
    _emit_partnership_changed(partnership)
    return partnership


def article(word: str) -> str:
    """ "an" before a vowel ("an active partnership"), else "a"."""
    return "an" if word[:1].lower() in "aeiou" else "a"
