"""Serializer plumbing every app shares."""

from rest_framework import serializers


class StrictFieldsMixin:
    """Reject fields the serializer does not declare (or declares read-only), so a typo or an
    attempt to set `verified` is a 400 naming the field instead of being silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted here."] for name in unknown}
                )
        return super().to_internal_value(data)
