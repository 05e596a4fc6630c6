from rest_framework import serializers


class AuditHeadSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="Sequence number of the latest entry.")
    hash = serializers.CharField(help_text="SHA-256 (hex) of the latest entry.")
