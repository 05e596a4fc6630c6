"""Shapes of the directory API. Serializers validate and render; rules live in services."""

import re
import zoneinfo

import langcodes
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from rest_framework import serializers

from api.pagination import CURSOR_PATTERN
from api.serializers import FieldsBoundOnce, StrictFieldsMixin, rule_error
from partners.models import (
    CAPACITY_FIGURES,
    LOCATION_MASKS,
    LOCATION_PLACE_FIELDS,
    LOCATION_SHOWN,
    ORGANISATION_SHOWN,
    SAFEGUARDS,
    SERVICE_HEAD_FIELDS,
    SERVICE_TERMS_FIELDS,
    AcceptingReferrals,
    Capacity,
    CapacityHistory,
    CapacityUnit,
    Cost,
    DataCategory,
    Location,
    Organisation,
    OrganisationKind,
    Partnership,
    Schedule,
    Service,
    ServiceStatus,
    TaxonomyTerm,
    capacity_stale,
    location_masked,
)
from partners.search import (
    CAPACITY_FIELDS,
    LOCATION_FIELDS,
    ORGANISATION_FIELDS,
    RADIUS_KM_MAX,
    RESULT_FIELDS,
)
from partners.selectors import known_taxonomy_codes
from partners.services import ORGANISATION_PROFILE_FIELDS, PUBLISHED_CAPACITY_FIELDS

TIME_ZONES = frozenset(zoneinfo.available_timezones())
BULK_MAX_ITEMS = 500
# A week of opening hours needs a handful of rows; the bound keeps one request's work finite.
SCHEDULES_MAX_PER_LOCATION = 50


# A well-formed BCP 47 tag (RFC 5646 §2.1, without grandfathered tags): the schema's pattern.
# A well-formed tag with a subtag no registry holds (`qqx`) is then refused by a rule: 422.
LANGUAGE_TAG_PATTERN = (
    r"^[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(-[0-9A-WY-Za-wy-z](-[A-Za-z0-9]{2,8})+)*"
    r"(-[Xx](-[A-Za-z0-9]{1,8})+)?$"
)
# An IANA time zone name's shape (`Europe/Lisbon`, `America/Argentina/Buenos_Aires`, `UTC`,
# `Etc/GMT+5`); one the time zone database does not hold is refused by a rule: 422.
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9][A-Za-z0-9_+-]{0,29}){0,2}$"


def validate_language_tag(value: str) -> str:
    """BCP 47, normalised (`pt-br` → `pt-BR`) so equal tags compare equal in search."""
    if not isinstance(value, str) or not langcodes.tag_is_valid(value):
        raise rule_error(f"{value!r} is not a BCP 47 language tag.")
    return langcodes.standardize_tag(value)


def validate_taxonomy_codes(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - known_taxonomy_codes())
    if unknown:
        raise rule_error(f"Unknown taxonomy codes: {', '.join(unknown)}.")
    return value


class PatternThenRuleField(serializers.RegexField):
    """A string the schema gives a pattern, then a rule: not matching the pattern is a 400,
    breaking the rule a 422."""

    PATTERN = ""
    MAX_LENGTH = 0

    def __init__(self, **kwargs):
        super().__init__(self.PATTERN, max_length=self.MAX_LENGTH, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        self.run_validators(value)  # the pattern first: not matching it is a 400
        return self.rule(value)

    def rule(self, value: str) -> str:
        raise NotImplementedError


class LanguageTagField(PatternThenRuleField):
    PATTERN = LANGUAGE_TAG_PATTERN
    MAX_LENGTH = 35

    def rule(self, value: str) -> str:
        return validate_language_tag(value)


class TaxonomyCodeField(serializers.RegexField):
    """A taxonomy code's shape (a slug); whether the taxonomy holds it is a rule (422)."""

    def __init__(self, **kwargs):
        super().__init__(r"^[-a-zA-Z0-9_]+$", max_length=60, **kwargs)


class TimeZoneField(PatternThenRuleField):
    PATTERN = TIME_ZONE_PATTERN
    MAX_LENGTH = 64

    def rule(self, value: str) -> str:
        if value not in TIME_ZONES:
            raise rule_error("Not an IANA time zone name.")
        return value


class WebsiteField(serializers.URLField):
    """The schema says `format: uri`: a string with no scheme or with white space is a 400.
    Many URIs (`a:b`, `http://intranet`) are still no address a visitor can open: Django's URL
    validator decides that, as a rule (422)."""

    URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S*")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)]

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        self.run_validators(value)  # the length first: over it is a 400
        if not self.URI.fullmatch(value):
            raise serializers.ValidationError("Not a URI: a scheme such as https:, then the rest.")
        try:
            URLValidator()(value)
        except DjangoValidationError:
            raise rule_error("Not a web address: http(s), then a host name or address.") from None
        return value


# --- Organisations --------------------------------------------------------------------------


class OrganisationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name", "kind", "community_led", "region", "verified"]


class MeSerializer(serializers.Serializer):
    organisation = OrganisationSummarySerializer()
    client_id = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    token_expires = serializers.DateTimeField()


class OrganisationSerializer(serializers.ModelSerializer):
    # Both may be empty, which `format: uri`/`email` would forbid (Schemathesis, response schema).
    website = serializers.CharField(read_only=True, help_text="Empty when there is none.")
    email = serializers.CharField(
        read_only=True, help_text="Public contact address, never a person's; may be empty."
    )

    class Meta:
        model = Organisation
        fields = list(ORGANISATION_SHOWN)
        read_only_fields = fields


class OrganisationUpdateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    languages = serializers.ListField(child=LanguageTagField(), required=False, max_length=40)
    website = WebsiteField(
        max_length=200, allow_blank=True, required=False, help_text="Its public website."
    )

    class Meta:
        model = Organisation
        fields = list(ORGANISATION_PROFILE_FIELDS)
        extra_kwargs = {"name": {"required": False}}


# --- Taxonomy -------------------------------------------------------------------------------


class TaxonomyTermSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = TaxonomyTerm
        fields = ["code", "name", "description"]

    def get_name(self, term) -> str:
        return term.name_in(self.context.get("language", "en"))


# --- Services -------------------------------------------------------------------------------


class ScheduleSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    weekday = serializers.IntegerField(min_value=1, max_value=7, help_text="ISO: 1 is Monday.")

    class Meta:
        model = Schedule
        fields = ["weekday", "opens_at", "closes_at"]


class LocationWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True)
    longitude = serializers.FloatField(
        min_value=-180, max_value=180, required=False, allow_null=True
    )
    time_zone = TimeZoneField(default="UTC")
    schedules = ScheduleSerializer(many=True, required=False, max_length=SCHEDULES_MAX_PER_LOCATION)

    class Meta:
        model = Location
        fields = [*LOCATION_PLACE_FIELDS, "confidential", "front_door_contact", "schedules"]

    def validate(self, attrs):
        if (attrs.get("latitude") is None) != (attrs.get("longitude") is None):
            raise rule_error({"longitude": ["Give latitude and longitude together."]})
        return attrs


class ServiceWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    taxonomy = serializers.ListField(child=TaxonomyCodeField(), min_length=1, max_length=20)
    languages = serializers.ListField(child=LanguageTagField(), required=False, max_length=40)
    locations = LocationWriteSerializer(many=True, required=False, max_length=50)

    class Meta:
        model = Service
        fields = ["name", "description", "status", "taxonomy", *SERVICE_TERMS_FIELDS, "locations"]

    def validate_taxonomy(self, value):
        return validate_taxonomy_codes(value)

    def validate(self, attrs):
        low = attrs.get("minimum_age", getattr(self.instance, "minimum_age", None))
        high = attrs.get("maximum_age", getattr(self.instance, "maximum_age", None))
        if low is not None and high is not None and low > high:
            raise rule_error({"maximum_age": ["Must not be below minimum_age."]})
        return attrs


class CapacitySerializer(serializers.ModelSerializer):
    """HSDS 3.1 service_capacity, plus whether referrals are taken and until when the figure
    holds."""

    stale = serializers.SerializerMethodField()

    class Meta:
        model = Capacity
        fields = [*PUBLISHED_CAPACITY_FIELDS, "version", "updated", "stale"]

    def get_stale(self, capacity) -> bool:
        return capacity_stale(capacity.valid_until, timezone.now())


class CapacityWriteSerializer(StrictFieldsMixin, serializers.Serializer):
    available = serializers.IntegerField(min_value=0, max_value=1_000_000)
    maximum = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True
    )
    unit = serializers.ChoiceField(choices=CapacityUnit.choices)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    accepting_referrals = serializers.ChoiceField(choices=AcceptingReferrals.choices)
    estimated_wait_days = serializers.IntegerField(
        min_value=0, max_value=3650, required=False, allow_null=True
    )
    valid_until = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs):
        """The service layer checks these too; here they join the other field errors, so a
        bulk batch reports every bad item at once."""
        errors = {}
        maximum = attrs.get("maximum")
        if maximum is not None and attrs["available"] > maximum:
            errors["available"] = ["Must not be above maximum."]
        valid_until = attrs.get("valid_until")
        if capacity_stale(valid_until, timezone.now()):
            errors["valid_until"] = ["Must be in the future."]
        if errors:
            raise rule_error(errors)
        return attrs


class CapacityBulkItemSerializer(CapacityWriteSerializer):
    service_id = serializers.UUIDField()


class CapacityBulkSerializer(StrictFieldsMixin, serializers.Serializer):
    items = CapacityBulkItemSerializer(many=True, allow_empty=False)


class CapacityBulkResultItemSerializer(serializers.Serializer):
    service_id = serializers.UUIDField()
    version = serializers.IntegerField()


class CapacityBulkResultSerializer(serializers.Serializer):
    updated = CapacityBulkResultItemSerializer(many=True)


class CapacityHistorySerializer(serializers.ModelSerializer):
    class Meta:
        model = CapacityHistory
        fields = ["id", *CAPACITY_FIGURES, "version", "recorded"]


class ScheduleOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Schedule
        fields = ["weekday", "opens_at", "closes_at"]


class LocationSerializer(serializers.ModelSerializer):
    """A location as you may see it: a confidential one shows its street address and
    coordinates only to its owner and the owner's active partners."""

    # The view says which by `revealed` in the context.

    schedules = ScheduleOutSerializer(many=True)

    class Meta:
        model = Location
        fields = [*LOCATION_SHOWN, "schedules"]
        # Masked (partners.models.LOCATION_MASKS): null is part of the answer's shape.
        extra_kwargs = {name: {"allow_null": True} for name in LOCATION_MASKS}

    def to_representation(self, location):
        return location_masked(
            super().to_representation(location),
            confidential=location.confidential,
            revealed=bool(self.context.get("revealed")),
        )


class ServiceOrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = list(ORGANISATION_FIELDS)


class ServiceTaxonomySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class ServiceDetailSerializer(serializers.ModelSerializer):
    organisation = ServiceOrganisationSerializer()
    taxonomy = serializers.SerializerMethodField()
    locations = LocationSerializer(many=True)
    capacity = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            *SERVICE_HEAD_FIELDS,
            *SERVICE_TERMS_FIELDS,
            "capacity",
            "locations",
            "created",
            "updated",
        ]

    def get_taxonomy(self, service) -> ServiceTaxonomySerializer(many=True):
        names = self.context.get("taxonomy_names", {})
        return [{"code": code, "name": names.get(code, code)} for code in service.taxonomy_codes]

    def get_capacity(self, service) -> CapacitySerializer(allow_null=True):
        capacity = getattr(service, "capacity", None)
        return CapacitySerializer(capacity).data if capacity is not None else None


# --- Search ---------------------------------------------------------------------------------


class CommaListField(serializers.ListField):
    """A list that may also arrive as repeated query parameters or one comma-separated one."""

    def to_internal_value(self, data):
        # Empty items are kept, so the child refuses them: a filter must not vanish silently
        # (Schemathesis: `"taxonomy": [""]` searched everything).
        if isinstance(data, str):
            data = data.split(",")
        elif isinstance(data, list) and all(isinstance(item, str) for item in data):
            data = [part for item in data for part in item.split(",")]
        return super().to_internal_value(data)


class ServiceSearchQuerySerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    """The search filters, the same whether they come as query parameters (GET) or as a JSON
    body (POST /services/search, which keeps what a person needs out of URLs and logs)."""

    taxonomy = CommaListField(child=TaxonomyCodeField(), required=False, max_length=20)
    language = LanguageTagField(required=False)
    near = serializers.RegexField(
        r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?,-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$",
        max_length=100,
        required=False,
        help_text="`latitude,longitude` in decimal degrees (WGS 84).",
    )
    radius_km = serializers.FloatField(
        required=False, min_value=0.1, max_value=RADIUS_KM_MAX, help_text="Needs `near`."
    )
    accepting = CommaListField(
        child=serializers.ChoiceField(choices=AcceptingReferrals.choices),
        required=False,
        max_length=len(AcceptingReferrals.choices),
    )
    has_capacity = serializers.BooleanField(required=False, allow_null=True, default=None)
    fresh = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Capacity not past valid_until."
    )
    cost = CommaListField(
        child=serializers.ChoiceField(choices=Cost.choices),
        required=False,
        max_length=len(Cost.choices),
    )
    open_now = serializers.BooleanField(required=False, allow_null=True, default=None)
    organisation_kind = CommaListField(
        child=serializers.ChoiceField(choices=OrganisationKind.choices),
        required=False,
        max_length=len(OrganisationKind.choices),
    )
    q = serializers.CharField(required=False, max_length=200, help_text="Full-text search.")
    cursor = serializers.RegexField(
        CURSOR_PATTERN,
        required=False,
        max_length=500,
        help_text="The `cursor` of the previous page's `next` link, with the same filters "
        "(opaque).",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=25)

    def get_fields(self):
        fields = super().get_fields()
        for name in SAFEGUARDS:
            fields[name] = serializers.BooleanField(required=False, allow_null=True, default=None)
        return fields

    def validate_taxonomy(self, value):
        return validate_taxonomy_codes(value)

    def validate_near(self, value):
        parts = value.split(",")
        try:
            lat, lon = (float(part) for part in parts)
        except ValueError:
            raise serializers.ValidationError("Use `latitude,longitude`.") from None
        if not -90 <= lat <= 90:
            raise rule_error("Latitude must be between -90 and 90.")
        if not -180 <= lon <= 180:
            raise rule_error("Longitude must be between -180 and 180.")
        return (lat, lon)

    def validate(self, attrs):
        if "near" in attrs and "radius_km" not in attrs:
            raise rule_error({"radius_km": ["Required with near."]})
        if "radius_km" in attrs and "near" not in attrs:
            raise rule_error({"near": ["Required with radius_km."]})
        return attrs


def in_search_shape(fields: dict, shape: tuple[str, ...]) -> dict:
    """The declared fields in the order of the JSON the search builds in SQL from the same
    tuple (partners.search), which must name the same fields."""
    if set(fields) != set(shape):
        raise ImproperlyConfigured(
            f"The search builds {shape}; its serializer has {tuple(fields)}."
        )
    return {name: fields[name] for name in shape}


class SearchCapacitySerializer(serializers.Serializer):
    available = serializers.IntegerField()
    maximum = serializers.IntegerField(allow_null=True)
    unit = serializers.ChoiceField(choices=CapacityUnit.choices)
    accepting_referrals = serializers.ChoiceField(choices=AcceptingReferrals.choices)
    estimated_wait_days = serializers.IntegerField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    updated = serializers.DateTimeField()
    stale = serializers.BooleanField()

    def get_fields(self):
        return in_search_shape(super().get_fields(), CAPACITY_FIELDS)


class SearchLocationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    confidential = serializers.BooleanField()
    address_1 = serializers.CharField(allow_null=True)
    city = serializers.CharField(allow_null=True)
    postal_code = serializers.CharField(allow_null=True)
    region = serializers.CharField()
    country = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    time_zone = serializers.CharField()
    front_door_contact = serializers.CharField(allow_null=True)
    distance_km = serializers.FloatField(
        allow_null=True,
        help_text="For a confidential location hidden from you: the distance of a fixed point "
        "1-2 km from it, rounded to the kilometre.",
    )

    def get_fields(self):
        return in_search_shape(super().get_fields(), LOCATION_FIELDS)

    def to_representation(self, location):
        """Masked as the search's SQL masks it: `revealed` in the context says whether the
        caller may see this service's confidential locations."""
        return location_masked(
            super().to_representation(location),
            confidential=location.confidential,
            revealed=bool(self.context.get("revealed")),
        )


class ServiceSearchResultSerializer(serializers.Serializer):
    """One search hit."""

    # Documents the hit: the API builds it in SQL (partners.search), so a page costs one query
    # and no per-row Python. A test renders hits with this serializer and compares.

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=ServiceStatus.choices)
    organisation = ServiceOrganisationSerializer()
    taxonomy = ServiceTaxonomySerializer(many=True, help_text="As a service's detail shows it.")
    languages = serializers.ListField(child=serializers.CharField())
    cost = serializers.ChoiceField(choices=Cost.choices)
    capacity = SearchCapacitySerializer(allow_null=True)
    distance_km = serializers.FloatField(allow_null=True)
    locations = SearchLocationSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields.update((name, serializers.BooleanField()) for name in SAFEGUARDS)
        return in_search_shape(fields, RESULT_FIELDS)


# --- Partnerships ---------------------------------------------------------------------------


class PartnershipProposeSerializer(StrictFieldsMixin, serializers.Serializer):
    partner_id = serializers.UUIDField()
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices), allow_empty=False
    )
    purposes = serializers.ListField(
        child=serializers.CharField(max_length=200), allow_empty=False, max_length=20
    )


class PartnershipPartySerializer(serializers.ModelSerializer):
    """One side of a partnership: the organisation that proposed it, or the one it was
    proposed to."""

    class Meta:
        model = Organisation
        fields = ["id", "name", "kind", "verified"]


class PartnershipSerializer(serializers.ModelSerializer):
    proposer = PartnershipPartySerializer(help_text="The organisation that proposed it.")
    partner = PartnershipPartySerializer(help_text="The organisation it was proposed to.")

    class Meta:
        model = Partnership
        fields = [
            "id",
            "proposer",
            "partner",
            "status",
            "data_categories",
            "purposes",
            "suspended_by",
            "created",
            "updated",
        ]
