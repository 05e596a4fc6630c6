"""Service search: each filter alone and combined, distance ordering, the POST twin, paging,
query counts and bad input."""

import base64
import json
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.timestamps import iso
from partners.models import SAFEGUARDS, Capacity, Location, Organisation, Schedule
from partners.selectors import SearchFilters, service_search_sql, services_search_json
from tests.partners.conftest import LISBON, cursor_of, location_at, offset

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def search(client):
    def run(**params):
        return client.get("/api/v1/services", params)

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
    response = client.get("/api/v1/services?taxonomy=sti-testing&taxonomy=food")
    assert names(response) == ["Food", "Testing"]


def test_language_filter_matches_regional_variants(search, make_service):
    make_service(name="Brazilian", languages=["pt-BR"])
    make_service(name="Thai", languages=["th"])
    make_service(name="English", languages=["en"])
    assert names(search(language="pt")) == ["Brazilian"]
    assert names(search(language="th")) == ["Thai"]
    assert names(search(language="ru")) == []


def test_near_sorts_by_distance_and_reports_it(search, make_service):
    make_service(name="Far", locations=[location_at(offset(km_north=8))])
    make_service(name="Near", locations=[location_at(offset(km_north=1))])
    make_service(name="Middle", locations=[location_at(offset(km_east=4))])
    make_service(name="Out of range", locations=[location_at(offset(km_north=30))])
    make_service(name="Nowhere", locations=[])
    response = search(near=f"{LISBON[0]},{LISBON[1]}", radius_km=10)
    assert names(response) == ["Near", "Middle", "Far"]
    distances = [row["distance_km"] for row in response.json()["results"]]
    assert distances == sorted(distances)
    assert distances[0] == pytest.approx(1, abs=0.05)
    assert distances[2] == pytest.approx(8, abs=0.05)


def test_distance_is_that_of_the_nearest_location(search, make_service):
    make_service(
        name="Two sites",
        locations=[location_at(offset(km_north=9)), location_at(offset(km_north=2))],
    )
    make_service(name="One site", locations=[location_at(offset(km_north=5))])
    response = search(near=f"{LISBON[0]},{LISBON[1]}", radius_km=10)
    assert names(response) == ["Two sites", "One site"]
    assert response.json()["results"][0]["distance_km"] == pytest.approx(2, abs=0.05)


def test_near_across_the_antimeridian(search, make_service):
    make_service(
        name="Fiji east", locations=[location_at((-17.0, 179.95), time_zone="Pacific/Fiji")]
    )
    make_service(
        name="Fiji west", locations=[location_at((-17.0, -179.95), time_zone="Pacific/Fiji")]
    )
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


@pytest.mark.parametrize("safeguard", SAFEGUARDS)
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
    results, _ = services_search_json(
        caller=Organisation.objects.first(),
        filters=SearchFilters(**filters),
        now=moment,
        page_size=50,
    )
    return [json.loads(row)["name"] for row in results]


# Wednesday 2026-12-02 03:30 UTC: 10:30 in Bangkok (UTC+7), 03:30 in Lisbon (UTC+0).
WEDNESDAY = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


def test_open_now_in_each_locations_time_zone(make_service):
    hours = {"weekday": 3, "opens_at": time(9), "closes_at": time(17)}
    make_service(
        name="Bangkok",
        locations=[location_at((13.75, 100.5), time_zone="Asia/Bangkok", schedules=[hours])],
    )
    make_service(name="Lisbon", locations=[location_at(LISBON, schedules=[hours])])
    make_service(name="No hours")
    assert open_at(WEDNESDAY, open_now=True) == ["Bangkok"]
    assert open_at(WEDNESDAY, open_now=False) == ["Lisbon", "No hours"]
    # Six hours later it is 09:30 in Lisbon and 15:30 in Bangkok: both open.
    assert open_at(WEDNESDAY + timedelta(hours=6), open_now=True) == ["Bangkok", "Lisbon"]


def test_open_now_across_midnight(make_service):
    overnight = {"weekday": 2, "opens_at": time(22), "closes_at": time(6)}  # Tuesday night
    make_service(name="Night", locations=[location_at(LISBON, schedules=[overnight])])
    assert open_at(WEDNESDAY, open_now=True) == ["Night"]  # 03:30 Wednesday, Lisbon
    assert open_at(WEDNESDAY + timedelta(hours=3), open_now=True) == []  # 06:30
    assert open_at(WEDNESDAY - timedelta(hours=5), open_now=True) == ["Night"]  # Tue 22:30
    assert open_at(WEDNESDAY - timedelta(hours=6), open_now=True) == []  # Tue 21:30


def test_open_now_weekday_is_local(make_service):
    # 03:30 UTC Wednesday is still Tuesday 17:30 in Honolulu (UTC-10).
    tuesday = {"weekday": 2, "opens_at": time(17), "closes_at": time(18)}
    make_service(
        name="Honolulu",
        locations=[location_at((21.3, -157.85), time_zone="Pacific/Honolulu", schedules=[tuesday])],
    )
    assert open_at(WEDNESDAY, open_now=True) == ["Honolulu"]


def test_open_now_through_the_api(search, make_service):
    now = timezone.now().astimezone(ZoneInfo("Asia/Bangkok"))
    all_day = {"weekday": now.isoweekday(), "opens_at": time(0), "closes_at": time(23, 59, 59)}
    other_day = {**all_day, "weekday": now.isoweekday() % 7 + 1}
    make_service(
        name="Today",
        locations=[location_at((13.75, 100.5), time_zone="Asia/Bangkok", schedules=[all_day])],
    )
    make_service(
        name="Other day",
        locations=[location_at((13.75, 100.5), time_zone="Asia/Bangkok", schedules=[other_day])],
    )
    assert names(search(open_now="true")) == ["Today"]


def test_filters_combine(search, make_service, make_organisation):
    clinic = make_organisation(kind="clinic")
    good = dict(
        taxonomy=["abortion-reproductive-care"],
        languages=["th", "pt"],
        locations=[location_at(offset(km_north=2))],
        capacity={"accepting_referrals": "open", "available": 2},
        no_immigration_status_questions=True,
    )
    make_service(clinic, name="Match", **good)
    make_service(clinic, name="Wrong language", **{**good, "languages": ["pt"]})
    make_service(
        clinic, name="Too far", **{**good, "locations": [location_at(offset(km_north=40))]}
    )
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
    make_service(name="Near", languages=["th"], locations=[location_at(offset(km_north=1))])
    make_service(name="Far", languages=["th"], locations=[location_at(offset(km_north=5))])
    make_service(name="Other", languages=["en"], locations=[location_at(offset(km_north=1))])
    near = f"{LISBON[0]},{LISBON[1]}"
    get = client.get("/api/v1/services", {"language": "th", "near": near, "radius_km": 10})
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
@pytest.mark.parametrize("method", ["get", "post"])
def test_next_pages_through_everything_once(client, make_service, near, method):
    """Following `next` as it is (GET) or posting the same filters to it (POST)."""
    for index in range(7):
        make_service(name=f"Service {index}", locations=[location_at(offset(km_north=index + 0.5))])
    params = {"limit": 3}
    if near:
        params.update(near=f"{LISBON[0]},{LISBON[1]}", radius_km=20)
    if method == "get":
        response = client.get("/api/v1/services", params)
    else:
        response = client.post("/api/v1/services/search", params)
    seen = names(response)
    for _ in range(5):
        page = response.json()
        assert page["previous"] is None
        if page["next"] is None:
            break
        assert page["next"].startswith("http://testserver/api/v1/services")
        if method == "get":
            response = client.get(page["next"])
        else:
            response = client.post(page["next"], params)
        seen += names(response)
    assert seen == [f"Service {index}" for index in range(7)]


def test_a_post_search_takes_its_cursor_in_the_body_too(client, make_service):
    for index in range(4):
        make_service(name=f"Service {index}")
    first = client.post("/api/v1/services/search", {"limit": 3}).json()
    second = client.post("/api/v1/services/search", {"limit": 3, "cursor": cursor_of(first)})
    assert names(second) == ["Service 3"]
    assert second.json()["next"] is None


def test_query_count_is_constant_in_page_size(client, make_service, django_assert_num_queries):
    for index in range(30):
        make_service(
            name=f"Service {index:02}",
            locations=[
                location_at(offset(km_north=index / 10)),
                location_at(offset(km_east=index / 10)),
            ],
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
    client.get("/api/v1/services", params)  # warm the taxonomy code cache
    counts = []
    for limit in (1, 10, 30):
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/v1/services", {**params, "limit": limit})
        assert len(response.json()["results"]) == limit
        counts.append(len(captured))
    assert counts[0] == counts[1] == counts[2]
    # The token look-up (which counts the request against the rate limit) and the search.
    with django_assert_num_queries(2):
        client.get("/api/v1/services", {**params, "limit": 30})


# The schema refuses these (400), or a rule does on input the schema allows (422).
BAD_INPUT = [
    ({"near": "38.7,-9.1"}, "/radius_km", 422),
    ({"radius_km": 5}, "/near", 422),
    ({"near": "91,0", "radius_km": 5}, "/near", 422),
    ({"near": "0,181", "radius_km": 5}, "/near", 422),
    ({"near": "north", "radius_km": 5}, "/near", 400),
    ({"near": "38.7,-9.1", "radius_km": 5000}, "/radius_km", 400),
    ({"taxonomy": "sti-testing,astrology"}, "/taxonomy", 422),
    ({"language": "english please"}, "/language", 400),
    ({"accepting": "maybe"}, "/accepting/0", 400),
    ({"cost": "cheap"}, "/cost/0", 400),
    ({"walk_in": "perhaps"}, "/walk_in", 400),
    ({"limit": 1000}, "/limit", 400),
    ({"cursor": "not-a-cursor"}, "/cursor", 422),
    ({"colour": "blue"}, "/colour", 400),
]


@pytest.mark.parametrize(("params", "pointer", "status"), BAD_INPUT)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_input_names_the_field(client, make_service, params, pointer, status, method):
    make_service()
    if method == "GET":
        response = client.get("/api/v1/services", params)
    else:
        response = client.post("/api/v1/services/search", params, format="json")
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert pointer in [error["pointer"] for error in response.json()["errors"]]


def test_search_needs_directory_read(api_client_for, organisation):
    client = api_client_for(organisation, scopes=["capacity:write"])
    response = client.get("/api/v1/services")
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


@pytest.mark.parametrize("microseconds", [0, 120500])
def test_timestamps_in_results_are_utc_with_z_as_everywhere(
    search, client, make_service, microseconds
):
    """The search builds its JSON in SQL; its times read exactly as DRF writes them."""
    at = timezone.now().replace(microsecond=microseconds) + timedelta(days=1)
    service = make_service(name="Beds", capacity={"valid_until": at})
    Capacity.objects.filter(service=service).update(updated=at - timedelta(days=2))
    found = search().json()["results"][0]["capacity"]
    shown = client.get(f"/api/v1/services/{service.pk}/capacity").json()
    assert found["valid_until"] == shown["valid_until"] == iso(at)
    assert found["updated"] == shown["updated"] == iso(at - timedelta(days=2))
    assert found["valid_until"].endswith("Z") and "+00:00" not in json.dumps(found)


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
def test_a_forged_cursor_is_a_422_not_a_500(client, make_service, cursor):
    make_service()
    for near in ({}, {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 5}):
        response = client.post("/api/v1/services/search", {"cursor": cursor, **near})
        assert response.status_code == 422, response.content
        assert response.json()["errors"][0]["pointer"] == "/cursor"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_numbers_are_refused(search, value):
    # `1e400` has the shape of a coordinate (the schema's pattern), but no latitude is that.
    assert search(near=f"{value},0", radius_km=5).status_code == (422 if value[0] == "1" else 400)
    assert search(near="0,0", radius_km=value).status_code == 400


def test_a_cursor_is_good_only_for_its_search_and_caller(
    client, api_client_for, make_organisation, make_service
):
    for index in range(7):
        make_service(name=f"Service {index}", locations=[location_at(offset(km_north=index + 0.5))])
    query = {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 20, "limit": 3}
    cursor = cursor_of(client.get("/api/v1/services", query).json())
    # The same search, as GET or POST, at any page size.
    assert names(client.get("/api/v1/services", {**query, "cursor": cursor}))[0] == "Service 3"
    post = client.post("/api/v1/services/search", {**query, "limit": 2, "cursor": cursor})
    assert names(post) == ["Service 3", "Service 4"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[1] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    stranger = api_client_for(make_organisation("Stranger"), scopes=["directory:read"])
    refused = [
        client.get("/api/v1/services", {**query, "cursor": altered}),
        client.get("/api/v1/services", {**query, "radius_km": 30, "cursor": cursor}),
        client.get("/api/v1/services", {**query, "walk_in": "false", "cursor": cursor}),
        client.get("/api/v1/services", {"limit": 3, "cursor": cursor}),
        stranger.get("/api/v1/services", {**query, "cursor": cursor}),
    ]
    for response in refused:
        assert response.status_code == 422, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"] == [{"pointer": "/cursor", "detail": "Invalid cursor."}]


# --- Opening hours as the database keeps them ---------------------------------------------------


def opening_hours() -> dict:
    """service name → (time zone, its weekly open seconds) as partners_openinghours holds them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.name, o.time_zone, range_agg(o.open_seconds)::text "
            "FROM partners_openinghours o JOIN partners_service s ON s.id = o.service_id "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return {name: (zone, seconds) for name, zone, seconds in cursor.fetchall()}


def test_opening_hours_follow_every_write_to_schedules_and_locations(make_service):
    service = make_service(name="Clinic", locations=[location_at(LISBON, schedules=[])])
    location = service.locations.get()
    assert opening_hours() == {}
    schedule = Schedule.objects.create(
        location=location, weekday=1, opens_at=time(9), closes_at=time(17)
    )
    assert opening_hours() == {"Clinic": ("Europe/Lisbon", "{[32400,61200)}")}
    Schedule.objects.filter(pk=schedule.pk).update(weekday=2)
    assert opening_hours() == {"Clinic": ("Europe/Lisbon", "{[118800,147600)}")}
    Location.objects.filter(pk=location.pk).update(time_zone="Asia/Bangkok")
    assert opening_hours() == {"Clinic": ("Asia/Bangkok", "{[118800,147600)}")}
    Schedule.objects.bulk_create(
        [Schedule(location=location, weekday=2, opens_at=time(17), closes_at=time(18))]
    )
    assert opening_hours() == {"Clinic": ("Asia/Bangkok", "{[118800,151200)}")}
    schedule.delete()
    assert opening_hours() == {"Clinic": ("Asia/Bangkok", "{[147600,151200)}")}
    location.delete()
    assert opening_hours() == {}


def test_sunday_night_wraps_to_monday_morning(make_service):
    sunday_night = {"weekday": 7, "opens_at": time(22), "closes_at": time(2)}
    make_service(name="Night", locations=[location_at(LISBON, schedules=[sunday_night])])
    assert opening_hours() == {"Night": ("Europe/Lisbon", "{[0,7200),[597600,604800)}")}
    monday = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # 01:30 Monday in Lisbon
    assert open_at(monday, open_now=True) == ["Night"]
    assert open_at(monday - timedelta(hours=3), open_now=True) == ["Night"]  # Sunday 22:30
    assert open_at(monday + timedelta(hours=1), open_now=True) == []  # 02:30


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    schedules=st.lists(
        st.tuples(
            st.integers(1, 7),
            st.times().map(lambda t: t.replace(microsecond=0)),
            st.times().map(lambda t: t.replace(microsecond=0)),
        ),
        min_size=1,
        max_size=4,
    ),
    zone=st.sampled_from(
        ["Europe/Lisbon", "Asia/Bangkok", "Pacific/Honolulu", "America/Sao_Paulo"]
    ),
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_open_now_is_the_local_weekly_rule(make_service, schedules, zone, moment):
    """The stored ranges against the rule itself, read in Python: open when the local weekday
    and time fall in a schedule, a schedule that closes at or before it opens running into the
    next day (DST included, since the rule is read on the local clock)."""
    Location.objects.filter(service__name__startswith="Random ").delete()  # earlier examples
    name = f"Random {uuid.uuid4()}"
    hours = [{"weekday": d, "opens_at": o, "closes_at": c} for d, o, c in schedules]
    make_service(name=name, locations=[location_at(LISBON, time_zone=zone, schedules=hours)])
    local = moment.astimezone(ZoneInfo(zone)).replace(microsecond=0)
    yesterday = local - timedelta(days=1)
    expected = any(
        (d == local.isoweekday() and o <= local.time() and (local.time() < c or c <= o))
        or (c <= o and local.time() < c and d == yesterday.isoweekday())
        for d, o, c in schedules
    )
    assert (name in open_at(moment, open_now=True)) is expected


def test_taxonomy_has_the_same_shape_in_results_as_in_detail(client, make_service):
    service = make_service(taxonomy=("sti-testing", "hiv-prep-pep"))
    headers = {"HTTP_ACCEPT_LANGUAGE": "es"}
    found = client.get("/api/v1/services", **headers).json()["results"][0]["taxonomy"]
    detail = client.get(f"/api/v1/services/{service.pk}", **headers).json()["taxonomy"]
    assert found == detail
    assert {"code": "sti-testing", "name": "Pruebas de ITS"} in found


def test_a_language_filter_does_not_change_the_language_of_the_names(client, make_service):
    """`language` filters services by the languages they offer; the taxonomy's names follow
    Accept-Language."""
    make_service(taxonomy=("sti-testing",), languages=["th"])
    response = client.get("/api/v1/services", {"language": "th"}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.json()["results"][0]["taxonomy"] == [
        {"code": "sti-testing", "name": "Pruebas de ITS"}
    ]
