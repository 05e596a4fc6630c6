"""The FHIR routes: parse, call the REST API's own selectors and services, shape the answer.

Scopes map as the REST API's (docs/FHIR.md): `referrals:read` reads Task, ServiceRequest and
Consent, `referrals:write` creates and updates, `directory:read` reads HealthcareService and
Organization, and a Subscription, being a webhook endpoint, needs `webhooks:manage` (and
`referrals:read` to subscribe to Tasks). Every look-up goes through the caller's organisation:
another organisation's resource answers exactly like an unknown id (404)."""

from django.db.models.functions import Greatest
from django.http import HttpResponse
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.http import http_date
from rest_framework.response import Response

from api.audit.services import disclosure_record
from api.errors import DomainError, NotFound, field_errors
from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.idempotency import idempotent
from api.webhooks.models import WebhookEndpoint
from partners import selectors as directory
from partners.models import Organisation, Service, TaxonomyTerm
from referrals import selectors, services
from referrals.api.serializers import ReferralCreateSerializer
from referrals.fhir import capability, codes, reading, resources, search, subscriptions, updates
from referrals.fhir import services as fhir_services
from referrals.fhir.errors import Malformed, Refused
from referrals.fhir.http import (
    FhirJSONParser,
    FhirView,
    JSONPatchParser,
    strong_if_match,
    weak_etag,
)
from referrals.fhir.models import FhirSubscription
from referrals.models import PersonalDataState, Referral

READ = ["referrals:read"]
WRITE = ["referrals:write"]
DIRECTORY = ["directory:read"]
HOOKS = ["webhooks:manage"]
# If-None-Exist names the clinic's own record ("identifier=…|order-123"): kept only as an HMAC,
# like an Idempotency-Key's fingerprint, never in the clear.
IF_NONE_EXIST_SALT = "srn.fhir.if-none-exist"


def versioned(resource: dict, referral: Referral) -> Response:
    """A referral's resource with its version as the ETag, for If-Match on the next update."""
    response = Response(resource)
    response["ETag"] = weak_etag(referral.version)
    response["Last-Modified"] = http_date(referral.updated.timestamp())
    return response


# --- Conformance -------------------------------------------------------------------------------


class CapabilityStatementView(FhirView):
    """`GET metadata`: public, as FHIR clients expect before they authenticate."""

    authentication_classes: list = []
    permission_classes: list = []
    interactions = {"get": "capabilities"}

    def get(self, request):
        token_url = request.build_absolute_uri(reverse("oauth:token"))
        return Response(capability.statement(self.base(), token_url))


# --- Referrals: create -------------------------------------------------------------------------


class TransactionView(FhirView):
    """`POST [base]`: a transaction Bundle of ServiceRequest, Task and Consent (the person
    contained) creates one referral through referrals.services.referral_create."""

    queryset = Referral.objects.none()
    required_scopes = {"POST": WRITE}
    interactions = {"post": "transaction"}

    def idempotency_key(self, request) -> str | None:
        """An Idempotency-Key, or FHIR's conditional create (If-None-Exist, as a header or on
        the entries), through the same keyed store."""
        conditions = {request.headers.get("If-None-Exist")}
        body = request.data if isinstance(request.data, dict) else {}
        for entry in body.get("entry", []) if isinstance(body.get("entry"), list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("request"), dict):
                conditions.add(entry["request"].get("ifNoneExist"))
        conditions -= {None, ""}
        if len(conditions) > 1 or (conditions and request.headers.get(IDEMPOTENCY_KEY)):
            raise Malformed(
                "Send one condition: an Idempotency-Key or one If-None-Exist.",
                errors=[
                    {"expression": "Bundle.entry.request.ifNoneExist", "detail": "Conflicting."}
                ],
            )
        if conditions:
            condition = conditions.pop()
            return (
                "if-none-exist:"
                + salted_hmac(IF_NONE_EXIST_SALT, condition, algorithm="sha256").hexdigest()
            )
        return request.headers.get(IDEMPOTENCY_KEY)

    @idempotent
    def post(self, request):
        parsed = reading.transaction(request.data, caller_id=request.organisation.pk)
        serializer = ReferralCreateSerializer(data=parsed.data)
        if not serializer.is_valid():
            raise Malformed(
                "The referral has invalid values; see the issues.",
                errors=[
                    {
                        "expression": parsed.expression_for(error["pointer"]),
                        "detail": error["detail"],
                    }
                    for error in field_errors(serializer.errors)
                ],
            )
        try:
            referral = services.referral_create(
                sender=request.organisation, data=serializer.validated_data
            )
        except DomainError as error:
            for item in error.extensions.get("errors", []):
                item["expression"] = parsed.expression_for(item.pop("pointer", ""))
            raise
        response = Response(self.answer(referral, parsed.order))
        response.created_id = str(referral.pk)
        return response

    def answer(self, referral: Referral, order: list[str]) -> dict:
        """The transaction-response: where each resource now is. Only the Task is included
        (metadata and the claim code, as the REST create answers); this answer may be replayed
        from the idempotency store, which holds no personal data."""
        entries = []
        for resource_type in order:
            entry = {
                "response": {
                    "status": "201 Created",
                    "location": f"{resource_type}/{referral.pk}",
                    "etag": weak_etag(referral.version),
                    "lastModified": resources.instant(referral.updated),
                }
            }
            if resource_type == "Task":
                entry["resource"] = resources.task(referral)
            entries.append(entry)
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


# --- Reads and searches --------------------------------------------------------------------------


class SearchView(FhirView):
    """`GET [base]/Type`: a searchset Bundle of the caller's resources, paged with `next`."""

    resource_type = ""
    parameters: tuple[search.Parameter, ...] = ()
    interactions = {"get": "search-type"}
    ordering = ("-created", "-pk")

    def visible(self, request):
        raise NotImplementedError

    def render(self, request, page: list) -> list[dict]:
        raise NotImplementedError

    def get(self, request):
        queryset = search.narrowed(request, self.visible(request), self.parameters)
        paginator = search.Pages()
        paginator.ordering = self.ordering
        page = paginator.paginate_queryset(queryset, request, self)
        links = {
            "self": request.build_absolute_uri(),
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
        }
        return Response(resources.searchset(self.base(), self.render(request, page), links))


LAST_UPDATED = (
    "When it last changed (meta.lastUpdated): eq, gt, ge, lt, le; day precision or finer."
)


def _common(updated_field: str = "updated") -> tuple[search.Parameter, ...]:
    return (
        search.Parameter(
            "_id", "token", "Its id (comma-separated for any of several).", search.ids("pk")
        ),
        search.Parameter("_lastUpdated", "date", LAST_UPDATED, search.dates(updated_field)),
    )


REQUESTER = search.Parameter(
    "requester",
    "reference",
    "The sending organisation (Organization/<id>).",
    search.references("sender_id", "Organization"),
)


class ReferralSearchView(SearchView):
    """A search of the caller's referrals, as Tasks, ServiceRequests or Consents."""

    queryset = Referral.objects.none()
    required_scopes = {"GET": READ}

    def visible(self, request):
        return selectors.referrals_for_party(request.organisation)


class UpdatableView(FhirView):
    """`PUT` sends the whole resource, `PATCH` a JSON Patch of it: both end in `update`."""

    def get_parsers(self):
        if self.request.method == "PATCH":
            return [JSONPatchParser()]
        return [FhirJSONParser(), *super().get_parsers()[1:]]

    def put(self, request, pk):
        return self.update(request, pk)

    def patch(self, request, pk):
        return self.update(request, pk)

    def update(self, request, pk):
        raise NotImplementedError


class TaskSearchView(ReferralSearchView):
    resource_type = "Task"
    parameters = (
        *_common(),
        search.Parameter(
            "owner", "reference", "The receiving organisation (Organization/<id>).",
            search.references("receiver_id", "Organization"),
        ),
        REQUESTER,
        search.Parameter(
            "status", "token", "Task status (requested also finds received referrals).",
            search.tokens("status", codes.statuses_for_task_status, "http://hl7.org/fhir/task-status"),
        ),
    )  # fmt: skip

    def render(self, request, page):
        return [resources.task(referral) for referral in page]


class TaskView(UpdatableView):
    """`GET`, `PUT`, `PATCH Task/<id>`: an update asks for a status, which drives the same
    transition as the REST action endpoints (If-Match with the version, W/"n")."""

    resource_type = "Task"
    queryset = Referral.objects.none()
    required_scopes = {"GET": READ, "PUT": WRITE, "PATCH": WRITE}
    interactions = {"get": "read", "put": "update", "patch": "patch"}

    def get(self, request, pk):
        referral = selectors.referral_for_party(organisation=request.organisation, referral_id=pk)
        return versioned(resources.task(referral), referral)

    def update(self, request, pk):
        referral = selectors.referral_for_party(organisation=request.organisation, referral_id=pk)
        current = resources.task(referral)
        desired = (
            updates.json_patch(current, request.data, allowed=updates.TASK_CHANGEABLE)
            if request.method == "PATCH"
            else request.data
        )
        change = updates.task_change(desired, current)
        if change is not None:
            referral = fhir_services.task_update(
                organisation=request.organisation,
                referral_id=pk,
                current_status=referral.status,
                change=change,
                if_match=strong_if_match(request.headers.get("If-Match")),
            )
        return versioned(resources.task(referral), referral)


class ServiceRequestSearchView(ReferralSearchView):
    """Summaries (SUBSETTED): a search never opens personal data; a read does, gated and
    logged like the REST detail."""

    resource_type = "ServiceRequest"
    parameters = (
        *_common(),
        REQUESTER,
        search.Parameter(
            "status", "token", "active, completed or revoked.",
            search.tokens(
                "status",
                lambda code: [
                    ours for ours in codes.TASK_STATUS
                    if codes.SERVICE_REQUEST_STATUS.get(ours, "active") == code
                ],
                "http://hl7.org/fhir/request-status",
            ),
        ),
    )  # fmt: skip

    def render(self, request, page):
        return [resources.service_request(referral) for referral in page]


def _detail(request, pk):
    """The REST detail's read: tenancy, the personal-data gate (410, 409), decryption."""
    return selectors.referral_detail(organisation=request.organisation, referral_id=pk)


def _disclosed(request, referral: Referral, resource: dict, categories) -> Response:
    """A read that showed personal data, logged as a disclosure of those categories."""
    response = versioned(resource, referral)
    disclosure_record(
        request=request,
        referral=referral,
        categories=categories,
        operation=request.resolver_match.view_name,
    )
    return response


class ServiceRequestView(FhirView):
    resource_type = "ServiceRequest"
    queryset = Referral.objects.none()
    required_scopes = {"GET": READ}
    interactions = {"get": "read"}

    def get(self, request, pk):
        referral, personal = _detail(request, pk)
        shown = {name: value for name, value in personal.items() if name != "consent"}
        return _disclosed(request, referral, resources.service_request(referral, shown), shown)


class ConsentSearchView(ReferralSearchView):
    resource_type = "Consent"
    parameters = (
        *_common(),
        search.Parameter(
            "status", "token", "active, or inactive once withdrawn, expired or past retention.",
            search.tokens(
                "personal_data",
                lambda code: {"active": [PersonalDataState.PRESENT],
                              "inactive": [PersonalDataState.REVOKED, PersonalDataState.EXPIRED]}.get(code, []),
                "http://hl7.org/fhir/consent-state-codes",
            ),
        ),
    )  # fmt: skip

    def visible(self, request):
        return super().visible(request).select_related("consent")

    def render(self, request, page):
        return [resources.consent(referral) for referral in page]


class ConsentView(UpdatableView):
    """`GET Consent/<id>` shows the staff reference and purpose note (personal data: 410 once
    gone). `PUT` or `PATCH` with status `inactive` is the REST revocation (crypto-shredding);
    no If-Match needed, as there: a withdrawal must never bounce."""

    resource_type = "Consent"
    queryset = Referral.objects.none()
    required_scopes = {"GET": READ, "PUT": WRITE, "PATCH": WRITE}
    interactions = {"get": "read", "put": "update", "patch": "patch"}

    def get(self, request, pk):
        referral, personal = _detail(request, pk)
        return _disclosed(
            request,
            referral,
            resources.consent(referral, personal=True),
            ["consent"] if "consent" in personal else [],
        )

    def update(self, request, pk):
        referral = selectors.referral_for_party(organisation=request.organisation, referral_id=pk)
        current = resources.consent(referral)
        desired = (
            updates.json_patch(current, request.data, allowed=frozenset({"status"}))
            if request.method == "PATCH"
            else request.data
        )
        if updates.consent_withdrawn(desired, current):
            services.consent_revoke(organisation=request.organisation, referral_id=pk)
            referral = selectors.referral_for_party(
                organisation=request.organisation, referral_id=pk
            )
        elif current["status"] == "inactive":
            raise Refused(
                "A withdrawn or expired consent cannot be given again: a new referral needs the "
                "person's new consent.",
                errors=[{"expression": "Consent.status", "detail": "Stays inactive."}],
            )
        return versioned(resources.consent(referral), referral)


# --- The directory -------------------------------------------------------------------------------


class DirectoryRead:
    """The public directory: the same for every caller, so its answers may be cached."""

    required_scopes = {"GET": DIRECTORY}
    directory_data = True


def _taxonomy_names(request, services_: list[Service]) -> dict[str, str]:
    wanted = {code for service in services_ for code in service.taxonomy_codes}
    language = directory.preferred_language(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
    return {
        term.code: term.name_in(language) for term in TaxonomyTerm.objects.filter(code__in=wanted)
    }


class HealthcareServiceSearchView(DirectoryRead, SearchView):
    resource_type = "HealthcareService"
    queryset = Service.objects.none()
    parameters = (
        search.Parameter("_id", "token", "Its id (comma-separated for any of several).", search.ids("pk")),
        search.Parameter("_lastUpdated", "date", LAST_UPDATED, search.dates("last_updated")),
        search.Parameter(
            "service-category", "token", f"A service type: a code of {codes.TAXONOMY}.",
            search.overlapping("taxonomy_codes", codes.TAXONOMY),
        ),
    )  # fmt: skip

    def visible(self, request):
        return (
            directory.services_visible()
            .select_related("capacity")
            .annotate(last_updated=Greatest("updated", "capacity__updated"))
        )

    def render(self, request, page):
        names = _taxonomy_names(request, page)
        return [resources.healthcare_service(service, names) for service in page]


class HealthcareServiceView(DirectoryRead, FhirView):
    resource_type = "HealthcareService"
    queryset = Service.objects.none()
    interactions = {"get": "read"}

    def get(self, request, pk):
        service = directory.services_visible().select_related("capacity").filter(pk=pk).first()
        if service is None:
            raise NotFound("No HealthcareService with this id.")
        return Response(resources.healthcare_service(service, _taxonomy_names(request, [service])))


class OrganizationSearchView(DirectoryRead, SearchView):
    resource_type = "Organization"
    queryset = Organisation.objects.none()
    parameters = (
        *_common(),
        search.Parameter("name", "string", "The name starts with this (any case).", search.starts_with("name")),
    )  # fmt: skip

    def visible(self, request):
        return directory.organisations_visible()

    def render(self, request, page):
        return [resources.organization(organisation) for organisation in page]


class OrganizationView(DirectoryRead, FhirView):
    resource_type = "Organization"
    queryset = Organisation.objects.none()
    interactions = {"get": "read"}

    def get(self, request, pk):
        organisation = directory.organisations_visible().filter(pk=pk).first()
        if organisation is None:
            raise NotFound("No Organization with this id.")
        return Response(resources.organization(organisation))


# --- Subscriptions -------------------------------------------------------------------------------


def _subscriptions(request):
    return FhirSubscription.objects.filter(
        endpoint__organisation=request.organisation
    ).select_related("endpoint", "handshake")


class SubscriptionSearchView(SearchView):
    """`GET Subscription` lists yours; `POST Subscription` creates one (the answer carries its
    signing secret, once)."""

    resource_type = "Subscription"
    queryset = WebhookEndpoint.objects.none()
    required_scopes = {"GET": HOOKS, "POST": [*HOOKS, *READ]}
    parameters = (
        search.Parameter(
            "_id", "token", "Its id (comma-separated for any of several).", search.ids("pk")
        ),
    )
    interactions = {"get": "search-type", "post": "create"}

    def visible(self, request):
        return _subscriptions(request)

    def render(self, request, page):
        return [subscriptions.resource(subscription) for subscription in page]

    def post(self, request):
        wanted = subscriptions.read(request.data)
        try:
            subscription = fhir_services.subscription_create(
                organisation=request.organisation, request=wanted, base_url=self.base()
            )
        except DomainError as error:
            # The webhook endpoint's refusals name its fields; the client sent a Subscription.
            for item in error.extensions.get("errors", []):
                if item.pop("pointer", None) == "/url":
                    item["expression"] = "Subscription.channel.endpoint"
            raise
        subscription = _subscriptions(request).get(pk=subscription.pk)
        response = Response(
            subscriptions.resource(subscription, secret=subscription.endpoint.secret), status=201
        )
        response["Location"] = f"{self.base()}/Subscription/{subscription.pk}"
        return response


class SubscriptionView(FhirView):
    resource_type = "Subscription"
    queryset = WebhookEndpoint.objects.none()
    required_scopes = {"GET": HOOKS, "DELETE": HOOKS}
    interactions = {"get": "read", "delete": "delete"}

    def subscription(self, request, pk) -> FhirSubscription:
        found = _subscriptions(request).filter(pk=pk).first()
        if found is None:
            raise NotFound("No Subscription with this id.")
        return found

    def get(self, request, pk):
        return Response(subscriptions.resource(self.subscription(request, pk)))

    def delete(self, request, pk):
        fhir_services.subscription_delete(subscription=self.subscription(request, pk))
        return HttpResponse(status=204)
