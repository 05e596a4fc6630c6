"""Webhook endpoints and deliveries over HTTP. Thin: parse, call one service or selector,
shape the answer. Everything is scoped to the token's organisation."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import CursorPagination
from api.schema import queryset_outside_requests
from api.serializers import validated
from api.webhooks import examples, selectors, services
from api.webhooks.models import WebhookEndpoint
from api.webhooks.serializers import (
    WebhookDeliveryAttemptSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
)

SCOPES = ["webhooks:manage"]
ENDPOINT_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Endpoint id.")


def endpoint_action(method: str, responses: dict, shown: list, **options):
    """An action on one endpoint, /webhook-endpoints/{id}/<name>, with no request body. Its
    operation id is the path's words: drf-spectacular would add the HTTP method's action
    (`_create`), which verb_operation_ids would take for the verb."""

    def decorate(function):
        routed = action(detail=True, methods=[method], **options)(function)
        return extend_schema(
            operation_id=f"webhook_endpoints_{function.__name__}",
            parameters=[ENDPOINT_ID],
            request=None,
            responses=responses,
            examples=shown,
        )(routed)

    return decorate


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(viewsets.GenericViewSet):
    required_scopes = SCOPES
    queryset = WebhookEndpoint.objects.none()
    serializer_class = WebhookEndpointSerializer
    pagination_class = CursorPagination
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    @queryset_outside_requests
    def get_queryset(self):
        return selectors.endpoints_for(self.request.organisation)

    def _endpoint(self):
        return selectors.endpoint_get(
            organisation=self.request.organisation, endpoint_id=self.kwargs["pk"]
        )

    @extend_schema(
        responses={200: WebhookEndpointSerializer(many=True)},
        examples=examples.ENDPOINT_LIST,
    )
    def list(self, request):
        """List webhook endpoints

        Your organisation's webhook endpoints, newest first. Disabled ones say why.
        """
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookEndpointSerializer(page, many=True).data)

    @extend_schema(
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
        examples=examples.ENDPOINT_CREATE,
    )
    def create(self, request):
        """Create a webhook endpoint

        Subscribe a URL to event types ('*' for all). The URL must be https:// and resolve
        only to public addresses. The signing secret is in this response only.
        """
        data = validated(WebhookEndpointCreateSerializer, request.data)
        endpoint = services.endpoint_create(organisation=request.organisation, **data)
        return Response(
            WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=[ENDPOINT_ID],
        responses={200: WebhookEndpointSerializer},
        examples=examples.ENDPOINT,
    )
    def retrieve(self, request, pk=None):
        """Show a webhook endpoint

        One of your endpoints. The secret is never shown again after creation.
        """
        return Response(WebhookEndpointSerializer(self._endpoint()).data)

    @extend_schema(
        parameters=[ENDPOINT_ID],
        request=WebhookEndpointUpdateSerializer,
        responses={200: WebhookEndpointSerializer},
        examples=examples.ENDPOINT_UPDATE,
    )
    def partial_update(self, request, pk=None):
        """Change a webhook endpoint

        Change URL, event types or description, or disable it (active=false). Re-enabling
        (active=true) sends every delivery that waited while it was disabled.
        """
        data = validated(WebhookEndpointUpdateSerializer, request.data)
        endpoint = services.endpoint_update(endpoint=self._endpoint(), **data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(parameters=[ENDPOINT_ID], responses={204: None})
    def destroy(self, request, pk=None):
        """Delete a webhook endpoint

        Stops all deliveries to it and forgets its delivery history.
        """
        services.endpoint_delete(endpoint=self._endpoint())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @endpoint_action(
        "post",
        {200: WebhookEndpointWithSecretSerializer},
        examples.SECRET_ROTATE,
        url_path="rotate-secret",
    )
    def rotate_secret(self, request, pk=None):
        """Rotate the signing secret

        Issues a new secret, shown only in this response. For 24 hours the old secret signs
        too (two signatures in webhook-signature), so you can switch without losing a delivery.
        """
        endpoint = services.endpoint_rotate_secret(endpoint=self._endpoint())
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @endpoint_action("post", {202: WebhookDeliverySerializer}, examples.DELIVERY_QUEUED)
    def ping(self, request, pk=None):
        """Send a test event

        Queues a signed `ping` event to this endpoint alone; follow it in the deliveries list.
        """
        delivery = services.endpoint_ping(endpoint=self._endpoint())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @endpoint_action("get", {200: WebhookDeliveryAttemptSerializer(many=True)}, examples.ATTEMPTS)
    def deliveries(self, request, pk=None):
        """List delivery attempts

        Every attempt to this endpoint, newest first: event, time, HTTP status, latency and
        error. Redeliver with the `delivery` id.
        """
        page = self.paginate_queryset(selectors.attempts_for_endpoint(self._endpoint()))
        return self.get_paginated_response(WebhookDeliveryAttemptSerializer(page, many=True).data)


@extend_schema(tags=["webhooks"])
class WebhookDeliveryRedeliverView(APIView):
    required_scopes = SCOPES

    @extend_schema(
        operation_id="deliveries_redeliver",
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="Delivery id.")],
        request=None,
        responses={202: WebhookDeliverySerializer},
        examples=examples.DELIVERY_QUEUED,
    )
    def post(self, request, id):
        """Redeliver an event

        Sends the delivery again with the same webhook-id and a fresh retry schedule. Another
        organisation's delivery answers 404.
        """
        delivery = selectors.delivery_get(organisation=request.organisation, delivery_id=id)
        delivery = services.delivery_redeliver(delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
