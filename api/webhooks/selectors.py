"""Webhook reads, always scoped to the caller's organisation: another organisation's endpoint
or delivery is simply not in the queryset, so it answers 404 like an unknown id."""

from api.errors import NotFound
from api.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint


def endpoints_for(organisation):
    return WebhookEndpoint.objects.filter(organisation=organisation)


def endpoint_get(*, organisation, endpoint_id) -> WebhookEndpoint:
    endpoint = endpoints_for(organisation).filter(id=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No webhook endpoint with this id.")
    return endpoint


def attempts_for_endpoint(endpoint: WebhookEndpoint):
    return WebhookDeliveryAttempt.objects.filter(endpoint=endpoint).select_related(
        "delivery__event"
    )


def delivery_get(*, organisation, delivery_id) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.filter(id=delivery_id, endpoint__organisation=organisation)
        .select_related("endpoint", "event")
        .first()
    )
    if delivery is None:
        raise NotFound("No delivery with this id.")
    return delivery
