"""The partner directory: organisations and their OAuth applications, partnerships (data-sharing
agreements), services with locations, schedules and capacity. Field names follow Open Referral
HSDS 3.1 where HSDS has them. Nothing here is personal data about the people referred."""

import enum
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField, IntegerRangeField
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.db import models
from oauth2_provider.models import AbstractApplication


class OrganisationKind(models.TextChoices):
    SEX_WORKER_LED = "sex_worker_led", "Sex-worker-led"
    IMMIGRANT_RIGHTS = "immigrant_rights", "Immigrant rights"
    CLINIC = "clinic", "Clinic"
    LEGAL_AID = "legal_aid", "Legal aid"
    HARM_REDUCTION = "harm_reduction", "Harm reduction"
    SHELTER = "shelter", "Shelter"
    OTHER = "other", "Other"


# An organisation's public profile as the API shows it, in order.
ORGANISATION_SHOWN = (
    "id",
    "name",
    "kind",
    "community_led",
    "description",
    "website",
    "email",
    "phone",
    "languages",
    "region",
    "verified",
    "created",
    "updated",
)


class Imported(models.Model):
    """A directory record an HSDS import may write (an organisation, a service)."""

    external_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="Its HSDS id in the directory it was imported from, so a second import "
        "updates it instead of adding a copy.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Organisation(Imported):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=OrganisationKind.choices)
    community_led = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    website = models.URLField(blank=True)
    email = models.EmailField(blank=True, help_text="Public contact address, never a person's.")
    phone = models.CharField(max_length=40, blank=True)
    languages = ArrayField(models.CharField(max_length=35), default=list, blank=True)
    region = models.CharField(max_length=120, blank=True)
    verified = models.BooleanField(default=False, help_text="Set by network stewards only.")
    suspended = models.BooleanField(
        default=False, help_text="A suspended organisation's tokens stop working at once."
    )
    stats_opt_in = models.BooleanField(
        default=False, help_text="May appear by name in network statistics."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="organisation_external_id_unique",
            ),
        ]

    def __str__(self):
        return self.name


class Application(AbstractApplication):
    """An OAuth client of one organisation. Swapped in in the first migration so it never has to
    be swapped later (django-oauth-toolkit's swappable model)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="applications"
    )
    scopes = ArrayField(
        models.CharField(max_length=40),
        default=list,
        blank=True,
        help_text="The scopes this application may be granted; a token never gets more.",
    )
    resource_server = models.BooleanField(
        default=False,
        help_text="A network resource server that may introspect tokens. Never a partner.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        # Introspection reads every partner's tokens, so it is never a partner's: only the
        # resource_server flag grants it (api.oauth.ApplicationScopes), and a resource server
        # holds no partner scope, so a partner's client cannot be made one.
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(scopes__contains=[settings.INTROSPECTION_SCOPE]),
                name="application_scopes_never_introspection",
                violation_error_message="Introspection is not a scope an application is given.",
            ),
            models.CheckConstraint(
                condition=models.Q(resource_server=False) | models.Q(scopes=[]),
                name="resource_server_holds_no_partner_scope",
                violation_error_message=(
                    "A resource server holds no partner scopes: a partner's client cannot "
                    "introspect tokens."
                ),
            ),
        ]


class DataCategory(models.TextChoices):
    CONTACT = "contact", "Contact details"
    HEALTH = "health", "Health"
    LEGAL = "legal", "Legal"
    NOTES = "notes", "Notes"


class PartnershipStatus(models.TextChoices):
    PROPOSED = "proposed"
    ACTIVE = "active"
    DECLINED = "declined"
    SUSPENDED = "suspended"
    ENDED = "ended"


OPEN_PARTNERSHIP_STATUSES = (
    PartnershipStatus.PROPOSED,
    PartnershipStatus.ACTIVE,
    PartnershipStatus.SUSPENDED,
)


class PartnershipQuerySet(models.QuerySet):
    def active_for(self, organisation_id) -> "PartnershipQuerySet":
        """The active partnerships `organisation_id` is a party to: the one definition of an
        active partnership, which active_partnership_sql writes for raw SQL."""
        return self.filter(
            models.Q(proposer_id=organisation_id) | models.Q(partner_id=organisation_id),
            status=PartnershipStatus.ACTIVE,
        )


# Bind these with any SQL from active_partnership_sql.
ACTIVE_PARTNERSHIP_PARAMS = {"partnership_active": PartnershipStatus.ACTIVE}


def active_partnership_sql(alias: str, party: str, other: str | None = None) -> str:
    """PartnershipQuerySet.active_for in SQL: partnership `alias` is active and has `party` on
    one side (and `other`, if given, on the other). `party` and `other` are SQL expressions."""
    if other is None:
        sides = f"({alias}.proposer_id = {party} OR {alias}.partner_id = {party})"
    else:
        sides = (
            f"(({alias}.proposer_id = {party} AND {alias}.partner_id = {other}) "
            f"OR ({alias}.proposer_id = {other} AND {alias}.partner_id = {party}))"
        )
    return f"{alias}.status = %(partnership_active)s AND {sides}"


class Partnership(models.Model):
    """A data-sharing agreement between two organisations. Referrals flow only inside an active
    one, and only with the data categories it allows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    proposer = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="partnerships_proposed"
    )
    partner = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="partnerships_received"
    )
    status = models.CharField(
        max_length=16, choices=PartnershipStatus.choices, default=PartnershipStatus.PROPOSED
    )
    data_categories = ArrayField(
        models.CharField(max_length=16, choices=DataCategory.choices), default=list
    )
    purposes = ArrayField(models.CharField(max_length=200), default=list)
    suspended_by = models.ForeignKey(
        Organisation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The side that suspended it: only that side may resume it.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = PartnershipQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(proposer=models.F("partner")), name="partnership_not_self"
            ),
            # One open agreement per pair of organisations, whichever side proposed it.
            models.UniqueConstraint(
                models.functions.Least("proposer", "partner"),
                models.functions.Greatest("proposer", "partner"),
                condition=models.Q(status__in=["proposed", "active", "suspended"]),
                name="one_open_partnership_per_pair",
            ),
        ]

    def __str__(self):
        return f"{self.proposer} ↔ {self.partner} ({self.status})"


class TaxonomyTerm(models.Model):
    """A service type with a stable code and its names in the network's languages."""

    code = models.SlugField(max_length=60, primary_key=True)
    names = models.JSONField(help_text="Names by language code; 'en' is required.")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code

    def name_in(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]


class ServiceStatus(models.TextChoices):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DEFUNCT = "defunct"


class Cost(models.TextChoices):
    FREE = "free"
    SLIDING_SCALE = "sliding_scale"
    FEE = "fee"


SAFEGUARDS = (
    "no_id_required",
    "no_immigration_status_questions",
    "anonymous_access",
    "walk_in",
    "sex_worker_friendly",
    "trans_friendly",
)


class SafeguardFields:
    """One boolean field per access safeguard, named as in SAFEGUARDS, in the model that
    declares it (where it stands, among its other fields)."""

    def __init__(self, **options):
        self.fields = {name: models.BooleanField(**options) for name in SAFEGUARDS}

    def contribute_to_class(self, model, name):
        for field_name, field in self.fields.items():
            model.add_to_class(field_name, field)


# What every service document opens with: the service, whose it is and what it offers.
SERVICE_HEAD_FIELDS = ("id", "name", "description", "status", "organisation", "taxonomy")
# Who a service is for and on what terms: written, shown in its detail, imported in part.
SERVICE_TERMS_FIELDS = (
    "languages",
    "interpretation_services",
    "eligibility_description",
    "minimum_age",
    "maximum_age",
    "cost",
    "fees_description",
    *SAFEGUARDS,
)


class Service(Imported):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="services"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.ACTIVE
    )
    taxonomy_terms = models.ManyToManyField(TaxonomyTerm, related_name="services", blank=True)
    taxonomy_codes = ArrayField(
        models.CharField(max_length=60),
        default=list,
        blank=True,
        help_text="Denormalised copy of taxonomy_terms for one-index search.",
    )
    languages = ArrayField(models.CharField(max_length=35), default=list, blank=True)
    interpretation_services = models.TextField(blank=True)
    eligibility_description = models.TextField(blank=True)
    minimum_age = models.PositiveSmallIntegerField(null=True, blank=True)
    maximum_age = models.PositiveSmallIntegerField(null=True, blank=True)
    cost = models.CharField(max_length=16, choices=Cost.choices, default=Cost.FREE)
    fees_description = models.TextField(blank=True)
    safeguards = SafeguardFields(default=False)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            GinIndex(fields=["taxonomy_codes"], name="service_taxonomy_gin"),
            GinIndex(fields=["languages"], name="service_languages_gin"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "external_id"],
                condition=~models.Q(external_id=""),
                name="service_external_id_unique",
            ),
        ]

    def __str__(self):
        return self.name


class Location(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(max_length=200, blank=True)
    address_1 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=120, blank=True)
    region = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    confidential = models.BooleanField(
        default=False,
        help_text="A shelter or safe house: address and coordinates only for active partners.",
    )
    front_door_contact = models.CharField(
        max_length=200, blank=True, help_text="How non-partners reach a confidential location."
    )
    # Written only by the database (migration 0007), so every write path draws it the same way.
    coarse_latitude = models.FloatField(
        null=True,
        editable=False,
        help_text="The coarse point: 1-2 km from the coordinates in a random direction, drawn "
        "once when they are set or change. The search measures a confidential location from "
        "it for every caller it is hidden from.",
    )
    coarse_longitude = models.FloatField(null=True, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name or str(self.id)


class Mask(enum.Enum):
    """How a location field is masked."""

    UNLESS_REVEALED = "null on a confidential location, unless the caller may see it"
    UNLESS_CONFIDENTIAL = "null on a location that is not confidential"


# The one definition of a confidential location's masking, for the serializers and the search's
# SQL alike: its street address and coordinates are revealed only to its owner and the owner's
# active partners; the front door contact is how everyone else reaches it, so only a
# confidential location has one.
LOCATION_MASKS = {
    "address_1": Mask.UNLESS_REVEALED,
    "city": Mask.UNLESS_REVEALED,
    "postal_code": Mask.UNLESS_REVEALED,
    "latitude": Mask.UNLESS_REVEALED,
    "longitude": Mask.UNLESS_REVEALED,
    "front_door_contact": Mask.UNLESS_CONFIDENTIAL,
}


# Where a location is: what an import writes, and what the API writes beside confidentiality.
LOCATION_PLACE_FIELDS = (
    "name",
    "address_1",
    "city",
    "region",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "time_zone",
)

# A location's fields as the API shows them, in order: its detail adds the schedules, the search
# the distance.
LOCATION_SHOWN = (
    "id",
    "name",
    "confidential",
    "address_1",
    "city",
    "postal_code",
    "region",
    "country",
    "latitude",
    "longitude",
    "time_zone",
    "front_door_contact",
)


def location_masked(data: dict, *, confidential: bool, revealed: bool) -> dict:
    """`data`, a location as rendered, with the fields the caller may not see set to null."""
    for name, mask in LOCATION_MASKS.items():
        if (mask == Mask.UNLESS_REVEALED and confidential and not revealed) or (
            mask == Mask.UNLESS_CONFIDENTIAL and not confidential
        ):
            data[name] = None
    return data


def location_hidden_sql(alias: str, unrevealed: str) -> str:
    """Whether location `alias` is hidden from the caller, in SQL; `unrevealed` is the SQL
    condition that the caller is neither its owner nor an active partner of the owner."""
    return f"({alias}.confidential AND {unrevealed})"


def location_field_sql(alias: str, name: str, unrevealed: str) -> str:
    """location_masked in SQL: field `name` of location `alias`, or NULL where it is masked."""
    column = f"{alias}.{name}"
    mask = LOCATION_MASKS.get(name)
    if mask == Mask.UNLESS_REVEALED:
        return f"CASE WHEN {location_hidden_sql(alias, unrevealed)} THEN NULL ELSE {column} END"
    if mask == Mask.UNLESS_CONFIDENTIAL:
        return f"CASE WHEN {alias}.confidential THEN {column} ELSE NULL END"
    return column


class Schedule(models.Model):
    """Weekly opening hours of a location (HSDS schedule, simplified to weekday + times)."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="schedules")
    weekday = models.PositiveSmallIntegerField(help_text="ISO weekday: 1 is Monday, 7 Sunday.")
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["weekday", "opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weekday__gte=1, weekday__lte=7), name="schedule_weekday_iso"
            ),
        ]


class CapacityUnit(models.TextChoices):
    APPOINTMENTS = "appointments"
    BEDS = "beds"
    CASES = "cases"
    PLACES = "places"


class AcceptingReferrals(models.TextChoices):
    """Maps onto the HL7 FHIR SDOH Clinical Care capacity statuses."""

    OPEN = "open"
    LIMITED = "limited"
    WAITLIST = "waitlist"
    ASSESSMENT_REQUIRED = "assessment_required"
    CLOSED = "closed"


def capacity_stale(valid_until, now) -> bool:
    """A capacity whose `valid_until` has passed is stale: still shown, flagged `stale`, and
    not `fresh` for the search; a write may not set one already past."""
    return valid_until is not None and valid_until <= now


def capacity_stale_sql(alias: str) -> str:
    """capacity_stale in SQL, for rows of `alias` (a capacity or a search entry) and a bound
    `%(now)s`."""
    return f"({alias}.valid_until IS NOT NULL AND {alias}.valid_until <= %(now)s)"


# A capacity's figures, which its history keeps too (without the free-text description).
CAPACITY_FIGURES = (
    "available",
    "maximum",
    "unit",
    "accepting_referrals",
    "estimated_wait_days",
    "valid_until",
)


class Capacity(models.Model):
    """The current capacity of a service (HSDS 3.1 service_capacity). Its history is in
    CapacityHistory, appended on every change and never rewritten."""

    service = models.OneToOneField(
        Service, on_delete=models.CASCADE, primary_key=True, related_name="capacity"
    )
    available = models.PositiveIntegerField(default=0)
    maximum = models.PositiveIntegerField(null=True, blank=True)
    unit = models.CharField(
        max_length=16, choices=CapacityUnit.choices, default=CapacityUnit.APPOINTMENTS
    )
    description = models.TextField(blank=True)
    accepting_referrals = models.CharField(
        max_length=24, choices=AcceptingReferrals.choices, default=AcceptingReferrals.OPEN
    )
    estimated_wait_days = models.PositiveSmallIntegerField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "capacities"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(maximum__isnull=True)
                | models.Q(available__lte=models.F("maximum")),
                name="capacity_available_within_maximum",
            ),
        ]


class CapacityHistory(models.Model):
    id = models.BigAutoField(primary_key=True)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="capacity_history")
    available = models.PositiveIntegerField()
    maximum = models.PositiveIntegerField(null=True)
    unit = models.CharField(max_length=16, choices=CapacityUnit.choices)
    accepting_referrals = models.CharField(max_length=24, choices=AcceptingReferrals.choices)
    estimated_wait_days = models.PositiveSmallIntegerField(null=True)
    valid_until = models.DateTimeField(null=True)
    version = models.PositiveIntegerField()
    recorded = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "capacity history"


SEARCH_ENTRY_FILTERS = (
    "confidential",
    "taxonomy_codes",
    "language_keys",
    "cost",
    "organisation_kind",
    *SAFEGUARDS,
    "accepting_referrals",
    "available",
    "valid_until",
)
SEARCHABLE = models.Q(status=ServiceStatus.ACTIVE, organisation_suspended=False)


class SearchEntry(models.Model):
    """What the search filters on, copied from a service, its organisation and capacity: one
    row per location (for the distance search), a second one per confidential location at its
    coarse point, and one without a location (for the listing). So a search is one index-only
    scan instead of a lookup of every candidate in four tables. Written only by the database's
    triggers (migration 0005), whatever path wrote the source rows, through the function
    partners.search.search_entry_refresh_sql builds (migration 0010); never edit it from
    Python."""

    id = models.BigAutoField(primary_key=True)
    service_id = models.UUIDField(db_index=True)
    organisation_id = models.UUIDField(help_text="Whose it is: decides who sees it exactly.")
    location_id = models.UUIDField(null=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=ServiceStatus.choices)
    organisation_suspended = models.BooleanField()
    organisation_kind = models.CharField(max_length=32, choices=OrganisationKind.choices)
    taxonomy_codes = ArrayField(models.CharField(max_length=60))
    language_keys = ArrayField(
        models.TextField(),
        help_text="Each language tag lower-cased, with every shorter prefix ending before a "
        "hyphen (pt-br-x → pt, pt-br, pt-br-x): a search for `pt` also finds `pt-BR`.",
    )
    cost = models.CharField(max_length=16, choices=Cost.choices)
    safeguards = SafeguardFields()
    # NULL when the service has no capacity row: the same as the search's outer join.
    accepting_referrals = models.CharField(  # noqa: DJ001
        max_length=24, choices=AcceptingReferrals.choices, null=True
    )
    available = models.PositiveIntegerField(null=True)
    valid_until = models.DateTimeField(null=True)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    confidential = models.BooleanField()
    coarse = models.BooleanField(
        help_text="The row of a confidential location at its coarse point, which the search "
        "uses for callers the location is hidden from; its twin at the coordinates serves the "
        "owner and the owner's active partners."
    )

    class Meta:
        indexes = [
            # The distance search: the bounding box, every filter included (index-only).
            models.Index(
                fields=["latitude", "longitude"],
                name="searchentry_near",
                include=("service_id", "organisation_id", "coarse", *SEARCH_ENTRY_FILTERS),
                condition=SEARCHABLE & models.Q(location_id__isnull=False),
            ),
            # The listing: services in name order, every filter included (index-only).
            models.Index(
                fields=["name", "service_id"],
                name="searchentry_listing",
                include=SEARCH_ENTRY_FILTERS,
                condition=SEARCHABLE & models.Q(location_id__isnull=True),
            ),
            GinIndex(
                fields=["taxonomy_codes"],
                name="searchentry_taxonomy_gin",
                condition=SEARCHABLE & models.Q(location_id__isnull=True),
            ),
            GinIndex(
                fields=["language_keys"],
                name="searchentry_language_gin",
                condition=SEARCHABLE & models.Q(location_id__isnull=True),
            ),
        ]


# --- HSDS imports --------------------------------------------------------------------------------


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED_IMPORT_STATUSES = (ImportStatus.SUCCEEDED, ImportStatus.FAILED)


class ImportFormat(models.TextChoices):
    JSON = "json", "HSDS JSON"
    TABULAR = "tabular", "HSDS tabular Data Package (zip)"


class OnConflict(models.TextChoices):
    SKIP = "skip"
    UPDATE = "update"


class DirectoryImport(models.Model):
    """An import of an HSDS directory: a job a Celery worker runs in two phases. Reading stages
    every record (validated, with its errors) in DirectoryImportRecord; writing applies them one
    organisation at a time, each in one transaction, so a failure is all or nothing per
    organisation and a restarted worker resumes with the organisations not yet written."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="directory_imports",
        help_text="Owner of every imported record. Empty only for a steward's import from the "
        "command line, which makes or matches an organisation per HSDS organization.",
    )
    client_id = models.CharField(max_length=100, blank=True, help_text="The OAuth client.")
    format = models.CharField(max_length=16, choices=ImportFormat.choices)
    dry_run = models.BooleanField(default=False)
    on_conflict = models.CharField(
        max_length=8, choices=OnConflict.choices, default=OnConflict.SKIP
    )
    taxonomy_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text="Source taxonomy → source code → this network's code, as uploaded.",
    )
    size = models.PositiveBigIntegerField(help_text="Bytes uploaded.")
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    read = models.BooleanField(
        default=False, help_text="Every record is staged; writing may start or resume."
    )
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Records read.")
    done = models.PositiveIntegerField(default=0, help_text="Records written or decided.")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    refused_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text="The first errors, each refusing its organisation."
    )
    error_count = models.PositiveIntegerField(default=0)
    warnings = models.JSONField(
        default=list, blank=True, help_text="The first warnings: what was left out, and why."
    )
    warning_count = models.PositiveIntegerField(default=0)
    unmapped_terms = models.JSONField(
        default=list, blank=True, help_text="Source terms the mapping does not map, counted."
    )
    failure = models.TextField(blank=True, help_text="Why the job could not run to its end.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Worker runs started.")
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(
                fields=["created"],
                name="directoryimport_unfinished",
                condition=models.Q(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]),
            ),
        ]

    def __str__(self):
        return f"import {self.id} ({self.status})"


class DirectoryImportChunk(models.Model):
    """The uploaded file, in order, a megabyte a row: the worker streams it back and never
    holds it whole. Deleted when the job finishes."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(DirectoryImport, on_delete=models.CASCADE, related_name="chunks")
    sequence = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "sequence"], name="import_chunk_order"),
        ]


class DirectoryImportRecord(models.Model):
    """One record read from an import, validated and shaped for writing: a service, or (for a
    steward's import) an organisation. Deleted when the job finishes."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(DirectoryImport, on_delete=models.CASCADE, related_name="records")
    sequence = models.PositiveIntegerField(help_text="Order in the file.")
    kind = models.CharField(max_length=16, help_text="service or organization.")
    group = models.CharField(
        max_length=200, help_text="The organisation it belongs to: written all or nothing."
    )
    external_id = models.CharField(max_length=200, help_text="Its HSDS id.")
    values = models.JSONField(help_text="Fields to write.")
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    unmapped = models.JSONField(
        default=list, blank=True, help_text="Its source terms the mapping does not map."
    )
    outcome = models.CharField(
        max_length=16, blank=True, help_text="created, updated, skipped or refused, once decided."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "sequence"], name="import_record_order"),
        ]
        indexes = [models.Index(fields=["job", "group", "sequence"], name="import_record_group")]


class OpeningHours(models.Model):
    """One stretch of a service's weekly opening hours in one time zone, as seconds of the local
    ISO week (Monday 00:00 is 0), so `open_now` is one index probe per time zone, or one
    look-up per candidate, instead of every candidate's schedules read in its location's clock.
    A schedule that closes at or before it opens runs past midnight; one past Sunday midnight
    continues as a second stretch from Monday 00:00. Written only by the database's triggers
    (migration 0009) from the schedules and locations; never edit it from Python."""

    id = models.BigAutoField(primary_key=True)
    service_id = models.UUIDField(db_index=True)
    time_zone = models.CharField(max_length=64)
    open_seconds = IntegerRangeField()

    class Meta:
        indexes = [
            models.Index(fields=["time_zone"], name="openinghours_time_zone"),
            GistIndex(fields=["open_seconds"], name="openinghours_open_seconds"),
        ]
