"""The audit trail: one append-only, hash-chained table. Entries name actors and objects by id
only: no personal data, no tokens, no request bodies."""

from django.db import models

GENESIS_HASH = "0" * 64


class AuditEntry(models.Model):
    """One thing that happened. `hash` is SHA-256 over the canonical encoding of the entry and
    `prev_hash`, so rewriting, removing or reordering any entry breaks every hash after it. A
    trigger (migration 0003_audit) refuses UPDATE and DELETE except for the retention job."""

    sequence = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    actor_organisation = models.UUIDField(null=True, blank=True)
    actor_application = models.CharField(max_length=100, blank=True)
    actor_user = models.IntegerField(null=True, blank=True)
    action = models.CharField(max_length=120)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=40)
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        app_label = "api"
        ordering = ["-sequence"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"#{self.sequence} {self.action} {self.result}"


class AuditAnchor(models.Model):
    """Where the chain starts after the retention job removed a prefix: the sequence number
    and hash of the last removed entry, so the first remaining entry still verifies."""

    pruned_through = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "api"
        ordering = ["-pruned_through"]

    def __str__(self):
        return f"pruned through #{self.pruned_through}"
