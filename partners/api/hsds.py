"""The HSDS 3.1 export (Open Referral): the directory in the shapes of the HSDS API, for other
directories and 211 systems. Confidential locations are never exported, whoever asks: an
export is copied onward, beyond the partnerships that gate them here.

HSDS wants a UUID for every object; objects that have no UUID here (taxonomy terms, units,
capacities, schedules) get a stable name-based UUID (RFC 9562 v5) so they do not change
between exports."""

import math
import uuid
from datetime import UTC

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import InvalidInput, NotFound
from partners import selectors
from partners.api.views import NOT_FOUND
from partners.models import Location, Organisation, Schedule, Service, TaxonomyTerm

HSDS_NAMESPACE = uuid.UUID("5b1c2f0e-3d4a-4c6b-8e9f-0a1b2c3d4e5f")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PER_PAGE_DEFAULT = 25
PER_PAGE_MAX = 100
PAGE_MAX = 1_000_000  # far past any directory's end; keeps OFFSET inside bigint


def stable_id(*parts) -> str:
    return str(uuid.uuid5(HSDS_NAMESPACE, ":".join(str(part) for part in parts)))


def taxonomy_term_id(code: str) -> str:
    return stable_id("taxonomy_term", code)


def _set(out: dict, key: str, value) -> None:
    """HSDS fields are optional: omit empty ones rather than send blanks that fail formats."""
    if value not in (None, "", []):
        out[key] = value


def organization_list_item(org: Organisation) -> dict:
    out = {"id": str(org.id), "name": org.name, "description": org.description}
    _set(out, "email", org.email)
    _set(out, "website", org.website)
    return out


def organization_full(org: Organisation) -> dict:
    out = organization_list_item(org)
    if org.phone:
        out["phones"] = [
            {"id": stable_id("phone", org.id), "organization_id": str(org.id), "number": org.phone}
        ]
    out["services"] = [service_list_item(service) for service in org.active_services]
    return out


def service_list_item(service: Service) -> dict:
    out = {
        "id": str(service.id),
        "organization_id": str(service.organisation_id),
        "name": service.name,
        "description": service.description,
        "status": service.status,
        "last_modified": service.updated.isoformat(),
    }
    _set(out, "interpretation_services", service.interpretation_services)
    _set(out, "eligibility_description", service.eligibility_description)
    _set(out, "fees_description", service.fees_description)
    _set(out, "minimum_age", service.minimum_age)
    _set(out, "maximum_age", service.maximum_age)
    return out


def _schedule(schedule: Schedule, location: Location, sal_id: str) -> dict:
    return {
        "id": stable_id("schedule", schedule.pk),
        "location_id": str(location.id),
        "service_at_location_id": sal_id,
        "freq": "WEEKLY",
        "wkst": "MO",
        "byday": WEEKDAYS[schedule.weekday - 1],
        "opens_at": schedule.opens_at.isoformat(),
        "closes_at": schedule.closes_at.isoformat(),
        "description": f"Local time, {location.time_zone}.",
    }


def _service_at_location(service: Service, location: Location) -> dict:
    sal_id = stable_id("service_at_location", location.id)
    place = {"id": str(location.id), "location_type": "physical"}
    _set(place, "name", location.name)
    _set(place, "latitude", location.latitude)
    _set(place, "longitude", location.longitude)
    if location.address_1:
        place["addresses"] = [
            {
                "id": stable_id("address", location.id),
                "location_id": str(location.id),
                "address_1": location.address_1,
                "city": location.city,
                "state_province": location.region,
                "region": location.region,
                "postal_code": location.postal_code,
                "country": location.country,
                "address_type": "physical",
            }
        ]
    return {
        "id": sal_id,
        "service_id": str(service.id),
        "location_id": str(location.id),
        "location": place,
        "schedules": [_schedule(s, location, sal_id) for s in location.schedules.all()],
    }


def service_full(service: Service, terms: dict[str, TaxonomyTerm]) -> dict:
    out = service_list_item(service)
    out["organization"] = organization_list_item(service.organisation)
    out["languages"] = [
        {
            "id": stable_id("language", service.id, tag),
            "service_id": str(service.id),
            "name": tag,
            "code": tag,
        }
        for tag in service.languages
    ]
    out["service_at_locations"] = [
        _service_at_location(service, location)
        for location in service.locations.all()
        if not location.confidential
    ]
    out["attributes"] = [
        {
            "id": stable_id("attribute", service.id, code),
            "link_id": str(service.id),
            "link_type": "service_type",
            "link_entity": "service",
            "taxonomy_term_id": taxonomy_term_id(code),
            "taxonomy_term": {
                "id": taxonomy_term_id(code),
                "code": code,
                "name": terms[code].names["en"] if code in terms else code,
                "description": terms[code].description if code in terms else "",
                "taxonomy": "srn",
            },
        }
        for code in service.taxonomy_codes
    ]
    capacity = getattr(service, "capacity", None)
    out["capacities"] = []
    if capacity is not None:
        entry = {
            "id": stable_id("capacity", service.id),
            "service_id": str(service.id),
            "unit": {"id": stable_id("unit", capacity.unit), "name": capacity.unit},
            "available": capacity.available,
            "updated": capacity.updated.isoformat(),
        }
        _set(entry, "maximum", capacity.maximum)
        _set(entry, "description", capacity.description)
        out["capacities"].append(entry)
    return out


# --- Pages and parameters ---------------------------------------------------------------------


def _int_param(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum else ""
        raise InvalidInput(
            f"{name} must be a whole number from 1{limit}.",
            errors=[{"pointer": f"/{name}", "detail": "Out of range."}],
        )
    return value


def page_of(request, queryset: QuerySet, shape) -> dict:
    """The HSDS API `Page` object (1-based page numbers)."""
    page = _int_param(request, "page", 1, PAGE_MAX)
    per_page = _int_param(request, "per_page", PER_PAGE_DEFAULT, PER_PAGE_MAX)
    total = queryset.count()
    total_pages = max(1, math.ceil(total / per_page))
    rows = list(queryset[(page - 1) * per_page : page * per_page])
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page,
        "size": len(rows),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not rows,
        "contents": [shape(row) for row in rows],
    }


def _modified_after(request):
    raw = request.query_params.get("modified_after")
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:  # well-formed but impossible, such as month 13
        value = None
    if value is None:
        raise InvalidInput(
            "modified_after must be an ISO 8601 date-time.",
            errors=[{"pointer": "/modified_after", "detail": "Not a date-time."}],
        )
    # In UTC: PostgreSQL refuses offsets Python accepts (Schemathesis sent +21:33: a 500), and
    # a date-time without an offset is read as UTC.
    if timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _uuid_param(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a UUID.", errors=[{"pointer": f"/{name}", "detail": "Not a UUID."}]
        ) from None


def _taxonomy_code(request) -> str | None:
    """HSDS filters by taxonomy term id; ours are derived from codes, and a code is accepted
    too."""
    raw = request.query_params.get("taxonomy_term_id")
    if raw is None:
        return None
    for code in selectors.known_taxonomy_codes():
        if raw in (code, taxonomy_term_id(code)):
            return code
    raise InvalidInput(
        "Unknown taxonomy term.",
        errors=[{"pointer": "/taxonomy_term_id", "detail": "Unknown taxonomy term."}],
    )


PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="1-based page number."),
    OpenApiParameter("per_page", OpenApiTypes.INT, description=f"At most {PER_PAGE_MAX}."),
    OpenApiParameter("search", OpenApiTypes.STR, description="Full-text search."),
    OpenApiParameter(
        "modified_after", OpenApiTypes.DATETIME, description="Only objects changed after this."
    ),
]


def hsds_page_serializer(name: str):
    return inline_serializer(
        name=name,
        fields={
            "total_items": serializers.IntegerField(),
            "total_pages": serializers.IntegerField(),
            "page_number": serializers.IntegerField(),
            "size": serializers.IntegerField(),
            "first_page": serializers.BooleanField(),
            "last_page": serializers.BooleanField(),
            "empty": serializers.BooleanField(),
            "contents": serializers.ListField(child=serializers.DictField()),
        },
    )


SERVICE_LIST_EXAMPLE = {
    "id": "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa",
    "organization_id": "0b7a3c2e-5f4d-4e8a-9c1b-2d3e4f5a6b7c",
    "name": "Walk-in STI testing",
    "description": "Rapid HIV, syphilis and hepatitis tests.",
    "status": "active",
    "last_modified": "2026-11-28T09:40:00+00:00",
}
ORGANIZATION_LIST_EXAMPLE = {
    "id": "0b7a3c2e-5f4d-4e8a-9c1b-2d3e4f5a6b7c",
    "name": "Clínica Aberta",
    "description": "Free, confidential sexual and reproductive health care.",
    "website": "https://clinica.example.org",
}


def _page_example(item):
    return {
        "total_items": 1,
        "total_pages": 1,
        "page_number": 1,
        "size": 1,
        "first_page": True,
        "last_page": True,
        "empty": False,
        "contents": [item],
    }


def hsds_services() -> QuerySet[Service]:
    return selectors.services_for_hsds().select_related("organisation").order_by("id")


def hsds_service_detail() -> QuerySet[Service]:
    return (
        selectors.services_for_hsds()
        .select_related("organisation", "capacity")
        .prefetch_related(
            Prefetch(
                "locations",
                queryset=Location.objects.filter(confidential=False).prefetch_related("schedules"),
            )
        )
    )


class HsdsServiceListView(APIView):
    required_scopes = ["directory:read"]

    @extend_schema(
        tags=["hsds"],
        operation_id="hsds_services_list",
        summary="HSDS: list services",
        description="Active services as HSDS 3.1 `service` objects with their one-to-one "
        "fields, in an HSDS `Page`. Filters: `taxonomy_term_id` (HSDS id or our code), "
        "`organization_id`, `modified_after`, `search`.",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("taxonomy_term_id", OpenApiTypes.STR),
            OpenApiParameter("organization_id", OpenApiTypes.UUID),
        ],
        responses={200: hsds_page_serializer("HsdsServicePage")},
        examples=[
            OpenApiExample("A page", value=_page_example(SERVICE_LIST_EXAMPLE), response_only=True)
        ],
    )
    def get(self, request):
        queryset = hsds_services()
        modified_after = _modified_after(request)
        if modified_after is not None:
            queryset = queryset.filter(updated__gt=modified_after)
        code = _taxonomy_code(request)
        if code is not None:
            queryset = queryset.filter(taxonomy_codes__contains=[code])
        organisation_id = _uuid_param(request, "organization_id")
        if organisation_id is not None:
            queryset = queryset.filter(organisation_id=organisation_id)
        search = request.query_params.get("search")
        if search:
            queryset = selectors.services_matching_text(queryset, search)
        return Response(page_of(request, queryset, service_list_item))


class HsdsServiceDetailView(APIView):
    required_scopes = ["directory:read"]

    @extend_schema(
        tags=["hsds"],
        operation_id="hsds_services_retrieve",
        summary="HSDS: get a service",
        description="One active service as a fully nested HSDS 3.1 `service`: organization, "
        "languages, service_at_locations with schedules (never confidential locations), "
        "taxonomy as attributes, and capacity as `capacities`.",
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "A service",
                value={**SERVICE_LIST_EXAMPLE, "capacities": [], "service_at_locations": []},
                response_only=True,
            )
        ],
    )
    def get(self, request, pk):
        service = hsds_service_detail().filter(pk=pk).first()
        if service is None:
            raise NotFound(NOT_FOUND)
        terms = {term.code: term for term in TaxonomyTerm.objects.all()}
        return Response(service_full(service, terms))


class HsdsOrganizationListView(APIView):
    required_scopes = ["directory:read"]

    @extend_schema(
        tags=["hsds"],
        operation_id="hsds_organizations_list",
        summary="HSDS: list organizations",
        description="Organisations as HSDS 3.1 `organization` objects with their one-to-one "
        "fields, in an HSDS `Page`. `search` matches names.",
        parameters=PAGE_PARAMETERS,
        responses={200: hsds_page_serializer("HsdsOrganizationPage")},
        examples=[
            OpenApiExample(
                "A page", value=_page_example(ORGANIZATION_LIST_EXAMPLE), response_only=True
            )
        ],
    )
    def get(self, request):
        queryset = selectors.organisations_visible().order_by("id")
        modified_after = _modified_after(request)
        if modified_after is not None:
            queryset = queryset.filter(updated__gt=modified_after)
        search = request.query_params.get("search")
        if search:
            queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
        return Response(page_of(request, queryset, organization_list_item))


class HsdsOrganizationDetailView(APIView):
    required_scopes = ["directory:read"]

    @extend_schema(
        tags=["hsds"],
        operation_id="hsds_organizations_retrieve",
        summary="HSDS: get an organization",
        description="One organisation as an HSDS 3.1 `organization` with its active services.",
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "An organization",
                value={**ORGANIZATION_LIST_EXAMPLE, "services": [SERVICE_LIST_EXAMPLE]},
                response_only=True,
            )
        ],
    )
    def get(self, request, pk):
        organisation = (
            selectors.organisations_visible()
            .prefetch_related(
                Prefetch(
                    "services",
                    queryset=selectors.services_for_hsds().order_by("name", "id"),
                    to_attr="active_services",
                )
            )
            .filter(pk=pk)
            .first()
        )
        if organisation is None:
            raise NotFound(NOT_FOUND)
        return Response(organization_full(organisation))
