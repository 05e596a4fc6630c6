"""Service search: each filter alone and combined, distance ordering, the POST twin, paging,
query counts and bad input."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partners.models import Capacity, Organisation
from partners.selectors import SearchFilters, service_search_sql, services_search
from tests.partners.conftest import LISBON, offset

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def at(point, **extra) -> dict:
    return {
        "name": "Main",
        "region": "Lisboa",
        "country": "PT",
        "latitude": point[0],
        "longitude": point[1],
        "time_zone": "Europe/Lisbon",
        **extra,
    }


@pytest.fixture
def search(client):
    def run(**params):
        return client.get("/api/v1/services/", params)

    return run


def test_taxonomy_filter_one_or_more_codes(search, make_service):
    make_service(name="Testing", taxonomy=["sti-testing"])
    make_service(name="Shelter", taxonomy=["emergency-shelter"])
    make_service(name="Food", taxonomy=["food"])
    assert names(search(taxonomy="sti-testing")) == ["Testing"]
    assert names(search(taxonomy="sti-testing,food")) == ["Food", "Testing"]


def test_taxonomy_repeated_parameters(client, make_service):
    make_service(name="Testing", taxonomy=["sti-testing"])
    make_service(name="Food", taxonomy=["food"])
    response = client.get("/api/v1/services/?taxonomy=sti-testing&taxonomy=food")
    assert names(response) == ["Food", "Testing"]


def test_language_filter_matches_regional_variants(search, make_service):
    make_service(name="Brazilian", languages=["pt-BR"])
    make_service(name="Thai", languages=["th"])
    make_service(name="English", languages=["en"])
    assert names(search(language="pt")) == ["Brazilian"]
    assert names(search(language="th")) == ["Thai"]
    assert names(search(language="ru")) == []


def test_near_sorts_by_distance_and_reports_it(search, make_service):
    make_service(name="Far", locations=[at(offset(km_north=8))])
    make_service(name="Near", locations=[at(offset(km_north=1))])
    make_service(name="Middle", locations=[at(offset(km_east=4))])
    make_service(name="Out of range", locations=[at(offset(km_north=30))])
    make_service(name="Nowhere", locations=[])
    response = search(near=f"{LISBON[0]},{LISBON[1]}", radius_km=10)
    assert names(response) == ["Near", "Middle", "Far"]
    distances = [row["distance_km"] for row in response.json()["results"]]
    assert distances == sorted(distances)
    assert distances[0] == pytest.approx(1, abs=0.05)
    assert distances[2] == pytest.approx(8, abs=0.05)


def test_distance_is_that_of_the_nearest_location(search, make_service):
    make_service(name="Two sites", locations=[at(offset(km_north=9)), at(offset(km_north=2))])
    make_service(name="One site", locations=[at(offset(km_north=5))])
    response = search(near=f"{LISBON[0]},{LISBON[1]}", radius_km=10)
    assert names(response) == ["Two sites", "One site"]
    assert response.json()["results"][0]["distance_km"] == pytest.approx(2, abs=0.05)


def test_near_across_the_antimeridian(search, make_service):
    make_service(name="Fiji east", locations=[at((-17.0, 179.95), time_zone="Pacific/Fiji")])
    make_service(name="Fiji west", locations=[at((-17.0, -179.95), time_zone="Pacific/Fiji")])
    assert names(search(near="-17.0,179.99", radius_km=20)) == ["Fiji east", "Fiji west"]


def test_accepting_filter(search, make_service):
    make_service(name="Open", capacity={"accepting_referrals": "open"})
    make_service(name="Waitlist", capacity={"accepting_referrals": "waitlist"})
    make_service(name="Closed", capacity={"accepting_referrals": "closed"})
    assert names(search(accepting="open")) == ["Open"]
    assert names(search(accepting="open,waitlist")) == ["Open", "Waitlist"]


def test_has_capacity_filter(search, make_service):
    make_service(name="Room", capacity={"available": 3, "maximum": 5})
    make_service(name="Full", capacity={"available": 0, "maximum": 5})
    assert names(search(has_capacity="true")) == ["Room"]
    assert names(search(has_capacity="false")) == ["Full"]


def test_fresh_filter(search, make_service):
    now = timezone.now()
    make_service(name="Current", capacity={"valid_until": now + timedelta(hours=2)})
    make_service(name="Stale", capacity={"valid_until": now - timedelta(hours=2)})
    make_service(name="Open-ended", capacity={"valid_until": None})
    assert names(search(fresh="true")) == ["Current", "Open-ended"]
    assert names(search(fresh="false")) == ["Stale"]
    stale = next(r for r in search().json()["results"] if r["name"] == "Stale")
    assert stale["capacity"]["stale"] is True


@pytest.mark.parametrize(
    "safeguard",
    [
        "no_id_required",
        "no_immigration_status_questions",
        "anonymous_access",
        "walk_in",
        "sex_worker_friendly",
        "trans_friendly",
    ],
)
def test_each_safeguard_filter(search, make_service, safeguard):
    make_service(name="With", **{safeguard: True})
    make_service(name="Without")
    assert names(search(**{safeguard: "true"})) == ["With"]
    assert names(search(**{safeguard: "false"})) == ["Without"]


def test_cost_filter(search, make_service):
    make_service(name="Free", cost="free")
    make_service(name="Sliding", cost="sliding_scale")
    make_service(name="Fee", cost="fee")
    assert names(search(cost="free")) == ["Free"]
    assert names(search(cost="free,sliding_scale")) == ["Free", "Sliding"]


def test_organisation_kind_filter(search, make_service, make_organisation):
    make_service(make_organisation(kind="shelter"), name="Beds")
    make_service(make_organisation(kind="legal_aid"), name="Advice")
    assert names(search(organisation_kind="shelter")) == ["Beds"]


def test_full_text_filter(search, make_service):
    make_service(name="Rapid testing", description="HIV and syphilis tests, results same day")
    make_service(name="Counselling", description="Talk to a peer")
    assert names(search(q="syphilis")) == ["Rapid testing"]
    assert names(search(q="peer")) == ["Counselling"]
    assert names(search(q="rapid -counselling")) == ["Rapid testing"]


def open_at(moment: datetime, **filters) -> list[str]:
    """Search names with open_now evaluated at a fixed moment (the view passes the clock)."""
    results, _ = services_search(
        caller=Organisation.objects.first(),
        filters=SearchFilters(**filters),
        now=moment,
        page_size=50,
    )
    return [row["name"] for row in results]


# Wednesday 2026-12-02 03:30 UTC: 10:30 in Bangkok (UTC+7), 03:30 in Lisbon (UTC+0).
WEDNESDAY = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


def test_open_now_in_each_locations_time_zone(make_service):
    hours = {"weekday": 3, "opens_at": time(9), "closes_at": time(17)}
    make_service(
        name="Bangkok", locations=[at((13.75, 100.5), time_zone="Asia/Bangkok", schedules=[hours])]
    )
    make_service(name="Lisbon", locations=[at(LISBON, schedules=[hours])])
    make_service(name="No hours")
    assert open_at(WEDNESDAY, open_now=True) == ["Bangkok"]
    assert open_at(WEDNESDAY, open_now=False) == ["Lisbon", "No hours"]
    # Six hours later it is 09:30 in Lisbon and 15:30 in Bangkok: both open.
    assert open_at(WEDNESDAY + timedelta(hours=6), open_now=True) == ["Bangkok", "Lisbon"]


def test_open_now_across_midnight(make_service):
    overnight = {"weekday": 2, "opens_at": time(22), "closes_at": time(6)}  # Tuesday night
    make_service(name="Night", locations=[at(LISBON, schedules=[overnight])])
    assert open_at(WEDNESDAY, open_now=True) == ["Night"]  # 03:30 Wednesday, Lisbon
    assert open_at(WEDNESDAY + timedelta(hours=3), open_now=True) == []  # 06:30
    assert open_at(WEDNESDAY - timedelta(hours=5), open_now=True) == ["Night"]  # Tue 22:30
    assert open_at(WEDNESDAY - timedelta(hours=6), open_now=True) == []  # Tue 21:30


def test_open_now_weekday_is_local(make_service):
    # 03:30 UTC Wednesday is still Tuesday 17:30 in Honolulu (UTC-10).
    tuesday = {"weekday": 2, "opens_at": time(17), "closes_at": time(18)}
    make_service(
        name="Honolulu",
        locations=[at((21.3, -157.85), time_zone="Pacific/Honolulu", schedules=[tuesday])],
    )
    assert open_at(WEDNESDAY, open_now=True) == ["Honolulu"]


def test_open_now_through_the_api(search, make_service):
    now = timezone.now().astimezone(ZoneInfo("Asia/Bangkok"))
    all_day = {"weekday": now.isoweekday(), "opens_at": time(0), "closes_at": time(23, 59, 59)}
    other_day = {**all_day, "weekday": now.isoweekday() % 7 + 1}
    make_service(
        name="Today",
        locations=[at((13.75, 100.5), time_zone="Asia/Bangkok", schedules=[all_day])],
    )
    make_service(
        name="Other day",
        locations=[at((13.75, 100.5), time_zone="Asia/Bangkok", schedules=[other_day])],
    )
    assert names(search(open_now="true")) == ["Today"]


def test_filters_combine(search, make_service, make_organisation):
    clinic = make_organisation(kind="clinic")
    good = dict(
        taxonomy=["abortion-reproductive-care"],
        languages=["th", "pt"],
        locations=[at(offset(km_north=2))],
        capacity={"accepting_referrals": "open", "available": 2},
        no_immigration_status_questions=True,
    )
    make_service(clinic, name="Match", **good)
    make_service(clinic, name="Wrong language", **{**good, "languages": ["pt"]})
    make_service(clinic, name="Too far", **{**good, "locations": [at(offset(km_north=40))]})
    make_service(
        clinic,
        name="Closed",
        **{**good, "capacity": {"accepting_referrals": "closed", "available": 2}},
    )
    make_service(clinic, name="Asks status", **{**good, "no_immigration_status_questions": False})
    make_service(clinic, name="Other type", **{**good, "taxonomy": ["food"]})
    response = search(
        taxonomy="abortion-reproductive-care",
        language="th",
        near=f"{LISBON[0]},{LISBON[1]}",
        radius_km=10,
        accepting="open,limited",
        no_immigration_status_questions="true",
        has_capacity="true",
        cost="free",
        organisation_kind="clinic",
    )
    assert names(response) == ["Match"]


def test_post_search_gives_the_same_answer(client, make_service):
    make_service(name="Near", languages=["th"], locations=[at(offset(km_north=1))])
    make_service(name="Far", languages=["th"], locations=[at(offset(km_north=5))])
    make_service(name="Other", languages=["en"], locations=[at(offset(km_north=1))])
    near = f"{LISBON[0]},{LISBON[1]}"
    get = client.get("/api/v1/services/", {"language": "th", "near": near, "radius_km": 10})
    post = client.post(
        "/api/v1/services/search",
        {"language": "th", "near": near, "radius_km": 10, "taxonomy": ["sti-testing"]},
        format="json",
    )
    assert post.status_code == 200
    assert post.json() == get.json()
    assert names(post) == ["Near", "Far"]


def test_inactive_services_and_suspended_organisations_are_not_found(search, make_service):
    make_service(name="Active")
    make_service(name="Inactive", status="inactive")
    hidden = make_service(name="Suspended org")
    hidden.organisation.suspended = True
    hidden.organisation.save()
    assert names(search()) == ["Active"]


@pytest.mark.parametrize("near", [False, True])
def test_cursor_pages_through_everything_once(client, make_service, near):
    for index in range(7):
        make_service(name=f"Service {index}", locations=[at(offset(km_north=index + 0.5))])
    params = {"limit": 3}
    if near:
        params.update(near=f"{LISBON[0]},{LISBON[1]}", radius_km=20)
    seen, cursor = [], None
    for _ in range(5):
        response = client.post(
            "/api/v1/services/search", {**params, **({"cursor": cursor} if cursor else {})}
        )
        seen += names(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Service {index}" for index in range(7)]


def test_query_count_is_constant_in_page_size(client, make_service, django_assert_num_queries):
    for index in range(30):
        make_service(
            name=f"Service {index:02}",
            locations=[at(offset(km_north=index / 10)), at(offset(km_east=index / 10))],
            languages=["th"],
        )
    params = {
        "taxonomy": "sti-testing",
        "language": "th",
        "near": f"{LISBON[0]},{LISBON[1]}",
        "radius_km": 10,
        "accepting": "open",
        "no_id_required": "false",
    }
    client.get("/api/v1/services/", params)  # warm the taxonomy code cache
    counts = []
    for limit in (1, 10, 30):
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/v1/services/", {**params, "limit": limit})
        assert len(response.json()["results"]) == limit
        counts.append(len(captured))
    assert counts[0] == counts[1] == counts[2]
    # The token look-up (which counts the request against the rate limit) and the search.
    with django_assert_num_queries(2):
        client.get("/api/v1/services/", {**params, "limit": 30})


BAD_INPUT = [
    ({"near": "38.7,-9.1"}, "/radius_km"),
    ({"radius_km": 5}, "/near"),
    ({"near": "91,0", "radius_km": 5}, "/near"),
    ({"near": "0,181", "radius_km": 5}, "/near"),
    ({"near": "north", "radius_km": 5}, "/near"),
    ({"near": "38.7,-9.1", "radius_km": 5000}, "/radius_km"),
    ({"taxonomy": "sti-testing,astrology"}, "/taxonomy"),
    ({"language": "english please"}, "/language"),
    ({"accepting": "maybe"}, "/accepting/0"),
    ({"cost": "cheap"}, "/cost/0"),
    ({"walk_in": "perhaps"}, "/walk_in"),
    ({"limit": 1000}, "/limit"),
    ({"cursor": "not-a-cursor"}, "/cursor"),
    ({"colour": "blue"}, "/colour"),
]


@pytest.mark.parametrize(("params", "pointer"), BAD_INPUT)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_input_names_the_field(client, make_service, params, pointer, method):
    make_service()
    if method == "GET":
        response = client.get("/api/v1/services/", params)
    else:
        response = client.post("/api/v1/services/search", params, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert pointer in [error["pointer"] for error in response.json()["errors"]]


def test_search_needs_directory_read(api_client_for, organisation):
    client = api_client_for(organisation, scopes=["capacity:write"])
    response = client.get("/api/v1/services/")
    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["directory:read"]


def test_capacity_shown_in_results(search, make_service):
    service = make_service(name="Beds", capacity={"available": 3, "maximum": 10, "unit": "beds"})
    Capacity.objects.filter(service=service).update(estimated_wait_days=2)
    capacity = search().json()["results"][0]["capacity"]
    assert capacity["available"] == 3
    assert capacity["maximum"] == 10
    assert capacity["unit"] == "beds"
    assert capacity["estimated_wait_days"] == 2


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (SearchFilters(q="syphilis"), "service_fts_gin"),
        (SearchFilters(near=LISBON, radius_km=5), "searchentry_near"),
        (SearchFilters(taxonomy=["food"]), "searchentry_taxonomy_gin"),
        (SearchFilters(language="pt"), "searchentry_language_gin"),
    ],
)
def test_search_sql_can_use_its_indexes(make_service, filters, index):
    """The full-text expression must match the index's character for character, the bounding
    box must be sargable, and the array filters must fit their GIN indexes. On a handful of
    rows a walk of the name-ordered listing index wins; without it, and with sequential scans
    priced out, the plan shows which index answers each filter."""
    make_service()
    sql, params = service_search_sql(
        caller_id=Organisation.objects.get().pk, filters=filters, now=timezone.now(), limit=26
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("DROP INDEX searchentry_listing")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


@pytest.mark.parametrize(
    "cursor",
    [
        "WzEsICJub3QtYS11dWlkIl0",  # [1, "not-a-uuid"]
        "WyJhIiwgIm5vdC1hLXV1aWQiXQ",  # ["a", "not-a-uuid"]
        "W3RydWUsICIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiXQ",  # [true, uuid]
        "eyJhIjogMX0",  # {"a": 1}
    ],
)
def test_a_forged_cursor_is_a_400_not_a_500(client, make_service, cursor):
    make_service()
    for near in ({}, {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 5}):
        response = client.post("/api/v1/services/search", {"cursor": cursor, **near})
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["pointer"] == "/cursor"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_numbers_are_refused(search, value):
    assert search(near=f"{value},0", radius_km=5).status_code == 400
    assert search(near="0,0", radius_km=value).status_code == 400
