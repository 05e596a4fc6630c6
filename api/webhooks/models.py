"""Webhook endpoints, one delivery per (event, endpoint) and every attempt at it. The outbox
itself is api.models.Event; a delivery row is created for each endpoint that wants an event."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models

STANDARD_PAYLOAD = "standard-webhooks"


class WebhookEndpoint(models.Model):
    """Where one organisation wants to hear about its events. The signing secret is kept in
    the clear because HMAC signing needs it; it is shown to the owner only once.

    `payload_format` names how its bodies are written: this API's own thin JSON, or a format an
    app registered (services.register_payload_format: the FHIR facade's notification Bundles).
    `data_filter` narrows the events it gets to those whose data has one of the listed values
    for each key (a FHIR Subscription's filter criteria); empty, it gets every wanted event."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "partners.Organisation", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = ArrayField(models.CharField(max_length=60), default=list)
    payload_format = models.CharField(max_length=40, default=STANDARD_PAYLOAD)
    data_filter = models.JSONField(default=dict, blank=True)
    secret = models.CharField(max_length=100)
    # After a rotation the old secret keeps signing until this time, so receivers can switch.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set at the first failed attempt after a success; three days of this disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    # The last sequence number handed out; deliveries take the next ones in creation order.
    sequence = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "api"
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["organisation", "active"], name="webhook_org_active")]

    def __str__(self):
        return self.url


# What an endpoint is subscribed to and whether it is sending: shown to its organisation by the
# API and to stewards in the admin.
ENDPOINT_STATE_FIELDS = (
    "url",
    "description",
    "event_types",
    "active",
    "disabled_reason",
    "disabled_at",
    "failing_since",
)
WILDCARD = "*"


def subscribed(event_types: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to `event_types` wants an event of `event_type`."""
    return WILDCARD in event_types or event_type in event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint. `next_attempt_at` is both the retry schedule and a lease: a
    worker that claims the row pushes it forward, so a lost task or a dead worker is picked up
    by the sweeper once it has passed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey("api.Event", on_delete=models.CASCADE, related_name="deliveries")
    sequence = models.BigIntegerField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # Attempts in the current round of the retry schedule (a redelivery starts a new round).
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "api"
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once"),
            models.UniqueConstraint(fields=["endpoint", "sequence"], name="webhook_delivery_seq"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self):
        return f"{self.event_id} -> {self.endpoint_id}"


class WebhookDeliveryAttempt(models.Model):
    """One HTTP exchange (or the reason there was none). Stored for every attempt so the owner
    can see what happened; the receiver's body is kept only up to a small cap."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    created = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=512, blank=True)

    class Meta:
        app_label = "api"
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created", "-id"], name="webhook_attempt_endpoint")
        ]

    def __str__(self):
        return f"{self.delivery_id} {self.status_code or self.error}"
