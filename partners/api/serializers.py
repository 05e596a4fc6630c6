from rest_framework import serializers

from partners.models import Organisation


class OrganisationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name", "kind", "community_led", "region", "verified"]


class MeSerializer(serializers.Serializer):
    organisation = OrganisationSummarySerializer()
    client_id = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    token_expires = serializers.DateTimeField()
