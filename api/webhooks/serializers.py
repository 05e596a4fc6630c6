"""Shapes of webhook endpoints, deliveries and attempts. Validation of the URL policy and of
event types lives in services; these only check shape."""

from rest_framework import serializers

from api.serializers import StrictFieldsMixin
from api.webhooks.models import (
    ENDPOINT_STATE_FIELDS,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from api.webhooks.services import SUBSCRIBABLE

EVENT_TYPES_HELP = "Event types to receive; '*' for all."
# How a delivery and each attempt at it name the event they carry, alike in both answers.
EVENT_FIELDS = ["event", "event_type", "sequence"]


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", *ENDPOINT_STATE_FIELDS, "previous_secret_expires", "created", "updated"]
        read_only_fields = fields
        extra_kwargs = {
            "disabled_reason": {"help_text": "Why the endpoint was disabled, when it is."},
            "previous_secret_expires": {
                "help_text": "Until when the secret before the last rotation still signs."
            },
        }


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """Only on creation and rotation: the one time the secret is shown."""

    secret = serializers.CharField(
        read_only=True, help_text="Standard Webhooks signing secret. Shown only this once."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    # Not trimmed: a URL of only control characters is refused by the URL rules (422), not
    # read as blank (400), which the schema's minLength does not say.
    url = serializers.CharField(
        max_length=2000,
        trim_whitespace=False,
        help_text="An https:// URL with a public address. Stored as it will be sent: the host "
        "in IDNA (punycode), path and query percent-encoded as UTF-8.",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE),
        allow_empty=False,
        help_text=EVENT_TYPES_HELP,
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


class WebhookEndpointUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False, trim_whitespace=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE),
        allow_empty=False,
        required=False,
        help_text=EVENT_TYPES_HELP,
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(
        required=False, help_text="false disables; true re-enables and sends what waited."
    )


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            *EVENT_FIELDS,
            "status",
            "next_attempt_at",
            "delivered_at",
            "created",
        ]
        read_only_fields = fields


class WebhookDeliveryAttemptSerializer(serializers.ModelSerializer):
    delivery = serializers.UUIDField(
        source="delivery_id", read_only=True, help_text="Redeliver with this id."
    )
    event = serializers.UUIDField(
        source="delivery.event_id", read_only=True, help_text="Also the webhook-id header."
    )
    event_type = serializers.CharField(source="delivery.event.type", read_only=True)
    sequence = serializers.IntegerField(source="delivery.sequence", read_only=True)
    delivery_status = serializers.CharField(source="delivery.status", read_only=True)

    class Meta:
        model = WebhookDeliveryAttempt
        fields = [
            "id",
            "delivery",
            *EVENT_FIELDS,
            "created",
            "status_code",
            "latency_ms",
            "succeeded",
            "error",
            "delivery_status",
        ]
        read_only_fields = fields
