"""Consent-bound referrals. The referral row holds only metadata (who, what service, status,
dates); everything about the person lives encrypted in PersonalData and ReferralNote rows under
a data key of the referral's own (ReferralKey). Destroying a referral's personal data deletes
those rows and the key, and leaves the metadata and the timeline.

There is deliberately no field for immigration status, nationality, identity-document numbers,
criminal record or sex-work history: what is not stored cannot leak or be subpoenaed."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
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


# Waiting for the receiver's answer: what respond_by applies to (the expiry job, and the
# partial index it reads, which PostgreSQL uses only when the two conditions match).
UNANSWERED_STATUSES = [Status.REQUESTED, Status.RECEIVED]
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
    # Cleared once the referral closes or its personal data is destroyed: a code on a scrap of
    # paper must not lead anywhere after that.
    claim_code = models.CharField(max_length=8, unique=True, null=True, blank=True)
    personal_data = models.CharField(
        max_length=8, choices=PersonalDataState.choices, default=PersonalDataState.PRESENT
    )
    # The person was given a PIN with the claim code, for self-service (/api/v1/self, /me). The
    # PIN's hash is personal data (the `self_service` group of PersonalData), not here.
    self_service = models.BooleanField(default=False, db_default=False)
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
                condition=models.Q(status__in=UNANSWERED_STATUSES),
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


class ConsentPurpose(models.TextChoices):
    """What the person agreed their data may be used for. Codes, not free text: the consent
    row outlives the personal data, so it must not be able to describe the person. Where a
    purpose matches a service type of the taxonomy, it has the same code."""

    SEXUAL_HEALTH = "sexual-health", "Sexual health"
    CONTRACEPTION = "contraception", "Contraception"
    REPRODUCTIVE_CARE = "abortion-reproductive-care", "Abortion and reproductive care"
    GENERAL_HEALTH = "general-health", "General health"
    MENTAL_HEALTH = "mental-health", "Mental health"
    HARM_REDUCTION = "harm-reduction", "Harm reduction"
    LEGAL_ADVICE = "legal-advice", "Legal advice"
    LABOUR_RIGHTS = "labour-rights", "Labour rights"
    VIOLENCE_REPORTING = "safe-reporting-violence", "Reporting violence safely"
    SHELTER = "emergency-shelter", "Emergency shelter"
    HOUSING = "housing", "Housing"
    FOOD = "food", "Food"
    FINANCIAL_AID = "financial-aid", "Financial aid"
    INTERPRETATION = "interpretation", "Interpretation"
    PEER_SUPPORT = "peer-support", "Peer support"
    OTHER = "other", "Other"


# A version token ("2026-10", "v3", "1.2"): digits and separators only, so the version of the
# consent text cannot carry words about the person.
WORDING_VERSION_PATTERN = r"^v?[0-9]{1,8}([.-][0-9]{1,8}){0,3}$"
validate_wording_version = RegexValidator(
    WORDING_VERSION_PATTERN, "A version token such as 2026-10, v3 or 1.2."
)


class Consent(models.Model):
    """What the person agreed to, recorded by the sender. Covers one recipient only: the
    receiver cannot pass the person on; a re-referral is a new referral with new consent.

    Only codes, dates and flags live here, because this row stays after the personal data is
    destroyed. Who recorded the consent and any note on its purpose are personal data: they
    are the `consent` group of PersonalData, encrypted and shredded with the rest."""

    referral = models.OneToOneField(
        Referral, on_delete=models.CASCADE, primary_key=True, related_name="consent"
    )
    method = models.CharField(max_length=12, choices=ConsentMethod.choices)
    language = models.CharField(max_length=35)
    given_at = models.DateTimeField()
    purpose = models.CharField(max_length=30, choices=ConsentPurpose.choices)
    data_categories = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    by_representative = models.BooleanField(default=False)
    wording_version = models.CharField(max_length=20, validators=[validate_wording_version])
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # When the sender was told the consent ends soon (`referral.consent_expiring`), so the job
    # tells it once; a renewal clears it.
    expiring_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The raw-SQL insert of referral_create bypasses model validation: the database holds
        # the line.
        constraints = [
            models.CheckConstraint(
                condition=models.Q(purpose__in=ConsentPurpose.values), name="consent_purpose_code"
            ),
            models.CheckConstraint(
                condition=models.Q(wording_version__regex=WORDING_VERSION_PATTERN),
                name="consent_wording_version_token",
            ),
        ]


class KeyEpoch(models.Model):
    """An epoch of the keyring (referrals/keyring.py). Its key, kept only in the keyring
    directory, wraps the data keys created or moved while it was the newest; this row holds no
    key material, only its life: new data keys are refused under it once `retired`, and the
    epoch job destroys its key once no data key is left under it."""

    id = models.PositiveIntegerField(primary_key=True)
    created = models.DateTimeField()
    retired = models.DateTimeField(null=True, blank=True)
    destroyed = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"key epoch {self.id}"


class ReferralKey(models.Model):
    """The referral's data key, wrapped by the key of its `epoch` (data keys from before epochs:
    by the key-encryption key `kid`, until the epoch job moves them). Deleting this row, and the
    epoch job then destroying the epoch key, makes every ciphertext of the referral unreadable,
    including copies in database files and backups taken before."""

    referral = models.OneToOneField(
        Referral, on_delete=models.CASCADE, primary_key=True, related_name="key"
    )
    # No foreign key to KeyEpoch: its check would lock the newest epoch's row on every create.
    epoch = models.PositiveIntegerField(null=True, db_index=True)
    kid = models.CharField(max_length=40, blank=True)
    wrapped = models.BinaryField()
    updated = models.DateTimeField(auto_now=True)


class PersonalData(models.Model):
    """One encrypted field group of a referral (e.g. `person`, `safe_contact`, `contact`, and
    `consent`: who recorded the consent and the note on its purpose)."""

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
    CONSENT_RENEWED = "consent_renewed"
    SAFE_CONTACT_CHANGED = "safe_contact_changed"


class Side(models.TextChoices):
    """Who acted: one of the two organisations, or the person through self-service."""

    SENDER = "sender"
    RECEIVER = "receiver"
    PERSON = "person"


class ToldBy(models.TextChoices):
    """How the person said it (a revocation, a new safe contact): the organisation that records
    it names the way; self-service is the person acting themselves."""

    IN_PERSON = "in_person"
    PHONE = "phone"
    MESSAGE = "message"
    SELF_SERVICE = "self_service"


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
    # Which side acted and how the person told it. Database defaults, because referral_create
    # and the benchmarks insert entries with raw SQL.
    side = models.CharField(
        max_length=8, choices=Side.choices, blank=True, default="", db_default=""
    )
    method = models.CharField(
        max_length=12,
        blank=True,
        default="",
        db_default="",
        help_text="How the person told it (ToldBy), or for a renewal how consent was given.",
    )
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The safe-contact version a safe_contact_changed made."
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"


class SelfServiceToken(models.Model):
    """A person's short-lived token from claim code and PIN, for that one referral only (not an
    OAuth token). Stored as the SHA-256 of the token; deleted by retention once expired."""

    checksum = models.CharField(max_length=64, primary_key=True)
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="+")
    expires = models.DateTimeField(db_index=True)
    created = models.DateTimeField()


class SelfServiceLock(models.Model):
    """Failed self-service sign-ins for one claim code, known or not (an unknown code is counted
    exactly like a known one, so the two cannot be told apart). Keyed by an HMAC of the code
    under a key derived from SECRET_KEY: the table cannot be read back into codes."""

    key = models.CharField(max_length=64, primary_key=True)
    failures = models.PositiveSmallIntegerField(default=0)
    locks = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(db_index=True)


# The FHIR facade's own table lives in its package; imported here so the app registers it.
from referrals.fhir.models import FhirSubscription  # noqa: E402, F401
