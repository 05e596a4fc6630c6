"""Consent-bound referrals. The referral row holds only metadata (who, what service, status,
dates); everything about the person lives encrypted in PersonalData and ReferralNote rows under
a data key of the referral's own (ReferralKey). Destroying a referral's personal data deletes
those rows and the key, and leaves the metadata and the timeline.

There is deliberately no field for immigration status, nationality, identity-document numbers,
criminal record or sex-work history: what is not stored cannot leak or be subpoenaed."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Urgency(models.TextChoices):
    ROUTINE = "routine"
    SOON = "soon"
    URGENT = "urgent"


class Status(models.TextChoices):
    """HL7 FHIR Task statuses as used for closed-loop referrals (SDOH Clinical Care IG)."""

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ON_HOLD = "on_hold"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset({Status.DECLINED, Status.COMPLETED, Status.CANCELLED, Status.EXPIRED})


class DeclineReason(models.TextChoices):
    NO_CAPACITY = "no_capacity"
    NOT_ELIGIBLE = "not_eligible"
    OUT_OF_AREA = "out_of_area"
    MISSING_INFORMATION = "missing_information"
    OTHER = "other"


class Outcome(models.TextChoices):
    SERVICE_PROVIDED = "service_provided"
    REFERRED_ON = "referred_on"
    PERSON_WITHDREW = "person_withdrew"
    COULD_NOT_CONTACT = "could_not_contact"
    OTHER = "other"


class PersonalDataState(models.TextChoices):
    PRESENT = "present"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Referral(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sender = models.ForeignKey(
        "partners.Organisation", on_delete=models.PROTECT, related_name="referrals_sent"
    )
    receiver = models.ForeignKey(
        "partners.Organisation", on_delete=models.PROTECT, related_name="referrals_received"
    )
    service = models.ForeignKey(
        "partners.Service", on_delete=models.PROTECT, related_name="referrals"
    )
    partnership = models.ForeignKey(
        "partners.Partnership", on_delete=models.PROTECT, related_name="referrals"
    )
    urgency = models.CharField(max_length=8, choices=Urgency.choices)
    needs = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    respond_by = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    decline_reason = models.CharField(max_length=20, choices=DeclineReason.choices, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    claim_code = models.CharField(max_length=8, unique=True)
    personal_data = models.CharField(
        max_length=8, choices=PersonalDataState.choices, default=PersonalDataState.PRESENT
    )
    version = models.PositiveIntegerField(default=1)
    created = models.DateTimeField()
    updated = models.DateTimeField()
    closed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # The inbox and outbox lists: one index each, in cursor order.
            models.Index(
                "receiver", models.F("created").desc(), models.F("id").desc(), name="ref_inbox"
            ),
            models.Index(
                "sender", models.F("created").desc(), models.F("id").desc(), name="ref_outbox"
            ),
            # The scheduled expiry job only looks at open referrals.
            models.Index(
                fields=["respond_by"],
                name="ref_open_respond_by",
                condition=models.Q(status__in=["requested", "received"]),
            ),
        ]

    def __str__(self):
        return f"referral {self.id}"

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


class ConsentMethod(models.TextChoices):
    VERBAL = "verbal"
    WRITTEN = "written"
    ELECTRONIC = "electronic"


class Consent(models.Model):
    """What the person agreed to, recorded by the sender. Covers one recipient only: the
    receiver cannot pass the person on; a re-referral is a new referral with new consent."""

    referral = models.OneToOneField(
        Referral, on_delete=models.CASCADE, primary_key=True, related_name="consent"
    )
    method = models.CharField(max_length=12, choices=ConsentMethod.choices)
    language = models.CharField(max_length=35)
    given_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=100, help_text="Opaque staff reference.")
    purpose = models.CharField(max_length=200)
    data_categories = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    by_representative = models.BooleanField(default=False)
    wording_version = models.CharField(max_length=40)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class ReferralKey(models.Model):
    """The referral's data key, wrapped by a key-encryption key named by `kid`. Deleting this
    row makes every ciphertext of the referral unreadable, including copies in old backups."""

    referral = models.OneToOneField(
        Referral, on_delete=models.CASCADE, primary_key=True, related_name="key"
    )
    kid = models.CharField(max_length=40, db_index=True)
    wrapped = models.BinaryField()
    updated = models.DateTimeField(auto_now=True)


class PersonalData(models.Model):
    """One encrypted field group of a referral (e.g. `person`, `safe_contact`, `contact`)."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="personal")
    field = models.CharField(max_length=20)
    ciphertext = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["referral", "field"], name="personal_referral_field")
        ]


class ReferralNote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey("partners.Organisation", on_delete=models.PROTECT, related_name="+")
    ciphertext = models.BinaryField()
    created = models.DateTimeField()

    class Meta:
        ordering = ["created", "id"]


class TimelineKind(models.TextChoices):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    NOTE_ADDED = "note_added"
    CONSENT_REVOKED = "consent_revoked"
    CONSENT_EXPIRED = "consent_expired"


class TimelineEntry(models.Model):
    """What happened to a referral, without personal data, so it survives destruction."""

    id = models.BigAutoField(primary_key=True)
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=TimelineKind.choices)
    actor = models.ForeignKey(
        "partners.Organisation", null=True, on_delete=models.PROTECT, related_name="+"
    )
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    code = models.CharField(max_length=20, blank=True, help_text="Decline reason or outcome.")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"
