"""FieldsBoundOnce shares one bound set of fields per serializer class; these prove a shared
set behaves exactly like DRF's per-instance copies."""

from rest_framework import serializers

from api.serializers import FieldsBoundOnce, StrictFieldsMixin


class Inner(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    code = serializers.CharField(max_length=5)

    def validate_code(self, value):
        if value == "bad":
            raise serializers.ValidationError("No bad codes.")
        return value


class Outer(StrictFieldsMixin, FieldsBoundOnce, serializers.Serializer):
    name = serializers.CharField()
    inner = Inner()


def test_the_fields_are_shared_between_instances():
    assert Outer(data={}).fields is Outer(data={}).fields
    assert Outer(data={}).fields["inner"].fields is Inner(data={}).fields


def test_validations_in_turn_do_not_leak_into_each_other():
    bad = Outer(data={"name": "a", "inner": {"code": "bad"}})
    good = Outer(data={"name": "b", "inner": {"code": "ok"}})
    assert not bad.is_valid()
    assert good.is_valid(), good.errors
    assert bad.errors == {"inner": {"code": ["No bad codes."]}}
    assert good.validated_data == {"name": "b", "inner": {"code": "ok"}}
    unknown = Outer(data={"name": "c", "inner": {"code": "ok", "extra": 1}})
    assert not unknown.is_valid()
    assert unknown.errors == {"inner": {"extra": ["This field is not accepted here."]}}


def test_a_partial_serializer_gets_its_own_fields_and_skips_missing_ones():
    shared = Outer(data={}).fields
    partial = Outer(data={"name": "only"}, partial=True)
    assert partial.fields is not shared
    assert partial.is_valid(), partial.errors
    assert partial.validated_data == {"name": "only"}
    assert not Outer(data={"name": "only"}).is_valid()


def test_a_serializer_with_context_gets_its_own_fields():
    with_context = Outer(data={}, context={"request": object()})
    assert with_context.fields is not Outer(data={}).fields
    assert with_context.fields["inner"].context == with_context.context
