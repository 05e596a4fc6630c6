from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import StrictFieldsMixin


class AuditHeadSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="Sequence number of the latest entry.")
    hash = serializers.CharField(help_text="SHA-256 (hex) of the latest entry.")


class DisclosureOrganisationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class DisclosureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    organisation = DisclosureOrganisationSerializer(help_text="Who received the data.")
    client_id = serializers.CharField(help_text="The OAuth client that made the request.")
    categories = serializers.ListField(
        child=serializers.CharField(),
        help_text="Personal field groups returned: person, safe_contact, reason, contact, "
        "health, legal, decline_note, notes.",
    )
    operation = serializers.CharField(help_text="The API operation, e.g. referrals:detail.")
    request_id = serializers.CharField(help_text="X-Request-ID of that response.")
    created = serializers.DateTimeField(help_text="When the response was sent.")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "enum": ["<5"], "description": "A count from 1 to 4."},
        ]
    }
)
class SuppressedCountField(serializers.Field):
    """A count, or "<5" when it is small enough to point at a person."""

    def to_representation(self, value):
        return value


class StatsQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (UTC), inclusive.")
    end = serializers.DateField(required=False, help_text="Last day (UTC), inclusive.")

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now().date()
        try:
            start = attrs.get("start") or end - timedelta(days=89)
        except OverflowError:  # an end in the first days of year 1 (Schemathesis: a 500)
            raise serializers.ValidationError({"end": ["Too early."]}) from None
        if start > end:
            raise serializers.ValidationError({"start": ["Must not be after end."]})
        if (end - start).days > 3660:
            raise serializers.ValidationError({"start": ["The period is at most ten years."]})
        return {"start": start, "end": end}


class StatsOrganisationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    sent = SuppressedCountField()
    received = SuppressedCountField()


class ReferralStatsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    total = SuppressedCountField(help_text="Referrals created in the period.")
    by_taxonomy = serializers.DictField(
        child=SuppressedCountField(),
        help_text="By need (taxonomy code); one referral may count under several.",
    )
    by_urgency = serializers.DictField(child=SuppressedCountField())
    by_outcome = serializers.DictField(child=SuppressedCountField(), help_text="Completed ones.")
    by_decline_reason = serializers.DictField(child=SuppressedCountField())
    responded = SuppressedCountField(help_text="Referrals accepted or declined so far.")
    median_hours_to_first_response = serializers.FloatField(
        allow_null=True,
        help_text="Median time from sending to acceptance or decline; null under 5 responses.",
    )
    by_organisation = StatsOrganisationSerializer(
        many=True, help_text="Only organisations that opted in to being named."
    )
