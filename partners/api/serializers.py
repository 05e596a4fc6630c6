"""Shapes of the directory API. Serializers validate and render; rules live in services."""

import zoneinfo

import langcodes
from django.utils import timezone
from rest_framework import serializers

from api.serializers import FieldsBoundOnce, StrictFieldsMixin
from partners.models import (
    SAFEGUARDS,
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
)
from partners.selectors import RADIUS_KM_MAX, known_taxonomy_codes

TIME_ZONES = frozenset(zoneinfo.available_timezones())
BULK_MAX_ITEMS = 500


def validate_language_tag(value: str) -> str:
    """BCP 47, normalised (`pt-br` → `pt-BR`) so equal tags compare equal in search."""
    if not isinstance(value, str) or not langcodes.tag_is_valid(value):
        raise serializers.ValidationError(f"{value!r} is not a BCP 47 language tag.")
    return langcodes.standardize_tag(value)


def validate_taxonomy_codes(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - known_taxonomy_codes())
    if unknown:
        raise serializers.ValidationError(f"Unknown taxonomy codes: {', '.join(unknown)}.")
    return value


class LanguageTagField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=35, validators=[validate_language_tag], **kwargs)

    def to_internal_value(self, data):
        return validate_language_tag(super().to_internal_value(data))


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
        fields = [
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
        ]
        read_only_fields = fields


class OrganisationUpdateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    languages = serializers.ListField(child=LanguageTagField(), required=False, max_length=40)

    class Meta:
        model = Organisation
        fields = [
            "name",
            "community_led",
            "description",
            "website",
            "email",
            "phone",
            "languages",
            "region",
        ]
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
    time_zone = serializers.CharField(max_length=64, default="UTC")
    schedules = ScheduleSerializer(many=True, required=False)

    class Meta:
        model = Location
        fields = [
            "name",
            "address_1",
            "city",
            "region",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "time_zone",
            "confidential",
            "front_door_contact",
            "schedules",
        ]

    def validate_time_zone(self, value):
        if value not in TIME_ZONES:
            raise serializers.ValidationError("Not an IANA time zone name.")
        return value

    def validate(self, attrs):
        if (attrs.get("latitude") is None) != (attrs.get("longitude") is None):
            raise serializers.ValidationError(
                {"longitude": ["Give latitude and longitude together."]}
            )
        return attrs


class ServiceWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    taxonomy = serializers.ListField(
        child=serializers.CharField(max_length=60), min_length=1, max_length=20
    )
    languages = serializers.ListField(child=LanguageTagField(), required=False, max_length=40)
    locations = LocationWriteSerializer(many=True, required=False, max_length=50)

    class Meta:
        model = Service
        fields = [
            "name",
            "description",
            "status",
            "taxonomy",
            "languages",
            "interpretation_services",
            "eligibility_description",
            "minimum_age",
            "maximum_age",
            "cost",
            "fees_description",
            *SAFEGUARDS,
            "locations",
        ]

    def validate_taxonomy(self, value):
        return validate_taxonomy_codes(value)

    def validate(self, attrs):
        low = attrs.get("minimum_age", getattr(self.instance, "minimum_age", None))
        high = attrs.get("maximum_age", getattr(self.instance, "maximum_age", None))
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"maximum_age": ["Must not be below minimum_age."]})
        return attrs


class CapacitySerializer(serializers.ModelSerializer):
    """HSDS 3.1 service_capacity, plus whether referrals are taken and until when the figure
    holds."""

    stale = serializers.SerializerMethodField()

    class Meta:
        model = Capacity
        fields = [
            "available",
            "maximum",
            "unit",
            "description",
            "accepting_referrals",
            "estimated_wait_days",
            "valid_until",
            "version",
            "updated",
            "stale",
        ]

    def get_stale(self, capacity) -> bool:
        return capacity.valid_until is not None and capacity.valid_until <= timezone.now()


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
        if valid_until is not None and valid_until <= timezone.now():
            errors["valid_until"] = ["Must be in the future."]
        if errors:
            raise serializers.ValidationError(errors)
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
        fields = [
            "id",
            "available",
            "maximum",
            "unit",
            "accepting_referrals",
            "estimated_wait_days",
            "valid_until",
            "version",
            "recorded",
        ]


class ScheduleOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Schedule
        fields = ["weekday", "opens_at", "closes_at"]


class LocationSerializer(serializers.ModelSerializer):
    """A location as a caller may see it: a confidential one keeps its street address and
    coordinates for the owner and its active partners (`revealed` in the context)."""

    schedules = ScheduleOutSerializer(many=True)

    class Meta:
        model = Location
        fields = [
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
            "schedules",
        ]
        # Masked for non-partners (below): null is part of the answer's shape.
        extra_kwargs = {
            name: {"allow_null": True}
            for name in (
                "address_1",
                "city",
                "postal_code",
                "latitude",
                "longitude",
                "front_door_contact",
            )
        }

    def to_representation(self, location):
        data = super().to_representation(location)
        if location.confidential and not self.context.get("revealed"):
            for name in ("address_1", "city", "postal_code", "latitude", "longitude"):
                data[name] = None
        if not location.confidential:
            data["front_door_contact"] = None
        return data


class ServiceOrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name", "kind", "verified"]


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
            "id",
            "name",
            "description",
            "status",
            "organisation",
            "taxonomy",
            "languages",
            "interpretation_services",
            "eligibility_description",
            "minimum_age",
            "maximum_age",
            "cost",
            "fees_description",
            *SAFEGUARDS,
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

    taxonomy = CommaListField(
        child=serializers.CharField(max_length=60), required=False, max_length=20
    )
    language = LanguageTagField(required=False)
    near = serializers.CharField(
        required=False, help_text="`latitude,longitude` in decimal degrees (WGS 84)."
    )
    radius_km = serializers.FloatField(
        required=False, min_value=0.1, max_value=RADIUS_KM_MAX, help_text="Needs `near`."
    )
    accepting = CommaListField(
        child=serializers.ChoiceField(choices=AcceptingReferrals.choices), required=False
    )
    has_capacity = serializers.BooleanField(required=False, allow_null=True, default=None)
    fresh = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Capacity not past valid_until."
    )
    cost = CommaListField(child=serializers.ChoiceField(choices=Cost.choices), required=False)
    open_now = serializers.BooleanField(required=False, allow_null=True, default=None)
    organisation_kind = CommaListField(
        child=serializers.ChoiceField(choices=OrganisationKind.choices), required=False
    )
    q = serializers.CharField(required=False, max_length=200, help_text="Full-text search.")
    cursor = serializers.CharField(required=False, max_length=500)
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
            raise serializers.ValidationError("Latitude must be between -90 and 90.")
        if not -180 <= lon <= 180:
            raise serializers.ValidationError("Longitude must be between -180 and 180.")
        return (lat, lon)

    def validate(self, attrs):
        if "near" in attrs and "radius_km" not in attrs:
            raise serializers.ValidationError({"radius_km": ["Required with near."]})
        if "radius_km" in attrs and "near" not in attrs:
            raise serializers.ValidationError({"near": ["Required with radius_km."]})
        return attrs


class SearchCapacitySerializer(serializers.Serializer):
    available = serializers.IntegerField()
    maximum = serializers.IntegerField(allow_null=True)
    unit = serializers.ChoiceField(choices=CapacityUnit.choices)
    accepting_referrals = serializers.ChoiceField(choices=AcceptingReferrals.choices)
    estimated_wait_days = serializers.IntegerField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    updated = serializers.DateTimeField()
    stale = serializers.BooleanField()


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
        allow_null=True, help_text="Rounded to the kilometre for a confidential location."
    )


class ServiceSearchResultSerializer(serializers.Serializer):
    """One search hit. Documented here; built in SQL (see partners.selectors.service_search_sql)
    so a page costs one query and no per-row Python."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=ServiceStatus.choices)
    organisation = ServiceOrganisationSerializer()
    taxonomy = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    cost = serializers.ChoiceField(choices=Cost.choices)
    no_id_required = serializers.BooleanField()
    no_immigration_status_questions = serializers.BooleanField()
    anonymous_access = serializers.BooleanField()
    walk_in = serializers.BooleanField()
    sex_worker_friendly = serializers.BooleanField()
    trans_friendly = serializers.BooleanField()
    capacity = SearchCapacitySerializer(allow_null=True)
    distance_km = serializers.FloatField(allow_null=True)
    locations = SearchLocationSerializer(many=True)


class ServiceSearchPageSerializer(serializers.Serializer):
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last."
    )
    results = ServiceSearchResultSerializer(many=True)


# --- Partnerships ---------------------------------------------------------------------------


class PartnershipProposeSerializer(StrictFieldsMixin, serializers.Serializer):
    partner_id = serializers.UUIDField()
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices), allow_empty=False
    )
    purposes = serializers.ListField(
        child=serializers.CharField(max_length=200), allow_empty=False, max_length=20
    )


class PartnershipSerializer(serializers.ModelSerializer):
    proposer = ServiceOrganisationSerializer()
    partner = ServiceOrganisationSerializer()

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
