"""Tables of the shared plumbing: rate-limit windows, the event outbox, scheduled runs."""

import uuid

from django.db import models


class RateLimitWindow(models.Model):
    """One fixed window of requests for one key (an OAuth application, or a client id at the
    token endpoint). Kept in PostgreSQL so every gunicorn worker shares the count."""

    key = models.CharField(max_length=120)
    window_start = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window")
        ]


class ScheduledRun(models.Model):
    """One scheduled job's run for one period, claimed by the beat that sends it. Several beats
    may run (one per node, or one restarting); the first to claim a period sends the job and the
    others find the row and send nothing (api/celery.py, OncePerPeriodScheduler)."""

    job = models.CharField(max_length=100)
    period = models.BigIntegerField(help_text="Start of the period, in seconds since the epoch.")
    claimed_at = models.DateTimeField(auto_now_add=True)
    claimed_by = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "period"], name="scheduled_run_job_period")
        ]


class Event(models.Model):
    """The transactional outbox: one row per thing that happened, written in the same
    transaction as the change, for one organisation to hear about. Thin by design: ids and
    links, never personal data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=60)
    organisation = models.ForeignKey(
        "partners.Organisation", on_delete=models.CASCADE, related_name="events"
    )
    data = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set once delivery rows exist for every endpoint that wants the event; the webhook sweeper
    # fans out any event whose on-commit hook never ran (a crash between commit and fan-out).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "id"]
        indexes = [
            models.Index(fields=["organisation", "created"], name="event_org_created"),
            models.Index(
                fields=["created"],
                name="event_undispatched",
                condition=models.Q(dispatched_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` seen from one OAuth client, with the response it produced, so a
    retried POST returns the original answer instead of creating twice. Kept at least 24 hours
    (see the retention job)."""

    application = models.ForeignKey(
        "partners.Application", on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_headers = models.JSONField(default=dict)
    # What the request created (its answer's `id`), so the key goes when that is destroyed.
    object_id = models.UUIDField(null=True, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "key"], name="idempotency_client_key")
        ]

    def __str__(self):
        return self.key


from api.audit.models import AuditAnchor, AuditEntry, Disclosure, StatsSnapshot  # noqa: E402, F401
from api.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint  # noqa: E402, F401
