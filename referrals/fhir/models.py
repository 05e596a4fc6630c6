"""A FHIR Subscription is a webhook endpoint (api.webhooks) with the facts the R4 Subscriptions
backport adds: its topic, filter criteria as the client wrote them, heartbeat period, end, the
handshake delivery that decides `requested` or `active`, and the base URL its notifications
name resources by. Deleting the endpoint deletes it."""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class FhirSubscription(models.Model):
    endpoint = models.OneToOneField(
        "api.WebhookEndpoint",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="fhir_subscription",
    )
    topic = models.CharField(max_length=200)
    filters = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    heartbeat_period = models.PositiveIntegerField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    handshake = models.ForeignKey(
        "api.WebhookDelivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Handshakes and heartbeats are numbered below zero, apart from the events (see services).
    messages = models.PositiveIntegerField(default=0)
    base_url = models.CharField(max_length=300)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "referrals"

    def __str__(self):
        return f"FHIR subscription {self.endpoint_id}"
