"""JSON bodies must carry the documented types: DRF would coerce 0 to "0" and 1 to true, which
Schemathesis' negative-data check reported as schema-violating requests accepted. Query strings
are strings by nature and are still parsed."""

import pytest
from django.http import QueryDict
from rest_framework import serializers

from api.serializers import StrictFieldsMixin
from tests.api.helpers import assert_problem


class Sample(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(required=False)
    walk_in = serializers.BooleanField(required=False)
    available = serializers.IntegerField(required=False)
    latitude = serializers.FloatField(required=False)
    languages = serializers.ListField(child=serializers.CharField(), required=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 0),
        ("name", ["x"]),
        ("walk_in", 1),
        ("walk_in", "true"),
        ("available", "4"),
        ("available", True),
        ("available", 4.5),
        ("latitude", "38.7"),
        ("languages", ["pt", 3]),
    ],
)
def test_a_json_value_of_another_type_is_refused(field, value):
    serializer = Sample(data={field: value})
    assert not serializer.is_valid()
    assert list(serializer.errors) == [field]


def test_json_values_of_the_right_type_pass():
    data = {"name": "x", "walk_in": False, "available": 4, "latitude": 38, "languages": ["pt"]}
    serializer = Sample(data=data)
    assert serializer.is_valid(), serializer.errors


def test_query_strings_are_still_parsed():
    serializer = Sample(data=QueryDict("walk_in=true&available=4&latitude=38.7"))
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"walk_in": True, "available": 4, "latitude": 38.7}


def test_through_the_api_a_number_for_a_string_is_a_400_naming_it(client):
    response = client.patch("/api/v1/organisations/me", {"region": 0}, format="json")
    body = assert_problem(response, 400)
    assert [error["pointer"] for error in body["errors"]] == ["/region"]


def test_a_patch_cannot_store_half_a_nested_object(client, organisation):
    """Schemathesis found PATCH /services/{id} with a schedule missing `weekday` answering 500:
    DRF's partial flag reached the nested serializer and the row failed NOT NULL."""
    from partners.services import service_create

    service = service_create(organisation=organisation, name="Testing", taxonomy=["sti-testing"])
    location = {"name": "Main", "time_zone": "UTC", "schedules": [{"opens_at": "09:00"}]}
    response = client.patch(
        f"/api/v1/services/{service.pk}", {"locations": [location]}, format="json"
    )
    body = assert_problem(response, 400)
    pointers = [error["pointer"] for error in body["errors"]]
    assert pointers == ["/locations/0/schedules/0/weekday", "/locations/0/schedules/0/closes_at"]
    assert service.locations.count() == 0


def test_an_empty_query_value_is_refused_not_ignored():
    serializer = Sample(data=QueryDict("available=&walk_in=true"))
    assert not serializer.is_valid()
    assert list(serializer.errors) == ["available"]


def test_through_the_api_an_empty_date_filter_is_a_400_naming_it(client):
    body = assert_problem(client.get("/api/v1/referrals?updated_before="), 400)
    assert [error["pointer"] for error in body["errors"]] == ["/updated_before"]
