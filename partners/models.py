"""The partner directory: organisations and their OAuth applications, partnerships (data-sharing
agreements), services with locations, schedules and capacity. Field names follow Open Referral
HSDS 3.1 where HSDS has them. Nothing here is personal data about the people referred."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
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


class Organisation(models.Model):
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
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

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


class Service(models.Model):
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
    no_id_required = models.BooleanField(default=False)
    no_immigration_status_questions = models.BooleanField(default=False)
    anonymous_access = models.BooleanField(default=False)
    walk_in = models.BooleanField(default=False)
    sex_worker_friendly = models.BooleanField(default=False)
    trans_friendly = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            GinIndex(fields=["taxonomy_codes"], name="service_taxonomy_gin"),
            GinIndex(fields=["languages"], name="service_languages_gin"),
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

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name or str(self.id)


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
    row per location (for the distance search) and one without a location (for the listing).
    So a search is one index-only scan instead of a lookup of every candidate in four tables.
    Written only by the database's triggers (migration 0005), whatever path wrote the source
    rows; never edit it from Python."""

    id = models.BigAutoField(primary_key=True)
    service_id = models.UUIDField(db_index=True)
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
    no_id_required = models.BooleanField()
    no_immigration_status_questions = models.BooleanField()
    anonymous_access = models.BooleanField()
    walk_in = models.BooleanField()
    sex_worker_friendly = models.BooleanField()
    trans_friendly = models.BooleanField()
    # NULL when the service has no capacity row: the same as the search's outer join.
    accepting_referrals = models.CharField(  # noqa: DJ001
        max_length=24, choices=AcceptingReferrals.choices, null=True
    )
    available = models.PositiveIntegerField(null=True)
    valid_until = models.DateTimeField(null=True)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    confidential = models.BooleanField()

    class Meta:
        indexes = [
            # The distance search: the bounding box, every filter included (index-only).
            models.Index(
                fields=["latitude", "longitude"],
                name="searchentry_near",
                include=("service_id", *SEARCH_ENTRY_FILTERS),
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
