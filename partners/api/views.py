"""Directory endpoints. Thin: parse, call one selector or service, shape the answer."""

import json

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from api.errors import NotFound, PayloadTooLarge
from api.pagination import CursorPagination, OnePage, one_page
from api.preconditions import if_match_parameter
from api.schema import action_view, queryset_outside_requests
from api.schema_operations import docstring_with
from api.serializers import validated
from partners import selectors, services
from partners.api import examples
from partners.api.serializers import (
    BULK_MAX_ITEMS,
    CapacityBulkResultSerializer,
    CapacityBulkSerializer,
    CapacityHistorySerializer,
    CapacitySerializer,
    CapacityWriteSerializer,
    MeSerializer,
    OrganisationSerializer,
    OrganisationUpdateSerializer,
    PartnershipProposeSerializer,
    PartnershipSerializer,
    ServiceDetailSerializer,
    ServiceSearchQuerySerializer,
    ServiceSearchResultSerializer,
    ServiceWriteSerializer,
    TaxonomyTermSerializer,
)
from partners.models import SAFEGUARDS, CapacityHistory, Organisation, Partnership, Service

READ = ["directory:read"]
WRITE = ["directory:write"]
CAPACITY = ["capacity:write"]


# One answer for "does not exist" and "not yours to see", so ids cannot be probed.
NOT_FOUND = "No such object, or not one your organisation may see."
NOT_YOURS = OpenApiResponse(description="Another organisation's service (`wrong-party`).")


def visible_or_404(queryset: QuerySet, pk):
    """The object `pk` of `queryset` (what the caller may see), or the API's own NotFound: a
    problem document, the same for an unknown id and one not the caller's."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise NotFound(NOT_FOUND)
    return obj


class FilteredListMixin:
    """A list narrowed to the value of its one filter, the query parameter `filter_parameter`
    (which also documents it), matched exactly against the field of that name."""

    filter_parameter: OpenApiParameter

    @queryset_outside_requests
    def get_queryset(self):
        queryset = super().get_queryset()
        value = self.request.query_params.get(self.filter_parameter.name)
        return queryset.filter(**{self.filter_parameter.name: value}) if value else queryset


class PublicDirectoryMixin:
    """The same public directory for every partner: the caller's own cache may keep a success
    (api.middleware.CacheControlMiddleware)."""

    directory_data = True


class VisibleObjectMixin:
    """get_object raising the API's own NotFound, so the answer is a problem document."""

    def get_object(self):
        return visible_or_404(self.get_queryset(), self.kwargs["pk"])


def language_of(request) -> str:
    return selectors.preferred_language(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))


class MeView(APIView):
    required_scopes: list[str] = []

    @extend_schema(
        responses={200: MeSerializer},
        examples=examples.ME,
    )
    def get(self, request):
        """Who am I

        The organisation this token acts for, the client and the token's scopes. Any valid token may
        call it; use it to check your credentials.
        """
        token = request.auth
        data = {
            "organisation": request.organisation,
            "client_id": token.application.client_id,
            "scopes": sorted(token.scope.split()),
            "token_expires": token.expires,
        }
        return Response(MeSerializer(data).data)


# --- Organisations --------------------------------------------------------------------------


class OrganisationsMixin(PublicDirectoryMixin):
    required_scopes = READ
    serializer_class = OrganisationSerializer
    queryset = Organisation.objects.none()

    @queryset_outside_requests
    def get_queryset(self):
        return selectors.organisations_visible()


class OrganisationListView(FilteredListMixin, OrganisationsMixin, generics.ListAPIView):
    filter_parameter = OpenApiParameter("kind", OpenApiTypes.STR, description="Organisation kind.")

    @extend_schema(parameters=[filter_parameter], examples=examples.ORGANISATION_LIST)
    def get(self, request, *args, **kwargs):
        """List organisations

        Every organisation in the network directory, newest first (cursor paginated). Filter by
        `kind`.
        """
        return super().get(request, *args, **kwargs)


class OrganisationDetailView(VisibleObjectMixin, OrganisationsMixin, generics.RetrieveAPIView):
    @extend_schema(examples=examples.ORGANISATION)
    def get(self, request, *args, **kwargs):
        """Get an organisation

        One organisation's public profile.
        """
        return super().get(request, *args, **kwargs)


class OrganisationMeView(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(
        responses={200: OrganisationSerializer},
        examples=examples.ORGANISATION,
    )
    def get(self, request):
        """Get your organisation

        The profile of the organisation this token acts for.
        """
        return Response(OrganisationSerializer(request.organisation).data)

    @extend_schema(
        request=OrganisationUpdateSerializer,
        responses={200: OrganisationSerializer},
        examples=examples.ORGANISATION_UPDATE,
    )
    def patch(self, request):
        """Edit your organisation

        Edit your own public profile. `verified` is set only by network stewards; sending it (or any
        unknown field) is a 400.
        """
        data = validated(
            OrganisationUpdateSerializer,
            request.data,
            instance=request.organisation,
            partial=True,
        )
        organisation = services.organisation_update(organisation=request.organisation, **data)
        return Response(OrganisationSerializer(organisation).data)


# --- Taxonomy -------------------------------------------------------------------------------


class TaxonomyTermListView(PublicDirectoryMixin, APIView):
    required_scopes = READ
    pagination_class = OnePage

    @extend_schema(
        tags=["taxonomy"],
        parameters=[
            OpenApiParameter(
                "Accept-Language", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False
            )
        ],
        responses={200: TaxonomyTermSerializer(many=True)},
        examples=examples.TAXONOMY_TERMS,
    )
    def get(self, request):
        """List taxonomy terms

        The service types services are classified by, with stable codes. Names follow the request's
        `Accept-Language` (en, es, fr, pt, ro, ru, th, zh, tl), falling back to English;
        `Content-Language` says which was used.
        """
        language = language_of(request)
        data = TaxonomyTermSerializer(
            selectors.taxonomy_terms(), many=True, context={"language": language}
        ).data
        return Response(one_page(data), headers={"Content-Language": language})


# --- Services -------------------------------------------------------------------------------

SEARCH_DESCRIPTION = (
    "Filters combine (AND). `taxonomy` (one or more codes; any matches), `language` (BCP 47; "
    "`pt` also finds `pt-BR`), `near=lat,lon` with `radius_km` (results sorted by distance "
    "and carrying `distance_km`), `accepting`, `has_capacity`, `fresh` (capacity not past "
    "`valid_until`), each access safeguard, `cost`, `open_now` (opening hours in each "
    "location's time zone), `organisation_kind`, `q` (full text over name and description). "
    "A confidential location shows its street address and coordinates only to its owner and "
    "the owner's active partners. For everyone else it is measured from a fixed point 1-2 km "
    "away (its distance, `radius_km`, the order and the cursor alike), the distance is rounded "
    "to the kilometre, and it shows its region and front-door contact. Cursor paginated: `next` "
    "is the next page, the same search with a `cursor` added; the cursor is sealed (it can be neither read nor altered), "
    "good only with the same filters, and any other cursor is a 422."
)


def search_filters(data: dict) -> tuple[selectors.SearchFilters, dict]:
    filters = selectors.SearchFilters(
        taxonomy=data.get("taxonomy", []),
        language=data.get("language"),
        near=data.get("near"),
        radius_km=data.get("radius_km"),
        accepting=data.get("accepting", []),
        has_capacity=data.get("has_capacity"),
        fresh=data.get("fresh"),
        safeguards={name: data[name] for name in SAFEGUARDS if data.get(name) is not None},
        cost=data.get("cost", []),
        open_now=data.get("open_now"),
        organisation_kind=data.get("organisation_kind", []),
        q=data.get("q"),
    )
    return filters, {"cursor": data.get("cursor"), "page_size": data["limit"]}


def run_search(request, data) -> Response:
    filters, page = search_filters(validated(ServiceSearchQuerySerializer, data))
    results, next_cursor = selectors.services_search_json(
        caller=request.organisation,
        filters=filters,
        now=timezone.now(),
        language=language_of(request),
        **page,
    )
    next_url = None
    if next_cursor is not None:
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", next_cursor)
    # Each result is a JSON object PostgreSQL already shaped (documented by
    # ServiceSearchResultSerializer): written as is, never parsed and re-rendered.
    body = f'{{"next":{json.dumps(next_url)},"previous":null,"results":[{",".join(results)}]}}'
    return HttpResponse(body, content_type="application/json")


class ServiceListView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    # The search's page, documented; its parameters are the search's own.
    pagination_class = OnePage

    @extend_schema(
        parameters=[ServiceSearchQuerySerializer],
        responses={200: ServiceSearchResultSerializer(many=True)},
        examples=examples.SERVICE_LIST,
    )
    @docstring_with(search=SEARCH_DESCRIPTION)
    def get(self, request):
        """Search services

        {search} Prefer POST /services/search when the filters say something about a person.
        """
        return run_search(request, request.query_params)

    @extend_schema(
        request=ServiceWriteSerializer,
        responses={201: ServiceDetailSerializer},
        examples=examples.SERVICE_CREATE,
    )
    def post(self, request):
        """Create a service

        A new service of your organisation, with its locations and opening hours. It starts
        with an empty, open capacity; publish figures with PUT /services/{id}/capacity.
        """
        data = validated(ServiceWriteSerializer, request.data)
        service = services.service_create(organisation=request.organisation, **data)
        return Response(service_detail_data(request, service.pk), status=status.HTTP_201_CREATED)


class ServiceSearchView(APIView):
    required_scopes = READ
    pagination_class = OnePage
    # POST only to keep what a person needs out of URLs and access logs; it writes nothing.
    audit_as_read = True

    @extend_schema(
        operation_id="services_search",
        request=ServiceSearchQuerySerializer,
        responses={200: ServiceSearchResultSerializer(many=True)},
        examples=examples.SERVICE_SEARCH,
    )
    @docstring_with(search=SEARCH_DESCRIPTION)
    def post(self, request):
        """Search services (filters in the body)

        {search} Same filters and answer as GET /services/, sent as a JSON body so that what a
        person needs stays out of URLs and access logs. For the next page, POST the same body to
        `next` (its `cursor` may also be sent in the body).
        """
        data = request.data
        if "cursor" in request.query_params:
            data = {**data, "cursor": request.query_params["cursor"]}
        return run_search(request, data)


def service_detail_data(request, service_id) -> dict:
    service = visible_or_404(selectors.service_detail_queryset(), service_id)
    language = language_of(request)
    names = {term.code: term.name_in(language) for term in selectors.taxonomy_terms()}
    revealed = selectors.may_see_confidential(
        caller=request.organisation, owner_id=service.organisation_id
    )
    return ServiceDetailSerializer(
        service, context={"taxonomy_names": names, "revealed": revealed}
    ).data


def own_service_or_404(request, pk) -> Service:
    """Visible services only; whether the caller owns it is the service layer's call (409)."""
    return visible_or_404(selectors.services_visible(), pk)


class ServiceDetailView(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(
        responses={200: ServiceDetailSerializer},
        examples=examples.SERVICE_DETAIL,
    )
    def get(self, request, pk):
        """Get a service

        A service with its locations, opening hours and capacity; taxonomy names follow
        Accept-Language. Confidential locations are masked unless you own the service or partner
        actively with its owner.
        """
        return Response(service_detail_data(request, pk))

    @extend_schema(
        request=ServiceWriteSerializer,
        responses={200: ServiceDetailSerializer, 409: NOT_YOURS},
        examples=examples.SERVICE_UPDATE,
    )
    def patch(self, request, pk):
        """Edit your service

        Partial update of one of your services. `locations`, when sent, replace the old ones with
        their opening hours. Another organisation's service: 409 `wrong-party`.
        """
        service = own_service_or_404(request, pk)
        data = validated(ServiceWriteSerializer, request.data, instance=service, partial=True)
        services.service_update(service=service, organisation=request.organisation, **data)
        return Response(service_detail_data(request, pk))


class ServiceDeactivateView(APIView):
    required_scopes = WRITE

    @extend_schema(
        operation_id="services_deactivate",
        request=None,
        responses={200: ServiceDetailSerializer, 409: NOT_YOURS},
        examples=examples.SERVICE_DEACTIVATE,
    )
    def post(self, request, pk):
        """Deactivate your service

        Mark one of your services inactive: it leaves search results but stays readable, since
        referrals and capacity history point at it. Another organisation's service: 409
        `wrong-party`.
        """
        service = own_service_or_404(request, pk)
        services.service_deactivate(service=service, organisation=request.organisation)
        return Response(service_detail_data(request, pk))


# --- Capacity -------------------------------------------------------------------------------


class CapacityView(PublicDirectoryMixin, APIView):
    required_scopes = {"GET": READ, "PUT": CAPACITY}

    @extend_schema(
        tags=["capacity"],
        operation_id="capacity_retrieve",
        responses={200: CapacitySerializer},
        examples=examples.CAPACITY,
    )
    def get(self, request, pk):
        """Get a service's capacity

        The current capacity with an `ETag`; send it back as `If-Match` to replace it.
        """
        service = own_service_or_404(request, pk)
        capacity = getattr(service, "capacity", None)
        if capacity is None:
            raise NotFound(NOT_FOUND)
        return Response(
            CapacitySerializer(capacity).data, headers={"ETag": services.capacity_etag(capacity)}
        )

    @extend_schema(
        tags=["capacity"],
        operation_id="capacity_update",
        parameters=[
            if_match_parameter(
                'The capacity\'s ETag as you last read it, quoted (`"<id>.3"`), or `*`.'
            )
        ],
        request=CapacityWriteSerializer,
        responses={
            200: CapacitySerializer,
            409: NOT_YOURS,
            412: OpenApiResponse(description="Changed since you read it; nothing was written."),
            428: OpenApiResponse(description="If-Match is missing."),
        },
        examples=examples.CAPACITY_UPDATE,
    )
    def put(self, request, pk):
        """Replace your service's capacity

        Publish the capacity of one of your services. `If-Match` with the current ETag is required
        (428 without it; 412 if someone changed it since you read it, and nothing is written). The
        change is appended to the history and announced as `capacity.updated` to you and your active
        partners. Another organisation's service: 409 `wrong-party`.
        """
        service = own_service_or_404(request, pk)
        capacity = services.capacity_update(
            service=service,
            organisation=request.organisation,
            if_match=request.META.get("HTTP_IF_MATCH"),
            values=validated(CapacityWriteSerializer, request.data),
        )
        return Response(
            CapacitySerializer(capacity).data, headers={"ETag": services.capacity_etag(capacity)}
        )


class HistoryPagination(CursorPagination):
    ordering = ("-id",)


class CapacityHistoryView(PublicDirectoryMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = CapacityHistorySerializer
    pagination_class = HistoryPagination
    queryset = CapacityHistory.objects.none()

    @queryset_outside_requests
    def get_queryset(self):
        return selectors.capacity_history_for(own_service_or_404(self.request, self.kwargs["pk"]))

    @extend_schema(
        tags=["capacity"],
        operation_id="capacity_history_list",
        examples=examples.CAPACITY_HISTORY,
    )
    def get(self, request, *args, **kwargs):
        """A service's capacity history

        Every capacity the service has published, newest first (cursor paginated). Append-only: the
        database refuses to change or delete it.
        """
        return super().get(request, *args, **kwargs)


class CapacityBulkView(APIView):
    required_scopes = CAPACITY

    @extend_schema(
        operation_id="capacity_bulk_update",
        request=CapacityBulkSerializer,
        responses={
            200: CapacityBulkResultSerializer,
            409: OpenApiResponse(
                description="Items for another organisation's services (`wrong-party`, with "
                "an error per item); nothing was written."
            ),
        },
        examples=examples.CAPACITY_BULK,
    )
    @docstring_with(max_items=BULK_MAX_ITEMS)
    def post(self, request):
        """Replace many capacities at once

        Up to {max_items} capacity updates of your own services, applied all or nothing: one invalid
        item rejects the batch with an error per item (JSON pointers into `items`) and nothing is
        written. More items: 413. An item for another organisation's service: 409 `wrong-party`,
        naming each such item. No If-Match here: a batch is the publisher's current truth.
        """
        items = request.data.get("items") if isinstance(request.data, dict) else None
        if isinstance(items, list) and len(items) > BULK_MAX_ITEMS:
            raise PayloadTooLarge(
                f"A batch holds at most {BULK_MAX_ITEMS} items; nothing was written.",
                errors=[{"pointer": "/items", "detail": f"At most {BULK_MAX_ITEMS} items."}],
            )
        data = validated(CapacityBulkSerializer, request.data)
        updated = services.capacity_bulk_update(
            organisation=request.organisation, items=data["items"]
        )
        return Response(
            {"updated": [{"service_id": c.service_id, "version": c.version} for c in updated]}
        )


# --- Partnerships ---------------------------------------------------------------------------


class PartnershipsMixin:
    serializer_class = PartnershipSerializer
    queryset = Partnership.objects.none()

    @queryset_outside_requests
    def get_queryset(self):
        return selectors.partnerships_for(self.request.organisation)


class PartnershipListView(FilteredListMixin, PartnershipsMixin, generics.ListAPIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    filter_parameter = OpenApiParameter("status", OpenApiTypes.STR, description="e.g. active")

    @extend_schema(parameters=[filter_parameter], examples=examples.PARTNERSHIP_LIST)
    def get(self, request, *args, **kwargs):
        """List your partnerships

        Partnerships your organisation proposed or was proposed, newest first. Filter by `status`.
        """
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=PartnershipProposeSerializer,
        responses={201: PartnershipSerializer},
        examples=examples.PARTNERSHIP_PROPOSE,
    )
    def post(self, request):
        """Propose a partnership

        Propose a data-sharing agreement to another organisation, naming the data categories
        referrals may carry and the purposes. The other side accepts or declines. Proposing to
        yourself: 400; when the pair already has an open one: 409.
        """
        data = validated(PartnershipProposeSerializer, request.data)
        partnership = services.partnership_propose(proposer=request.organisation, **data)
        return Response(PartnershipSerializer(partnership).data, status=status.HTTP_201_CREATED)


class PartnershipDetailView(VisibleObjectMixin, PartnershipsMixin, generics.RetrieveAPIView):
    required_scopes = READ

    @extend_schema(examples=examples.PARTNERSHIP)
    def get(self, request, *args, **kwargs):
        """Get a partnership

        One of your partnerships. Others' answer 404.
        """
        return super().get(request, *args, **kwargs)


ACTION_TEXT = {
    "accept": (
        "Accept a partnership",
        "Only the organisation it was proposed to; it becomes active and referrals may flow.",
    ),
    "decline": ("Decline a partnership", "Only the organisation it was proposed to."),
    "suspend": (
        "Suspend a partnership",
        "Either side, while it is active. Referrals stop "
        "and confidential locations are hidden again until it resumes.",
    ),
    "resume": ("Resume a partnership", "Only the side that suspended it."),
    "end": ("End a partnership", "Either side, from proposed, active or suspended; final."),
}


class PartnershipActionView(APIView):
    """One endpoint per step of a partnership (PARTNERSHIP_ACTION_VIEWS)."""

    required_scopes = WRITE
    action_name = ""

    def post(self, request, pk):
        partnership = services.partnership_transition(
            partnership=visible_or_404(selectors.partnerships_for(request.organisation), pk),
            organisation=request.organisation,
            action=self.action_name,
        )
        return Response(PartnershipSerializer(partnership).data)


def partnership_action_view(action: str):
    schema = extend_schema(
        operation_id=f"partnerships_{action}",
        request=None,
        responses={
            200: PartnershipSerializer,
            409: OpenApiResponse(
                description="The status does not allow this step (`conflict`), or only "
                "the other side may take it (`wrong-party`)."
            ),
        },
        examples=examples.PARTNERSHIP_ACTION,
    )
    summary, who = ACTION_TEXT[action]
    return action_view(
        PartnershipActionView,
        f"Partnership{action.title()}View",
        schema,
        doc=f"{summary}\n\n{who} Announced to both sides as `partnership.changed`. A step the "
        "status does not allow: 409 `conflict`; a step only the other side may take: 409 "
        "`wrong-party`.",
        action_name=action,
    )


PARTNERSHIP_ACTION_VIEWS = {action: partnership_action_view(action) for action in ACTION_TEXT}
