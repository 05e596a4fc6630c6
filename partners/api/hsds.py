"""The HSDS 3.1 read API (Open Referral): the directory in the shapes of the HSDS API reference
(`partners/hsds/openapi.json`), for other directories and 211 systems. Confidential locations
are never exported, whoever asks: an export is copied onward, beyond the partnerships that gate
them here.

Every list parameter the HSDS API defines is answered, or refused with a problem saying why;
a parameter it does not define is refused too, so nobody mistakes an ignored `limit` for a
filter. The access safeguards are published as attributes under this network's safeguards
taxonomy (`partners/hsds_terms.py`), beside the service types."""

import math
import uuid
from datetime import UTC

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Replace, Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import InvalidInput, NotFound, Unprocessable
from api.timestamps import iso
from partners import selectors
from partners.api.views import NOT_FOUND, PublicDirectoryMixin, visible_or_404
from partners.hsds_terms import (
    HSDS_VERSION,
    SAFEGUARD_LINK,
    SAFEGUARD_TAXONOMY,
    SAFEGUARD_TERMS,
    SERVICE_TYPE_LINK,
    SERVICE_TYPES,
    TAXONOMIES,
    Taxonomy,
    safeguard_term_id,
    stable_id,
    taxonomy_term_id,
)
from partners.models import (
    SAFEGUARDS,
    Location,
    Organisation,
    Schedule,
    Service,
    ServiceStatus,
    TaxonomyTerm,
)

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PER_PAGE_DEFAULT = 25
PER_PAGE_MAX = 100
# `minimal` pages are ids and dates, which HSDS asks to fit a whole directory in one page.
PER_PAGE_MINIMAL_MAX = 1000
PAGE_MAX = 1_000_000  # far past any directory's end; keeps OFFSET inside bigint
HSDS_PROFILE = "https://docs.openreferral.org/en/latest/hsds/"


def _set(out: dict, key: str, value) -> None:
    """HSDS fields are optional: omit empty ones rather than send blanks that fail formats."""
    if value not in (None, "", []):
        out[key] = value


# --- Documents --------------------------------------------------------------------------------


def taxonomy_document(taxonomy: Taxonomy, request) -> dict:
    return {
        "id": taxonomy.id,
        "name": taxonomy.name,
        "description": taxonomy.description,
        "uri": request.build_absolute_uri(reverse("hsds-taxonomy-detail", args=[taxonomy.id])),
        "version": taxonomy.version,
    }


def service_type_term(term: TaxonomyTerm) -> dict:
    return {
        "id": taxonomy_term_id(term.code),
        "code": term.code,
        "name": term.names["en"],
        "description": term.description,
        "taxonomy": SERVICE_TYPES.key,
        "taxonomy_id": SERVICE_TYPES.id,
        "language": "en",
    }


def safeguard_term(name: str) -> dict:
    label, description = SAFEGUARD_TERMS[name]
    return {
        "id": safeguard_term_id(name),
        "code": name,
        "name": label,
        "description": description,
        "taxonomy": SAFEGUARD_TAXONOMY.key,
        "taxonomy_id": SAFEGUARD_TAXONOMY.id,
        "language": "en",
    }


def organization_list_item(org: Organisation) -> dict:
    out = {"id": str(org.id), "name": org.name, "description": org.description}
    _set(out, "email", org.email)
    _set(out, "website", org.website)
    return out


def organization_full(org: Organisation, services: list[dict]) -> dict:
    out = organization_list_item(org)
    if org.phone:
        out["phones"] = [
            {"id": stable_id("phone", org.id), "organization_id": str(org.id), "number": org.phone}
        ]
    out["services"] = services
    return out


def service_list_item(service: Service) -> dict:
    out = {
        "id": str(service.id),
        "organization_id": str(service.organisation_id),
        "name": service.name,
        "description": service.description,
        "status": service.status,
        "last_modified": iso(service.updated),
    }
    _set(out, "interpretation_services", service.interpretation_services)
    _set(out, "eligibility_description", service.eligibility_description)
    _set(out, "fees_description", service.fees_description)
    _set(out, "minimum_age", service.minimum_age)
    _set(out, "maximum_age", service.maximum_age)
    return out


def service_minimal(service: Service) -> dict:
    """`minimal`: the id and date HSDS asks for, plus the two fields its schema requires."""
    return {
        "id": str(service.id),
        "name": service.name,
        "status": service.status,
        "last_modified": iso(service.updated),
    }


def _schedule(schedule: Schedule, location: Location) -> dict:
    return {
        "id": stable_id("schedule", schedule.pk),
        "location_id": str(location.id),
        "service_at_location_id": str(location.id),
        "freq": "WEEKLY",
        "wkst": "MO",
        "byday": WEEKDAYS[schedule.weekday - 1],
        "opens_at": schedule.opens_at.isoformat(),
        "closes_at": schedule.closes_at.isoformat(),
        "description": f"Local time, {location.time_zone}.",
    }


def location_list_item(location: Location) -> dict:
    place = {"id": str(location.id), "location_type": "physical"}
    _set(place, "name", location.name)
    _set(place, "latitude", location.latitude)
    _set(place, "longitude", location.longitude)
    return place


def location_full(location: Location) -> dict:
    place = location_list_item(location)
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
    return place


def _service_at_location_ids(location: Location) -> dict:
    """A location belongs to one service here, so the pair's id is the location's id."""
    location_id = str(location.id)
    return {"id": location_id, "service_id": str(location.service_id), "location_id": location_id}


def service_at_location_list_item(location: Location) -> dict:
    return {
        **_service_at_location_ids(location),
        "location": location_list_item(location),
        "service": service_list_item(location.service),
    }


def _service_at_location(location: Location) -> dict:
    return {
        **_service_at_location_ids(location),
        "location": location_full(location),
        "schedules": [_schedule(s, location) for s in location.schedules.all()],
    }


def service_at_location_full(location: Location) -> dict:
    return {**_service_at_location(location), "service": service_list_item(location.service)}


def _attribute(service: Service, term: dict, link_type: str) -> dict:
    return {
        "id": stable_id("attribute", service.id, term["code"]),
        "link_id": str(service.id),
        "link_type": link_type,
        "link_entity": "service",
        "taxonomy_term_id": term["id"],
        "taxonomy_term": term,
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
        _service_at_location(location)
        for location in service.locations.all()
        if not location.confidential
    ]
    out["attributes"] = [
        _attribute(service, service_type_term(terms[code]), SERVICE_TYPE_LINK)
        for code in service.taxonomy_codes
        if code in terms
    ] + [
        _attribute(service, safeguard_term(name), SAFEGUARD_LINK)
        for name in SAFEGUARDS
        if getattr(service, name)
    ]
    capacity = getattr(service, "capacity", None)
    out["capacities"] = []
    if capacity is not None:
        entry = {
            "id": stable_id("capacity", service.id),
            "service_id": str(service.id),
            "unit": {"id": stable_id("unit", capacity.unit), "name": capacity.unit},
            "available": capacity.available,
            "updated": iso(capacity.updated),
        }
        _set(entry, "maximum", capacity.maximum)
        _set(entry, "description", capacity.description)
        out["capacities"].append(entry)
    return out


# --- Parameters -------------------------------------------------------------------------------


def _refuse(name: str, detail: str, message: str | None = None, *, rule: bool = False):
    """A 400 for a parameter the schema does not allow; with `rule`, a 422 for one it allows
    that this directory cannot honour."""
    error = Unprocessable if rule else InvalidInput
    raise error(message or detail, errors=[{"pointer": f"/{name}", "detail": detail}])


class Params:
    """The query parameters one HSDS route defines, parsed; any other parameter is refused."""

    def __init__(self, request, allowed: set[str]):
        self.query = request.query_params
        unknown = sorted(set(self.query) - allowed)
        if unknown:
            raise InvalidInput(
                f"Unknown parameter {unknown[0]!r}: this HSDS route takes "
                f"{', '.join(sorted(allowed))}.",
                errors=[
                    {"pointer": f"/{name}", "detail": "Unknown parameter."} for name in unknown
                ],
            )
        if self.query.get("format", "json") != "json":
            _refuse(
                "format",
                "Only json is offered.",
                "format must be json: every list is paginated with page and per_page.",
            )

    def integer(self, name: str, default: int, maximum: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= maximum:
            # Past the schema's bound (PAGE's): 400; within it, but past this request's own (a
            # page of full services is smaller than a `minimal` one): 422.
            within_schema = 1 <= value <= (PAGE_MAX if name == "page" else PER_PAGE_MINIMAL_MAX)
            _refuse(
                name,
                "Out of range.",
                f"{name} must be a whole number from 1 to {maximum}.",
                rule=within_schema,
            )
        return value

    def boolean(self, name: str) -> bool:
        raw = self.query.get(name)
        if raw is None:
            return False
        if raw.lower() not in ("true", "false", "1", "0"):
            _refuse(name, "Not a boolean.", f"{name} must be true or false.")
        return raw.lower() in ("true", "1")

    def text(self, name: str) -> str | None:
        return self.query.get(name) or None

    def uuid(self, name: str):
        raw = self.query.get(name)
        if raw is None:
            return None
        try:
            return uuid.UUID(raw)
        except ValueError:
            _refuse(name, "Not a UUID.", f"{name} must be a UUID.")

    def modified_after(self):
        raw = self.query.get("modified_after")
        if raw is None:
            return None
        try:
            value = parse_datetime(raw)
        except ValueError:  # well-formed but impossible, such as month 13
            value = None
        if value is None:
            _refuse(
                "modified_after",
                "Not a date-time.",
                "modified_after must be an ISO 8601 date-time.",
            )
        # In UTC: PostgreSQL refuses offsets Python accepts (Schemathesis sent +21:33: a 500),
        # and a date-time without an offset is read as UTC.
        if timezone.is_naive(value):
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def taxonomy(self) -> Taxonomy | None:
        raw = self.query.get("taxonomy_id")
        if raw is None:
            return None
        for taxonomy in TAXONOMIES:
            if raw in (taxonomy.id, taxonomy.key):
                return taxonomy
        _refuse(
            "taxonomy_id",
            "Unknown taxonomy.",
            "Unknown taxonomy: see /api/v1/hsds/taxonomies.",
            rule=True,
        )

    def term(self) -> Q | None:
        """A service filter for `taxonomy_term_id`: a service type or a safeguard, by HSDS id
        or by code."""
        raw = self.query.get("taxonomy_term_id")
        if raw is None:
            return None
        for code in selectors.known_taxonomy_codes():
            if raw in (code, taxonomy_term_id(code)):
                return Q(taxonomy_codes__contains=[code])
        for name in SAFEGUARDS:
            if raw in (name, safeguard_term_id(name)):
                return Q(**{name: True})
        _refuse(
            "taxonomy_term_id",
            "Unknown taxonomy term.",
            "Unknown taxonomy term: see /api/v1/hsds/taxonomy_terms.",
            rule=True,
        )


def taxonomy_filter(taxonomy: Taxonomy) -> Q:
    """Services with any term of the taxonomy."""
    if taxonomy is SERVICE_TYPES:
        return ~Q(taxonomy_codes=[])
    any_safeguard = Q()
    for name in SAFEGUARDS:
        any_safeguard |= Q(**{name: True})
    return any_safeguard


def service_filters(params: Params) -> Q:
    """The service filters of /services, also applied to /service_at_locations and (through
    their services) /organizations."""
    condition = Q()
    term = params.term()
    if term is not None:
        condition &= term
    taxonomy = params.taxonomy()
    if taxonomy is not None:
        condition &= taxonomy_filter(taxonomy)
    return condition


def filtered_services(params: Params, services: QuerySet[Service]) -> QuerySet[Service]:
    """`services` narrowed by the filters /services and /service_at_locations share."""
    services = services.filter(service_filters(params))
    modified_after = params.modified_after()
    if modified_after is not None:
        services = services.filter(updated__gt=modified_after)
    organisation_id = params.uuid("organization_id")
    if organisation_id is not None:
        services = services.filter(organisation_id=organisation_id)
    search = params.text("search")
    if search:
        services = selectors.services_matching_text(services, search)
    return services


def _page(page: int, per_page: int, total: int, rows: list) -> dict:
    """The HSDS API `Page` object (1-based page numbers) around one page's `rows`."""
    total_pages = max(1, math.ceil(total / per_page))
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page,
        "size": len(rows),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not rows,
        "contents": rows,
    }


def page_of(params: Params, queryset: QuerySet, shape, maximum: int = PER_PAGE_MAX) -> dict:
    """A page of a queryset, each row given its HSDS shape by `shape`."""
    page = params.integer("page", 1, PAGE_MAX)
    per_page = params.integer("per_page", PER_PAGE_DEFAULT, maximum)
    total = queryset.count()
    rows = list(queryset[(page - 1) * per_page : page * per_page])
    return _page(page, per_page, total, shape(rows))


def page_of_list(params: Params, items: list[dict]) -> dict:
    """A page of a short list held in Python (the taxonomies and their terms)."""
    page = params.integer("page", 1, PAGE_MAX)
    per_page = params.integer("per_page", PER_PAGE_DEFAULT, PER_PAGE_MAX)
    return _page(page, per_page, len(items), items[(page - 1) * per_page : page * per_page])


# --- Querysets --------------------------------------------------------------------------------

PUBLIC_LOCATIONS = Location.objects.filter(confidential=False).prefetch_related("schedules")


def hsds_services() -> QuerySet[Service]:
    return selectors.services_for_hsds().select_related("organisation").order_by("id")


def hsds_services_full() -> QuerySet[Service]:
    return (
        hsds_services()
        .select_related("capacity")
        .prefetch_related(Prefetch("locations", queryset=PUBLIC_LOCATIONS))
    )


def hsds_locations() -> QuerySet[Location]:
    """Service-at-locations: public locations of exported services."""
    return (
        Location.objects.filter(
            confidential=False,
            service__status=ServiceStatus.ACTIVE,
            service__organisation__suspended=False,
        )
        .select_related("service")
        .order_by("id")
    )


def all_terms() -> dict[str, TaxonomyTerm]:
    return {term.code: term for term in TaxonomyTerm.objects.all()}


def taxonomy_documents(request) -> list[dict]:
    return [taxonomy_document(taxonomy, request) for taxonomy in TAXONOMIES]


def taxonomy_terms_documents() -> list[dict]:
    return [service_type_term(term) for term in TaxonomyTerm.objects.order_by("code")] + [
        safeguard_term(name) for name in SAFEGUARDS
    ]


# --- OpenAPI ----------------------------------------------------------------------------------


def _bool_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.BOOL, description=description)


PAGE = [
    OpenApiParameter(
        "page",
        {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
        description="1-based page number.",
    ),
    OpenApiParameter(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": PER_PAGE_MINIMAL_MAX},
        description=f"At most {PER_PAGE_MAX} ({PER_PAGE_MINIMAL_MAX} with `minimal`; more "
        "without it is a 422).",
    ),
    OpenApiParameter(
        "format",
        OpenApiTypes.STR,
        enum=["json"],
        description="Only `json`: every list is paginated (no `ndjson` stream).",
    ),
]
SEARCH = OpenApiParameter("search", OpenApiTypes.STR, description="Full-text search.")
MODIFIED_AFTER = OpenApiParameter(
    "modified_after", OpenApiTypes.DATETIME, description="Only services changed after this."
)
TERM = OpenApiParameter(
    "taxonomy_term_id",
    OpenApiTypes.STR,
    description="A service type or access safeguard: its HSDS id, or its code.",
)
TAXONOMY = OpenApiParameter(
    "taxonomy_id",
    OpenApiTypes.STR,
    description="Services with any term of this taxonomy (its HSDS id, or `srn` / "
    "`srn-safeguards`).",
)
ORGANIZATION = OpenApiParameter("organization_id", OpenApiTypes.UUID)
FULL = _bool_parameter("full", "Fully nested objects instead of their one-to-one fields.")
FULL_SERVICE = _bool_parameter("full_service", "The organization's services fully nested.")


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
    "organization_id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
    "name": "Walk-in STI testing",
    "description": "Rapid HIV, syphilis and hepatitis tests.",
    "status": "active",
    "last_modified": "2026-11-28T09:40:00+00:00",
}
ORGANIZATION_LIST_EXAMPLE = {
    "id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
    "name": "Clínica Aberta",
    "description": "Free, confidential sexual and reproductive health care.",
    "website": "https://clinica.example.org",
}
LOCATION_EXAMPLE = {
    "id": "6a1d1d3e-0a59-4d59-b7a4-9c1c0e6e8f10",
    "location_type": "physical",
    "name": "Intendente drop-in",
    "latitude": 38.7214,
    "longitude": -9.1354,
}
SERVICE_AT_LOCATION_EXAMPLE = {
    "id": LOCATION_EXAMPLE["id"],
    "service_id": SERVICE_LIST_EXAMPLE["id"],
    "location_id": LOCATION_EXAMPLE["id"],
    "location": LOCATION_EXAMPLE,
    "service": SERVICE_LIST_EXAMPLE,
}
TAXONOMY_EXAMPLE = {
    "id": SAFEGUARD_TAXONOMY.id,
    "name": SAFEGUARD_TAXONOMY.name,
    "description": SAFEGUARD_TAXONOMY.description,
    "uri": f"https://srn.example.org/api/v1/hsds/taxonomies/{SAFEGUARD_TAXONOMY.id}",
    "version": SAFEGUARD_TAXONOMY.version,
}
TERM_EXAMPLE = {
    "id": safeguard_term_id("no_id_required"),
    "code": "no_id_required",
    "name": SAFEGUARD_TERMS["no_id_required"][0],
    "description": SAFEGUARD_TERMS["no_id_required"][1],
    "taxonomy": SAFEGUARD_TAXONOMY.key,
    "taxonomy_id": SAFEGUARD_TAXONOMY.id,
    "language": "en",
}


def _page_example(item):
    return _page(1, 1, 1, [item])


def _example(name: str, value) -> list[OpenApiExample]:
    return [OpenApiExample(name, value=value, response_only=True)]


READ = ["directory:read"]
PAGE_NAMES = {"page", "per_page", "format"}
# What `filtered_services` reads, with the page: the parameters /services and
# /service_at_locations share.
SERVICE_FILTER_NAMES = {
    "search",
    *PAGE_NAMES,
    "taxonomy_term_id",
    "taxonomy_id",
    "organization_id",
    "modified_after",
}
SERVICE_FILTER_PARAMETERS = [SEARCH, *PAGE, TERM, TAXONOMY, ORGANIZATION, MODIFIED_AFTER]


# --- Views ------------------------------------------------------------------------------------


class JsonOnly(DefaultContentNegotiation):
    """HSDS's own `format` parameter is not REST framework's renderer override: JSON always,
    and `format` answered by Params."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class HsdsView(PublicDirectoryMixin, APIView):
    """Public directory data only, never a confidential location."""

    required_scopes = READ
    content_negotiation_class = JsonOnly


class HsdsRootView(HsdsView):
    @extend_schema(
        operation_id="hsds_root",
        responses={
            200: inline_serializer(
                name="HsdsRoot",
                fields={
                    "version": serializers.CharField(),
                    "profile": serializers.URLField(),
                    "openapi_url": serializers.URLField(),
                },
            )
        },
        examples=_example(
            "This API",
            {
                "version": HSDS_VERSION,
                "profile": HSDS_PROFILE,
                "openapi_url": "https://srn.example.org/api/schema",
            },
        ),
    )
    def get(self, request):
        """HSDS: about this API

        The HSDS version this API speaks, its profile (plain HSDS: no profile), and where its
        OpenAPI document is.
        """
        Params(request, set())
        return Response(
            {
                "version": HSDS_VERSION,
                "profile": HSDS_PROFILE,
                "openapi_url": request.build_absolute_uri(reverse("schema")),
            }
        )


class HsdsServiceListView(HsdsView):
    @extend_schema(
        operation_id="hsds_services_list",
        parameters=[
            *SERVICE_FILTER_PARAMETERS,
            _bool_parameter("minimal", "Only id, name, status and last_modified."),
            FULL,
        ],
        responses={200: hsds_page_serializer("HsdsServicePage")},
        examples=_example("A page", _page_example(SERVICE_LIST_EXAMPLE)),
    )
    def get(self, request):
        """HSDS: list services

        Active services as HSDS 3.1 `service` objects with their one-to-one fields, in an HSDS
        `Page`; `full` nests each fully (as `/services/{id}`), `minimal` gives only ids, names,
        statuses and dates. Filters: `taxonomy_term_id` (a service type or safeguard, HSDS id or
        code), `taxonomy_id`, `organization_id`, `modified_after`, `search`. A parameter HSDS does
        not define is refused.
        """
        params = Params(request, {*SERVICE_FILTER_NAMES, "minimal", "full"})
        full, minimal = params.boolean("full"), params.boolean("minimal")
        if full and minimal:
            _refuse("minimal", "Not with full.", "Ask for full or minimal, not both.", rule=True)
        queryset = filtered_services(params, hsds_services_full() if full else hsds_services())
        if full:
            terms = all_terms()
            return Response(
                page_of(params, queryset, lambda rows: [service_full(s, terms) for s in rows])
            )
        if minimal:
            return Response(
                page_of(
                    params,
                    queryset,
                    lambda rows: [service_minimal(s) for s in rows],
                    PER_PAGE_MINIMAL_MAX,
                )
            )
        return Response(
            page_of(params, queryset, lambda rows: [service_list_item(s) for s in rows])
        )


class HsdsServiceDetailView(HsdsView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        examples=_example(
            "A service", {**SERVICE_LIST_EXAMPLE, "capacities": [], "service_at_locations": []}
        ),
    )
    def get(self, request, pk):
        """HSDS: get a service

        One active service as a fully nested HSDS 3.1 `service`: organization, languages,
        service_at_locations with schedules (never confidential locations), service types and access
        safeguards as attributes, and capacity as `capacities`.
        """
        Params(request, set())
        service = visible_or_404(hsds_services_full(), pk)
        return Response(service_full(service, all_terms()))


def organisations_with(condition: Q) -> QuerySet[Organisation]:
    """Organisations with an exported service matching `condition`."""
    return selectors.organisations_visible().filter(
        Exists(selectors.services_for_hsds().filter(condition, organisation_id=OuterRef("pk")))
    )


def _with_services(queryset: QuerySet[Organisation], full_service: bool):
    services = hsds_services_full() if full_service else hsds_services()
    return queryset.prefetch_related(
        Prefetch("services", queryset=services.order_by("name", "id"), to_attr="hsds_services")
    )


def _organizations(rows, full: bool, full_service: bool) -> list[dict]:
    if not (full or full_service):
        return [organization_list_item(org) for org in rows]
    terms = all_terms() if full_service else {}
    return [
        organization_full(
            org,
            [
                service_full(s, terms) if full_service else service_list_item(s)
                for s in org.hsds_services
            ],
        )
        for org in rows
    ]


class HsdsOrganizationListView(HsdsView):
    @extend_schema(
        operation_id="hsds_organizations_list",
        parameters=[
            SEARCH,
            *PAGE,
            TERM,
            TAXONOMY,
            FULL,
            FULL_SERVICE,
            OpenApiParameter(
                "modified_after",
                OpenApiTypes.DATETIME,
                description="Only organisations changed after this.",
            ),
        ],
        responses={200: hsds_page_serializer("HsdsOrganizationPage")},
        examples=_example("A page", _page_example(ORGANIZATION_LIST_EXAMPLE)),
    )
    def get(self, request):
        """HSDS: list organizations

        Organisations as HSDS 3.1 `organization` objects with their one-to-one fields, in an HSDS
        `Page`; `full` adds their phones and services, `full_service` nests those services fully.
        `taxonomy_term_id` and `taxonomy_id` keep organisations with a matching service; `search`
        matches names and descriptions.
        """
        params = Params(
            request,
            {
                "search",
                *PAGE_NAMES,
                "taxonomy_term_id",
                "taxonomy_id",
                "full",
                "full_service",
                "modified_after",
            },
        )
        full, full_service = params.boolean("full"), params.boolean("full_service")
        condition = service_filters(params)
        queryset = (
            organisations_with(condition) if condition else selectors.organisations_visible()
        ).order_by("id")
        modified_after = params.modified_after()
        if modified_after is not None:
            queryset = queryset.filter(updated__gt=modified_after)
        search = params.text("search")
        if search:
            queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
        if full or full_service:
            queryset = _with_services(queryset, full_service)
        return Response(
            page_of(params, queryset, lambda rows: _organizations(rows, full, full_service))
        )


class HsdsOrganizationDetailView(HsdsView):
    @extend_schema(
        parameters=[FULL_SERVICE],
        responses={200: OpenApiTypes.OBJECT},
        examples=_example(
            "An organization", {**ORGANIZATION_LIST_EXAMPLE, "services": [SERVICE_LIST_EXAMPLE]}
        ),
    )
    def get(self, request, pk):
        """HSDS: get an organization

        One organisation as an HSDS 3.1 `organization` with its active services (their one-to-one
        fields; fully nested with `full_service`).
        """
        params = Params(request, {"full_service"})
        full_service = params.boolean("full_service")
        organisation = visible_or_404(
            _with_services(selectors.organisations_visible(), full_service), pk
        )
        return Response(_organizations([organisation], True, full_service)[0])


class HsdsServiceAtLocationListView(HsdsView):
    @extend_schema(
        operation_id="hsds_service_at_locations_list",
        parameters=[
            *SERVICE_FILTER_PARAMETERS,
            FULL,
            OpenApiParameter("postcode", OpenApiTypes.STR),
            OpenApiParameter(
                "proximity", OpenApiTypes.STR, description="Refused: see the description."
            ),
        ],
        responses={200: hsds_page_serializer("HsdsServiceAtLocationPage")},
        examples=_example("A page", _page_example(SERVICE_AT_LOCATION_EXAMPLE)),
    )
    def get(self, request):
        """HSDS: list services at locations

        Each public location of an active service as an HSDS 3.1 `service_at_location` with its
        one-to-one fields (the location and the service), in an HSDS `Page`; `full` nests addresses
        and schedules. Confidential locations are never listed. Filters as `/services`, and
        `postcode` (the location's postal code, ignoring case and spaces). `proximity` is refused:
        it needs a postcode's centroid, which this directory does not hold (search by coordinates
        with `/api/v1/services/search`).
        """
        params = Params(request, {*SERVICE_FILTER_NAMES, "full", "postcode", "proximity"})
        if "proximity" in params.query:
            _refuse(
                "proximity",
                "Not offered.",
                "proximity needs a postcode centroid, which this directory does not hold: "
                "search by coordinates with /api/v1/services/search?near=lat,lon&radius_km=.",
                rule=True,
            )
        full = params.boolean("full")
        services = filtered_services(params, selectors.services_for_hsds())
        queryset = hsds_locations().filter(service__in=services)
        postcode = params.text("postcode")
        if postcode:
            queryset = queryset.annotate(
                postcode=Upper(Replace(F("postal_code"), Value(" "), Value("")))
            ).filter(postcode=postcode.replace(" ", "").upper())
        if full:
            queryset = queryset.prefetch_related("schedules")
            shape = service_at_location_full
        else:
            shape = service_at_location_list_item
        return Response(page_of(params, queryset, lambda rows: [shape(row) for row in rows]))


class HsdsServiceAtLocationDetailView(HsdsView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        examples=_example("At a location", SERVICE_AT_LOCATION_EXAMPLE),
    )
    def get(self, request, pk):
        """HSDS: get a service at a location

        One public location of an active service as a fully nested HSDS 3.1 `service_at_location`
        (location with address, schedules, the service's one-to-one fields). A confidential location
        is 404, like an unknown id.
        """
        Params(request, set())
        location = visible_or_404(hsds_locations().prefetch_related("schedules"), pk)
        return Response(service_at_location_full(location))


class HsdsTaxonomyListView(HsdsView):
    @extend_schema(
        operation_id="hsds_taxonomies_list",
        parameters=[SEARCH, *PAGE],
        responses={200: hsds_page_serializer("HsdsTaxonomyPage")},
        examples=_example("A page", _page_example(TAXONOMY_EXAMPLE)),
    )
    def get(self, request):
        """HSDS: list taxonomies

        This network's published taxonomies: service types (`srn`) and access safeguards
        (`srn-safeguards`), in an HSDS `Page`. `search` matches names and descriptions.
        """
        params = Params(request, {"search", *PAGE_NAMES})
        items = taxonomy_documents(request)
        return Response(page_of_list(params, _matching(items, params.text("search"))))


def _with_id(items: list[dict], pk) -> dict:
    """The document of `items` with HSDS id `pk`; a 404 for none."""
    for item in items:
        if item["id"] == str(pk):
            return item
    raise NotFound(NOT_FOUND)


def _matching(items: list[dict], search: str | None) -> list[dict]:
    if not search:
        return items
    needle = search.casefold()
    return [
        item
        for item in items
        if needle in item["name"].casefold() or needle in item["description"].casefold()
    ]


class HsdsTaxonomyDetailView(HsdsView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        examples=_example("Safeguards", TAXONOMY_EXAMPLE),
    )
    def get(self, request, pk):
        """HSDS: get a taxonomy

        One of this network's published taxonomies.
        """
        Params(request, set())
        return Response(_with_id(taxonomy_documents(request), pk))


class HsdsTaxonomyTermListView(HsdsView):
    @extend_schema(
        operation_id="hsds_taxonomy_terms_list",
        parameters=[
            SEARCH,
            *PAGE,
            TAXONOMY,
            _bool_parameter("top_only", "Only terms without a parent (all of them here)."),
            OpenApiParameter("parent_id", OpenApiTypes.UUID, description="Children of a term."),
        ],
        responses={200: hsds_page_serializer("HsdsTaxonomyTermPage")},
        examples=_example("A page", _page_example(TERM_EXAMPLE)),
    )
    def get(self, request):
        """HSDS: list taxonomy terms

        The terms of this network's taxonomies (service types, then access safeguards), in an HSDS
        `Page`, named in English (`/api/v1/taxonomy-terms` has nine languages). Both taxonomies are
        flat: every term is top-level, so `top_only` keeps them all and `parent_id` matches none.
        `taxonomy_id` keeps one taxonomy's terms.
        """
        params = Params(request, {"search", *PAGE_NAMES, "taxonomy_id", "top_only", "parent_id"})
        items = taxonomy_terms_documents()
        taxonomy = params.taxonomy()
        if taxonomy is not None:
            items = [item for item in items if item["taxonomy_id"] == taxonomy.id]
        params.boolean("top_only")  # validated: every term is top-level
        if params.uuid("parent_id") is not None:
            items = []
        return Response(page_of_list(params, _matching(items, params.text("search"))))


class HsdsTaxonomyTermDetailView(HsdsView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        examples=_example("A safeguard", TERM_EXAMPLE),
    )
    def get(self, request, pk):
        """HSDS: get a taxonomy term

        One service type or access safeguard, by its HSDS id.
        """
        Params(request, set())
        return Response(_with_id(taxonomy_terms_documents(), pk))
