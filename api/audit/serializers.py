from rest_framework import serializers


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
