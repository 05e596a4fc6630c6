"""Cursor pagination, the default of every list: newest first, stable while rows are added,
`limit` bounded, and the query count independent of the page size."""

import base64
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.pagination import CURSOR_PATTERN
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


def test_limit_is_honoured_within_its_documented_bounds(http, auth):
    make_many(105)
    assert len(http.get(URL + "?limit=7", **auth).json()["results"]) == 7
    assert len(http.get(URL + "?limit=100", **auth).json()["results"]) == 100
    for bad in ("nonsense", "0", "-3", "null", "101", "1000"):
        body = assert_problem(http.get(URL + f"?limit={bad}", **auth), 400)
        assert body["errors"] == [{"pointer": "/limit", "detail": "Must be from 1 to 100."}]


def test_the_schema_states_the_bounds_the_server_enforces():
    document = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
    lists = 0
    for item in document["paths"].values():
        for operation in item.values():
            parameters = {p["name"]: p for p in operation.get("parameters", [])}
            if "cursor" in parameters:
                lists += 1
                assert parameters["limit"]["schema"]["minimum"] == 1
                assert parameters["limit"]["schema"]["maximum"] == 100
                assert parameters["cursor"]["schema"]["pattern"] == CURSOR_PATTERN
    assert lists > 5


def test_every_list_has_the_one_envelope():
    """Issue 12: no operation answers a bare array, and every list's page is the same shape
    (the HSDS routes keep HSDS's own page, as that standard says)."""
    document = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
    components = document["components"]["schemas"]
    pages = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for code, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    shape = media.get("schema", {})
                    assert shape.get("type") != "array", (method, path, code)
                    name = shape.get("$ref", "").rsplit("/", 1)[-1]
                    if "results" in components.get(name, {}).get("properties", {}):
                        pages.add(name)
    hsds = {name for name in pages if name.startswith("Hsds")}
    assert {name for name in pages - hsds if not re.fullmatch(r"Paginated\w+List", name)} == set()
    shapes = {
        name: {**components[name], "properties": {**components[name]["properties"], "results": 0}}
        for name in pages - hsds
    }
    assert len({repr(shape) for shape in shapes.values()}) == 1, sorted(shapes)
    for name in (
        "PaginatedServiceSearchResultList",
        "PaginatedReferralTimelineEntryList",
        "PaginatedReferralNoteList",
        "PaginatedTaxonomyTermList",
        "PaginatedSelfDisclosureList",
    ):
        assert name in pages, name


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
    body = assert_problem(http.get(URL + "?cursor=not-a-cursor", **auth), 422)
    assert body["errors"] == [{"pointer": "/cursor", "detail": "Invalid cursor."}]


@pytest.mark.parametrize(
    "cursor",
    [
        # The issue's example: DRF's own format, a position that is not a timestamp; issue 11:
        # a 500 in the database.
        base64.b64encode(b"p=' OR 1=1--").decode(),
        base64.b64encode(b"p=2024-01-01").decode(),  # no zone: a warning quoting it
        base64.b64encode(b"p=" + b"9" * 30).decode(),
        base64.b64encode(b"o=1&r=1&p=x").decode(),
        base64.b64encode(b"o=5&r=1").decode(),
        base64.b64encode(b"p=\xff").decode(),
        "%%%",  # DRF skips what is not base64, so this read as the first page
        "cD0yMDI0%20",
        "",
        "=",
        "é",
        "A" * 400,
    ],
)
def test_tampered_and_forged_cursors_are_problems(http, auth, cursor):
    make_many(30)
    # Not base64url (the schema's pattern): 400; base64url this list did not give out: 422.
    status = 422 if re.fullmatch(CURSOR_PATTERN, cursor) else 400
    body = assert_problem(http.get(URL, {"cursor": cursor}, **auth), status)
    assert body["errors"] == [{"pointer": "/cursor", "detail": "Invalid cursor."}]


def test_query_count_does_not_grow_with_page_size(http, auth):
    make_many(60)
    counts = []
    for limit in (5, 50):
        with CaptureQueriesContext(connection) as queries:
            assert http.get(f"{URL}?limit={limit}", **auth).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def cursor_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["cursor"][0]


def test_an_altered_cursor_is_a_problem(http, auth):
    make_many(30)
    genuine = cursor_of(http.get(URL + "?limit=5", **auth).json()["next"])
    raw = bytearray(base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4)))
    for index in (0, len(raw) // 2, len(raw) - 1):
        altered = raw.copy()
        altered[index] ^= 1
        forged = base64.urlsafe_b64encode(bytes(altered)).decode().rstrip("=")
        body = assert_problem(http.get(URL, {"cursor": forged, "limit": 5}, **auth), 422)
        assert body["errors"][0]["pointer"] == "/cursor"
    # The page size is not part of what a cursor is bound to.
    assert http.get(URL, {"cursor": genuine, "limit": 7}, **auth).status_code == 200


def test_a_cursor_is_good_only_for_its_query_and_organisation(
    http, auth, make_organisation, make_application
):
    for index in range(30):
        make_organisation(f"Clinic {index:02}", kind="clinic")
        make_organisation(f"Shelter {index:02}", kind="shelter")
    url = "/api/v1/organisations"
    clinics = http.get(url, {"kind": "clinic", "limit": 5}, **auth).json()["next"]
    assert http.get(clinics, **auth).status_code == 200
    # Replayed on another filter, or on another list.
    replayed = clinics.replace("kind=clinic", "kind=shelter")
    assert assert_problem(http.get(replayed, **auth), 422)["errors"][0]["pointer"] == "/cursor"
    other_list = http.get(URL, {"cursor": cursor_of(clinics)}, **auth)
    assert assert_problem(other_list, 422)["errors"][0]["pointer"] == "/cursor"
    # The same list and filters, from another organisation's client.
    stranger = make_application(make_organisation("Stranger"))
    other_auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(stranger)}"}
    assert_problem(http.get(clinics, **other_auth), 422)
