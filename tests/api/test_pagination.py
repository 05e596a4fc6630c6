"""Cursor pagination, the default of every list: newest first, stable while rows are added,
`limit` capped, and the query count independent of the page size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partners.models import Organisation
from tests.api.helpers import assert_problem
from tests.conftest import issue_token

pytestmark = pytest.mark.urls("tests.api.urls")
URL = "/api/v1/_organisations"


@pytest.fixture
def auth(make_organisation, make_application):
    application = make_application(make_organisation("Caller"))
    return {"HTTP_AUTHORIZATION": f"Bearer {issue_token(application)}"}


def make_many(count: int) -> list[str]:
    """Organisations in creation order, returned newest first (the order lists use)."""
    return [
        str(Organisation.objects.create(name=f"Org {i:03}", kind="clinic").id) for i in range(count)
    ][::-1]


def walk(http, auth, url):
    ids, pages = [], 0
    while url:
        response = http.get(url, **auth)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        ids += [item["id"] for item in body["results"]]
        url, pages = body["next"], pages + 1
    return ids, pages


def test_pages_are_newest_first_with_links(http, auth):
    expected = make_many(30)
    first = http.get(URL, **auth).json()
    assert len(first["results"]) == 25
    assert first["previous"] is None
    assert first["next"].startswith("http://testserver" + URL + "?cursor=")
    second = http.get(first["next"], **auth).json()
    assert second["next"] is None
    assert second["previous"]
    ids = [item["id"] for item in first["results"] + second["results"]]
    # The caller's own organisation is the oldest row.
    assert ids[:30] == expected
    back = http.get(second["previous"], **auth).json()
    assert back["results"] == first["results"]


def test_limit_is_honoured_and_capped(http, auth):
    make_many(105)
    assert len(http.get(URL + "?limit=7", **auth).json()["results"]) == 7
    assert len(http.get(URL + "?limit=1000", **auth).json()["results"]) == 100
    for bad in ("nonsense", "0", "-3", "null"):
        body = assert_problem(http.get(URL + f"?limit={bad}", **auth), 400)
        assert body["errors"] == [{"pointer": "/limit", "detail": "Must be a positive integer."}]


def test_rows_added_while_paging_neither_repeat_nor_vanish(http, auth):
    expected = make_many(12)
    first = http.get(URL + "?limit=5", **auth).json()
    Organisation.objects.create(name="Newcomer", kind="clinic")
    ids = [item["id"] for item in first["results"]]
    rest, _ = walk(http, auth, first["next"])
    ids += rest
    assert len(ids) == len(set(ids)) == 13
    assert ids[:12] == expected


def test_invalid_cursor_is_a_problem(http, auth):
    # A bad cursor is the caller's input, not a missing page (Schemathesis: 404 is undocumented).
    body = assert_problem(http.get(URL + "?cursor=not-a-cursor", **auth), 400)
    assert body["errors"] == [{"pointer": "/cursor", "detail": "Invalid cursor."}]


def test_query_count_does_not_grow_with_page_size(http, auth):
    make_many(60)
    counts = []
    for limit in (5, 50):
        with CaptureQueriesContext(connection) as queries:
            assert http.get(f"{URL}?limit={limit}", **auth).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
