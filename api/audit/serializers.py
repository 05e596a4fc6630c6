from datetime import date

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


MONTH_HELP = "A calendar month (UTC) that has ended, as YYYY-MM; by default the last one."
RETIRED_PERIOD = (
    "Statistics are published per calendar month only, so that two answers can never be "
    "subtracted from each other: ask with month=YYYY-MM."
)


class StatsQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    month = serializers.RegexField(
        r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        required=False,
        help_text=MONTH_HELP,
        error_messages={"invalid": "Give the month as YYYY-MM, for example 2026-10."},
    )

    def to_internal_value(self, data):
        retired = sorted({"start", "end"} & set(data))
        if retired:
            raise serializers.ValidationError({name: [RETIRED_PERIOD] for name in retired})
        return super().to_internal_value(data)

    def validate_month(self, value: str) -> date:
        year, month = (int(part) for part in value.split("-"))
        if year < 1:
            raise serializers.ValidationError("Give the month as YYYY-MM, for example 2026-10.")
        return date(year, month, 1)


class StatsOrganisationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    sent = SuppressedCountField()
    received = SuppressedCountField()


class ReferralStatsSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="The calendar month (UTC), YYYY-MM.")
    computed = serializers.DateTimeField(
        help_text="When the month's figures were computed; they never change afterwards."
    )
    total = SuppressedCountField(help_text="Referrals created in the month.")
    by_taxonomy = serializers.DictField(
        child=SuppressedCountField(),
        help_text="By need (taxonomy code); one referral may count under several.",
    )
    by_urgency = serializers.DictField(child=SuppressedCountField())
    by_outcome = serializers.DictField(child=SuppressedCountField(), help_text="Completed ones.")
    by_decline_reason = serializers.DictField(child=SuppressedCountField())
    responded = SuppressedCountField(
        help_text="Referrals accepted or declined by the time the figures were computed."
    )
    median_hours_to_first_response = serializers.FloatField(
        allow_null=True,
        help_text="Median time from sending to acceptance or decline; null under 5 responses.",
    )
    by_organisation = StatsOrganisationSerializer(
        many=True, help_text="Only organisations that opted in to being named (and still are)."
    )
