"""Tables of the shared plumbing: rate-limit windows and the event outbox."""

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

    class Meta:
        ordering = ["created", "id"]
        indexes = [models.Index(fields=["organisation", "created"], name="event_org_created")]

    def __str__(self):
        return f"{self.type} {self.id}"
