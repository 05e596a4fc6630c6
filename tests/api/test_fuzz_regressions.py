"""Inputs Schemathesis found answering 500 against the running stack (`make verify`), kept here
so they stay fixed."""

import pytest

from tests.api.helpers import assert_problem


@pytest.mark.parametrize(
    "value",
    ["6964-10-29T01:03:34.642766+21:33", "2026-11-28T10:00:00", "2026-11-28T10:00:00-15:59"],
)
def test_hsds_modified_after_with_any_offset_is_answered(client, value):
    response = client.get("/api/v1/hsds/organizations", {"modified_after": value})
    assert response.status_code == 200, response.content


def test_hsds_modified_after_impossible_date_is_a_400(client):
    response = client.get("/api/v1/hsds/organizations", {"modified_after": "2026-13-45T00:00:00Z"})
    assert assert_problem(response, 400)["errors"][0]["pointer"] == "/modified_after"
