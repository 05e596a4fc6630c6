"""The audit trail (one append-only, hash-chained table), the disclosure log and the published
network statistics. They name actors and objects by id only: no personal data, no tokens, no
request bodies."""

from django.contrib.postgres.fields import ArrayField
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


class Disclosure(models.Model):
    """One API response that carried personal fields of a referral: who received which field
    groups, through which client, when, by which operation. The row holds no personal data, so
    it outlives the data it describes, until the referral's metadata is deleted."""

    id = models.BigAutoField(primary_key=True)
    referral = models.ForeignKey(
        "referrals.Referral", on_delete=models.CASCADE, related_name="disclosures"
    )
    organisation = models.ForeignKey(
        "partners.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    # The OAuth client id, kept as text so the record survives the application's deletion.
    client_id = models.CharField(max_length=100)
    categories = ArrayField(models.CharField(max_length=20))
    operation = models.CharField(max_length=40)
    request_id = models.CharField(max_length=128, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "api"
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(
                "referral", models.F("created").desc(), models.F("id").desc(), name="disclosure_ref"
            )
        ]

    def __str__(self):
        return f"disclosure {self.id}"


class StatsSnapshot(models.Model):
    """The network statistics of one calendar month, computed once, after the month ended, and
    never again: two answers for the same or overlapping periods could be subtracted to
    single out a cell under the small-cell threshold (referrals.stats)."""

    month = models.DateField(unique=True)  # its first day (UTC)
    figures = models.JSONField()
    computed = models.DateTimeField()

    class Meta:
        app_label = "api"
        ordering = ["-month"]

    def __str__(self):
        return f"statistics {self.month:%Y-%m}"
