"""Shapes of the referrals API. Serializers validate and render; rules live in services.

Every input serializer is strict: a field it does not declare (immigration_status, nationality,
status, sender...) is a 400 naming it, so such data cannot be stored by accident. Outputs leave
out what the consent does not cover: the key is absent, not null."""

from rest_framework import serializers

from api.pagination import CURSOR_PATTERN
from api.serializers import FieldsBoundOnce, StrictFieldsMixin, rule_error
from api.timestamps import iso
from partners.api.serializers import LanguageTagField
from partners.models import DataCategory
from referrals.models import (
    WORDING_VERSION_PATTERN,
    ConsentMethod,
    ConsentPurpose,
    DeclineReason,
    Outcome,
    PersonalDataState,
    Side,
    Status,
    TimelineKind,
    Urgency,
)
from referrals.pins import PIN_MAX, PIN_MIN
from referrals.services import TOLD_TO_ORGANISATION

AGE_BANDS = ("under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus")
CHANNELS = ("phone_call", "sms", "signal", "whatsapp", "email")
TOLD_BY_ORGANISATION = [(told.value, told.label) for told in TOLD_TO_ORGANISATION]
TOLD_BY_HELP = "How the person told you: in_person, phone or message."
TAXONOMY_FILTER_MAX = 20

# --- Input -----------------------------------------------------------------------------------


class ReferralPersonSerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    name = serializers.CharField(
        max_length=80, help_text="The pseudonym or first name the person chose."
    )
    pronouns = serializers.CharField(max_length=40, required=False)
    age_band = serializers.ChoiceField(choices=AGE_BANDS, required=False)
    languages = serializers.ListField(
        child=LanguageTagField(), max_length=10, required=False, help_text="BCP 47 tags."
    )
    interpreter_needed = serializers.BooleanField(required=False)


class ReferralSafeContactSerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    do_not_contact = serializers.BooleanField(
        help_text="The person will come in themselves: do not reach out at all."
    )
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=CHANNELS), max_length=5, required=False
    )
    safe_times = serializers.CharField(max_length=200, required=False)
    voicemail_ok = serializers.BooleanField(required=False)
    may_name_organisation = serializers.BooleanField(
        required=False, help_text="False: introduce yourselves only by the neutral name."
    )
    neutral_name = serializers.CharField(max_length=80, required=False)
    code_word = serializers.CharField(max_length=40, required=False)
    instructions = serializers.CharField(max_length=500, required=False)

    def validate(self, attrs):
        if attrs["do_not_contact"] and attrs.get("channels"):
            raise rule_error(
                {"channels": ["Leave channels empty when the person must not be contacted."]}
            )
        if not attrs["do_not_contact"] and not attrs.get("channels"):
            raise rule_error(
                {"channels": ["Name at least one safe channel, or set do_not_contact."]}
            )
        return attrs


class ReferralContactSerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    phone = serializers.CharField(max_length=40, required=False)
    email = serializers.EmailField(max_length=254, required=False)
    handle = serializers.CharField(
        max_length=80, required=False, help_text="A Signal, WhatsApp or similar handle."
    )

    def validate(self, attrs):
        if not attrs:
            raise rule_error("Give a phone, an email or a handle.")
        return attrs


class ReferralConsentSerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    consented = serializers.BooleanField()
    method = serializers.ChoiceField(choices=ConsentMethod.choices)
    language = LanguageTagField(help_text="The language the consent was explained in.")
    given_at = serializers.DateTimeField()
    recorded_by = serializers.CharField(
        max_length=100,
        help_text="An opaque staff reference from your own system, not a name. Encrypted, and "
        "destroyed with the personal data.",
    )
    purpose = serializers.ChoiceField(
        choices=ConsentPurpose.choices, help_text="What the person agreed their data is for."
    )
    purpose_note = serializers.CharField(
        max_length=500,
        required=False,
        help_text="Optional words on the purpose. Encrypted, and destroyed with the personal data.",
    )
    recipient = serializers.UUIDField(help_text="Must be the receiving organisation.")
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices), max_length=4
    )
    by_representative = serializers.BooleanField(
        help_text="True when a representative, not the person, gave consent."
    )
    wording_version = serializers.RegexField(
        WORDING_VERSION_PATTERN,
        max_length=20,
        help_text="The version of the consent text shown: a version token such as 2026-10, v3 "
        "or 1.2 (digits and separators, never words).",
    )
    expires_at = serializers.DateTimeField(
        required=False, help_text="Default 90 days after given_at; at most 365."
    )


class ReferralCreateSerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    receiver = serializers.UUIDField()
    service = serializers.UUIDField(help_text="A service of the receiving organisation.")
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    needs = serializers.ListField(
        child=serializers.SlugField(max_length=60), max_length=20, required=False
    )
    respond_by = serializers.DateTimeField(
        required=False,
        help_text="In the future, at most 90 days ahead. Default: 1 day (urgent), 3 days "
        "(soon), 10 days (routine).",
    )
    person = ReferralPersonSerializer()
    safe_contact = ReferralSafeContactSerializer()
    contact = ReferralContactSerializer(required=False, help_text="Needs the contact category.")
    reason = serializers.CharField(max_length=2000)
    health = serializers.CharField(
        max_length=2000, required=False, help_text="Needs the health category."
    )
    legal = serializers.CharField(
        max_length=2000, required=False, help_text="Needs the legal category."
    )
    consent = ReferralConsentSerializer()
    self_service_pin = serializers.RegexField(
        rf"^[0-9]{{{PIN_MIN},{PIN_MAX}}}$",
        required=False,
        write_only=True,
        help_text=f"Optional: a PIN of {PIN_MIN} to {PIN_MAX} digits, chosen by the person or "
        "generated by your system and printed on the slip with the claim code. With both, the "
        "person can see the status, withdraw consent and stop contact themselves "
        "(/api/v1/self, /me). Stored only as a slow hash inside the encrypted personal data; "
        "never answered back (the answer says `self_service: true`). Not one digit repeated "
        "nor a run such as 1234.",
    )


class ReferralTransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    """Transitions without parameters take an empty object (or no body)."""


class ReferralDeclineSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.ChoiceField(choices=DeclineReason.choices)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ReferralCompleteSerializer(StrictFieldsMixin, serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)


class ReferralConsentRevokeSerializer(StrictFieldsMixin, serializers.Serializer):
    method = serializers.ChoiceField(
        choices=TOLD_BY_ORGANISATION,
        required=False,
        help_text=TOLD_BY_HELP + " Optional: a withdrawal is never refused for want of it.",
    )


class ReferralSafeContactChangeSerializer(ReferralSafeContactSerializer):
    """The whole new safe-contact instructions, and how the person told you. They replace the
    old ones: an instruction left out is gone, not kept."""

    # Not a merge, although the method is PATCH: an instruction the person did not repeat
    # (voicemail is fine, the old safe times) must not outlive the change that made it unsafe.
    replaced_whole = True

    method = serializers.ChoiceField(
        choices=TOLD_BY_ORGANISATION, required=False, help_text=TOLD_BY_HELP
    )


class ReferralConsentRenewSerializer(StrictFieldsMixin, serializers.Serializer):
    method = serializers.ChoiceField(choices=ConsentMethod.choices)
    language = LanguageTagField(help_text="The language the consent was explained in this time.")
    wording_version = serializers.RegexField(
        WORDING_VERSION_PATTERN,
        max_length=20,
        help_text="The version of the consent text shown (digits and separators).",
    )
    recorded_by = serializers.CharField(
        max_length=100,
        help_text="An opaque staff reference, not a name. Encrypted, destroyed with the data.",
    )
    given_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    expires_at = serializers.DateTimeField(
        required=False,
        help_text="Default 90 days after given_at; at most 365. In the future.",
    )


class ReferralNoteCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    text = serializers.CharField(max_length=4000)


class ReferralListQuerySerializer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    box = serializers.ChoiceField(choices=("inbox", "outbox"), default="inbox")
    # Lists bounded (referrals.api.filters states the bounds) so that no request the schema
    # allows is over the server's request line (api.devstack: limit_request_line).
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=Status.choices),
        max_length=len(Status.choices),
        required=False,
    )
    urgency = serializers.ListField(
        child=serializers.ChoiceField(choices=Urgency.choices),
        max_length=len(Urgency.choices),
        required=False,
    )
    service = serializers.UUIDField(required=False)
    taxonomy = serializers.ListField(
        child=serializers.SlugField(max_length=60), max_length=TAXONOMY_FILTER_MAX, required=False
    )
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    updated_after = serializers.DateTimeField(required=False)
    updated_before = serializers.DateTimeField(required=False)
    cursor = serializers.RegexField(CURSOR_PATTERN, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)


# --- Output ----------------------------------------------------------------------------------


class ReferralPartySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class ReferralSummarySerializer(serializers.Serializer):
    """Metadata only: what lists, transitions and the create answer show."""

    id = serializers.UUIDField()
    claim_code = serializers.CharField(
        allow_null=True,
        help_text="For the person to carry; null once the referral is closed or its personal "
        "data destroyed.",
    )
    status = serializers.ChoiceField(choices=Status.choices)
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    needs = serializers.ListField(child=serializers.CharField())
    sender = ReferralPartySerializer()
    receiver = ReferralPartySerializer()
    service = serializers.UUIDField(source="service_id")
    respond_by = serializers.DateTimeField()
    decline_reason = serializers.CharField()
    outcome = serializers.CharField()
    personal_data = serializers.ChoiceField(
        choices=PersonalDataState.choices,
        help_text="present, or revoked/expired once it was destroyed.",
    )
    self_service = serializers.BooleanField(
        help_text="The person can use self-service now: a PIN was set and the claim code is "
        "still in use. The PIN itself is never shown."
    )
    version = serializers.IntegerField(help_text="Also the ETag, quoted.")
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    closed = serializers.DateTimeField(allow_null=True)

    def to_representation(self, referral):
        """Hand-rolled: the inbox renders 25 of these per page, and DRF's generic per-field
        path was most of the page's time. The fields above stay the documented contract
        (a test compares this with the generic rendering)."""
        return {
            "id": str(referral.id),
            "claim_code": referral.claim_code,
            "status": referral.status,
            "urgency": referral.urgency,
            "needs": list(referral.needs),
            "sender": {"id": str(referral.sender_id), "name": referral.sender.name},
            "receiver": {"id": str(referral.receiver_id), "name": referral.receiver.name},
            "service": str(referral.service_id),
            "respond_by": iso(referral.respond_by),
            "decline_reason": referral.decline_reason,
            "outcome": referral.outcome,
            "personal_data": referral.personal_data,
            "self_service": referral.self_service and referral.claim_code is not None,
            "version": referral.version,
            "created": iso(referral.created),
            "updated": iso(referral.updated),
            "closed": iso(referral.closed),
        }


class ReferralConsentOutSerializer(serializers.Serializer):
    method = serializers.CharField()
    language = serializers.CharField()
    given_at = serializers.DateTimeField()
    recorded_by = serializers.CharField()
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    purpose_note = serializers.CharField(required=False)
    recipient = serializers.UUIDField(source="referral.receiver_id")
    data_categories = serializers.ListField(child=serializers.CharField())
    by_representative = serializers.BooleanField()
    wording_version = serializers.CharField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class ReferralSafeContactOutSerializer(serializers.Serializer):
    do_not_contact = serializers.BooleanField()
    channels = serializers.ListField(child=serializers.CharField(), required=False)
    safe_times = serializers.CharField(required=False)
    voicemail_ok = serializers.BooleanField(required=False)
    may_name_organisation = serializers.BooleanField(required=False)
    neutral_name = serializers.CharField(required=False)
    code_word = serializers.CharField(required=False)
    instructions = serializers.CharField(required=False)
    version = serializers.IntegerField(
        required=False,
        help_text="Absent for the instructions sent with the referral (version 1); then 2, 3… "
        "with each change (each one a safe_contact_changed timeline entry).",
    )
    changed_at = serializers.DateTimeField(required=False, help_text="When they last changed.")
    changed_by = serializers.ChoiceField(
        choices=Side.choices, required=False, help_text="Who changed them last."
    )


class ReferralContactOutSerializer(serializers.Serializer):
    phone = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    handle = serializers.CharField(required=False)


class ReferralDetailSerializer(FieldsBoundOnce, serializers.Serializer):
    """The whole referral for its two parties. The safe-contact block comes first, because
    reaching out the wrong way can put the person in danger. Fields of categories the person
    did not consent to are absent, and so is `contact` while `do_not_contact` is set."""

    safe_contact = ReferralSafeContactOutSerializer()
    referral = ReferralSummarySerializer()
    person = ReferralPersonSerializer()
    reason = serializers.CharField()
    contact = ReferralContactOutSerializer(
        required=False, help_text="Absent while the person asked not to be contacted."
    )
    health = serializers.CharField(required=False)
    legal = serializers.CharField(required=False)
    decline_note = serializers.CharField(required=False)
    consent = ReferralConsentOutSerializer()
    allowed_actions = serializers.ListField(
        child=serializers.CharField(), help_text="The actions your side may take now."
    )


class ReferralNoteSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    author = serializers.UUIDField(help_text="The organisation that wrote it.")
    created = serializers.DateTimeField()
    text = serializers.CharField()


class ReferralTimelineEntrySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TimelineKind.choices)
    actor = serializers.UUIDField(
        source="actor_id", allow_null=True, help_text="Empty for the person and for jobs."
    )
    side = serializers.CharField(
        help_text="sender, receiver or person (self-service); empty for scheduled jobs and "
        "entries from before it was recorded."
    )
    method = serializers.CharField(
        help_text="How the person told it: in_person, phone, message or self_service (a "
        "revocation, a safe-contact change); for a renewal, how consent was given."
    )
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    code = serializers.CharField()
    version = serializers.IntegerField(
        allow_null=True, help_text="The safe-contact version a safe_contact_changed made."
    )
    at = serializers.DateTimeField()
