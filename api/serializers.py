"""Serializer plumbing every app shares."""

import functools

from django.http import QueryDict
from rest_framework import serializers

# The code of a serializer error that a business rule raised: the input matches the schema, a rule
# refuses it (an unknown taxonomy code, a time zone no database knows, fields that contradict
# each other). When every error of a request is one, it is a 422, not a 400 (api.errors).
RULE = "business_rule"


def validated(serializer_class, data, **kwargs) -> dict:
    """A request body as `serializer_class` validates it; every field error at once if not."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def rule_error(detail) -> serializers.ValidationError:
    """A serializer's refusal by a business rule (see RULE): 422 unless the schema is broken too."""
    return serializers.ValidationError(detail, code=RULE)


def only_rules(codes) -> bool:
    """Whether every leaf of `ValidationError.get_codes()` is RULE."""
    if isinstance(codes, dict):
        return bool(codes) and all(only_rules(value) for value in codes.values())
    if isinstance(codes, list):
        leaves = [code for code in codes if code not in ({}, [])]
        return bool(leaves) and all(only_rules(code) for code in leaves)
    return codes == RULE


@functools.cache
def _json_type(field_class) -> type | None:
    """The JSON type a field class takes, by the DRF base class it extends: looked up once per
    class, because every field of every JSON body asks."""
    return next((base for base in _JSON_TYPES if issubclass(field_class, base)), None)


_JSON_TYPES = (
    serializers.BooleanField,
    serializers.CharField,
    serializers.IntegerField,
    serializers.FloatField,
    serializers.ListField,
)


def wrong_json_type(field, value) -> str | None:
    """DRF coerces JSON values (0 to "0", 1 to true, "4" to 4); a partner system that sends the
    wrong type has a bug it should hear about, so JSON bodies must carry the documented type."""
    if value is None:
        return None
    kind = _json_type(type(field))
    if kind is serializers.BooleanField and not isinstance(value, bool):
        return "Must be true or false."
    if kind is serializers.CharField:
        if not isinstance(value, str):
            return "Must be a string."
        if "\x00" in value:
            return "Must not contain a NUL character."  # PostgreSQL text cannot hold one
    if kind is serializers.IntegerField and (
        isinstance(value, bool)
        # JSON Schema counts 4.0 as an integer: so does the API.
        or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))
    ):
        return "Must be an integer."
    if kind is serializers.FloatField and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return "Must be a number."
    if kind is serializers.ListField and isinstance(value, list):
        return next(filter(None, (wrong_json_type(field.child, item) for item in value)), None)
    return None


def too_long(field, value) -> str | None:
    """DRF measures a string after trimming it, the document's `maxLength` the string as sent:
    a name padded with spaces past the limit must be refused, as the document says."""
    if not isinstance(value, str) or _json_type(type(field)) is not serializers.CharField:
        return None
    limit = field.max_length
    return (
        f"Ensure this field has no more than {limit} characters."
        if limit and len(value) > limit
        else None
    )


class StrictFieldsMixin:
    """Reject fields the serializer does not declare (or declares read-only), so a typo or an
    attempt to set `verified` is a 400 naming the field instead of being silently dropped; in
    JSON bodies, values of another type than the field's (query strings are all strings); in
    query strings, empty values; and, in a PATCH, nested objects missing a required field."""

    def to_internal_value(self, data):
        fields = self.fields
        if (
            isinstance(data, dict)
            and self.root is not self
            and getattr(self.root, "partial", False)
        ):
            # DRF lets a PATCH's partial flag reach nested serializers, so a nested object would
            # lose its required fields; but nested objects are replaced whole (a location with
            # its opening hours), and a half one reached the database as a 500.
            missing = [
                name
                for name, field in fields.items()
                if field.required and not field.read_only and name not in data
            ]
            if missing:
                raise serializers.ValidationError(
                    {name: ["This field is required."] for name in missing}
                )
        if isinstance(data, dict):
            writable = {name for name, field in fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted here."] for name in unknown}
                )
            if isinstance(data, QueryDict):
                # DRF reads `?updated_before=` like an empty HTML form field: as if absent. A
                # partner's filter must not vanish silently (Schemathesis: accepted "" for a
                # date-time), so an empty value is refused unless the field allows blanks.
                blank = [
                    name
                    for name, value in data.items()
                    if value == "" and not getattr(fields[name], "allow_blank", False)
                ]
                if blank:
                    raise serializers.ValidationError(
                        {name: ["Must not be empty."] for name in blank}
                    )
                wrong = {
                    name: [message]
                    for name, value in data.items()
                    if (message := too_long(fields[name], value))
                }
                if wrong:
                    raise serializers.ValidationError(wrong)
            else:
                wrong = {
                    name: [message]
                    for name, value in data.items()
                    if (
                        message := wrong_json_type(fields[name], value)
                        or too_long(fields[name], value)
                    )
                }
                if wrong:
                    raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


class FieldsBoundOnce:
    """For serializers on hot paths (search and list filters, a new referral, the referral's
    detail): DRF copies every declared field, nested serializers' too, for every instance, a
    share of those requests' time that showed in profiles. These bind one set of fields per class and reuse it. That is sound because
    validation and rendering keep no state on the fields and look `validate_*` up on `self`; what fields do
    read from their root, `partial` and `context`, is checked: a partial or contextual use gets
    its own copy.

    The shared set is bound to a prototype instance made for that purpose, never to a serializer
    that validates a request: fields keep their parent, and a set bound to the first request's
    serializer kept its `initial_data` and `validated_data` (a person's details) alive for as
    long as the worker ran, long after the referral was crypto-shredded."""

    @property
    def fields(self):
        root = self.root
        if root.partial or root._context:
            own = self.__dict__.get("_own_fields")
            if own is None:
                own = self.__dict__["_own_fields"] = serializers.Serializer.fields.func(self)
            return own
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = cls._shared_fields = serializers.Serializer.fields.func(cls())
        return shared
