"""Issue 11, item 1, run as the attack itself: a client holding only `directory:read` tries to
recover a confidential location's coordinates through the search API, from several anchors,
by every route the issue names: decoding the cursor in `next`, forging cursors, and bisecting
`radius_km`. Whatever it learns, its best estimate must stay at least 1 km from the truth;
a partner in an active partnership still gets exact distances."""

import base64
import json
import math
import re

import pytest

from tests.partners.conftest import LISBON, cursor_of, great_circle_km, location_at, offset

pytestmark = pytest.mark.django_db

SHELTER = offset(km_north=3.4, km_east=1.7)
# Where the attacker stands: spread around the city, none of them on the shelter.
ANCHORS = [
    LISBON,
    offset(km_north=9, km_east=-4),
    offset(km_north=-2, km_east=8),
    offset(km_north=12, km_east=10),
]
RADIUS_KM = 60
BISECTION_STEPS = 38
ZERO_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def shelter(make_organisation, make_service):
    owner = make_organisation("Casa Segura", kind="shelter")
    service = make_service(
        owner,
        name="Safe house beds",
        taxonomy=["emergency-shelter"],
        locations=[
            location_at(
                SHELTER,
                name="Safe house",
                address_1="Rua Secreta 7",
                confidential=True,
                front_door_contact="Call +351 210 000 001",
            )
        ],
    )
    # Public services farther from every anchor than the shelter, so a page that ends on the
    # shelter has a next page and therefore a cursor after it.
    for km in (30, 40):
        make_service(
            name=f"Decoy {km}",
            taxonomy=["emergency-shelter"],
            locations=[location_at(offset(km_north=km, km_east=km / 2))],
        )
    return service


class Attacker:
    """Everything here uses only what the HTTP API answers."""

    def __init__(self, client, target_id: str):
        self.client = client
        self.target_id = target_id
        self.requests = 0
        self.refusals: list = []
        self.sample_cursor: str | None = None

    def search(self, anchor, radius_km, **extra):
        self.requests += 1
        body = {"near": f"{anchor[0]},{anchor[1]}", "radius_km": radius_km, **extra}
        response = self.client.post("/api/v1/services/search", body, format="json")
        assert response.status_code != 500, response.content
        if response.status_code != 200:
            self.refusals.append(response)
            return None
        return response.json()

    def target_in(self, page) -> dict | None:
        for result in page["results"]:
            if result["id"] == self.target_id:
                return result
        return None

    def shown_distance(self, anchor) -> float:
        page = self.search(anchor, RADIUS_KM, taxonomy=["emergency-shelter"], limit=100)
        return self.target_in(page)["distance_km"]

    def decoded_cursor_distance(self, anchor) -> float | None:
        """Page one result at a time; the cursor after the target's page carries its sort key
        (on the base commit, the exact distance in base64 JSON)."""
        cursor = None
        for _ in range(6):
            extra = {"cursor": cursor} if cursor else {}
            page = self.search(anchor, RADIUS_KM, taxonomy=["emergency-shelter"], limit=1, **extra)
            if page is None:
                return None
            cursor = cursor_of(page)
            if cursor and self.target_in(page):
                self.sample_cursor = cursor
                return number_in(cursor)
            if not cursor:
                return None
        return None

    def forged_cursor_bisection(self, anchor) -> tuple[float, float] | None:
        """A forged cursor `[d, 0…0]` lists only what sorts after distance d: the target is
        on the page exactly when its key exceeds d. Bisect d."""
        low, high, answered = 0.0, float(RADIUS_KM), True
        for step in range(BISECTION_STEPS):
            middle = (low + high) / 2
            page = self.search(
                anchor,
                RADIUS_KM,
                taxonomy=["emergency-shelter"],
                limit=100,
                cursor=forge(middle, self.sample_cursor, plain=step % 2 == 1),
            )
            if page is None:
                answered = False
                continue
            if self.target_in(page):
                low = middle
            else:
                high = middle
        return (low, high) if answered else None

    def radius_bisection(self, anchor) -> tuple[float, float]:
        """The target is listed exactly when its distance is within radius_km: bisect it."""
        low, high = 0.1, float(RADIUS_KM)
        for _ in range(BISECTION_STEPS):
            middle = (low + high) / 2
            page = self.search(anchor, middle, taxonomy=["emergency-shelter"], limit=100)
            if self.target_in(page):
                high = middle
            else:
                low = middle
        return low, high

    def estimate(self) -> tuple[float, float]:
        """Each anchor's most precise figure (a rounded distance only where nothing better was
        learnt), trilaterated."""
        best = []
        for anchor in ANCHORS:
            found = [(0.5, self.shown_distance(anchor))]
            decoded = self.decoded_cursor_distance(anchor)
            if decoded is not None:
                found.append((1e-9, decoded))
            forged = self.forged_cursor_bisection(anchor)
            if forged is not None:
                found.append(((forged[1] - forged[0]) / 2, sum(forged) / 2))
            low, high = self.radius_bisection(anchor)
            found.append(((high - low) / 2, (low + high) / 2))
            best.append((anchor, min(found)[1]))
        return trilaterate(best)


def number_in(cursor: str) -> float | None:
    """The first JSON number inside a base64 cursor, whatever follows it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        return None
    match = re.search(rb"\[\s*(-?[0-9][0-9.eE+-]*)\s*,", raw)
    return float(match.group(1)) if match else None


def forge(distance: float, sample: str | None, *, plain: bool) -> str:
    """A cursor saying "after `distance`": plain base64 JSON, or a genuine cursor with its
    number replaced and everything after it (a signature, say) kept."""
    if plain or sample is None:
        raw = json.dumps([distance, ZERO_ID]).encode()
    else:
        genuine = base64.urlsafe_b64decode(sample + "=" * (-len(sample) % 4))
        raw = re.sub(rb"^\[\s*-?[0-9][0-9.eE+-]*", b"[" + repr(distance).encode(), genuine)
        raw = re.sub(rb'"[0-9a-f-]{36}"', f'"{ZERO_ID}"'.encode(), raw, count=1)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def trilaterate(measurements: list[tuple]) -> tuple[float, float]:
    """Least squares on the sphere (Gauss-Newton): the point whose great-circle distances to
    the anchors best match the measured ones."""
    lat = sum(a[0] for a, _ in measurements) / len(measurements)
    lon = sum(a[1] for a, _ in measurements) / len(measurements)
    step = 1e-6
    for _ in range(100):
        jtj = [[0.0, 0.0], [0.0, 0.0]]
        jtr = [0.0, 0.0]
        for anchor, distance in measurements:
            residual = great_circle_km((lat, lon), anchor) - distance
            d_lat = (
                great_circle_km((lat + step, lon), anchor)
                - great_circle_km((lat - step, lon), anchor)
            ) / (2 * step)
            d_lon = (
                great_circle_km((lat, lon + step), anchor)
                - great_circle_km((lat, lon - step), anchor)
            ) / (2 * step)
            row = (d_lat, d_lon)
            for i in range(2):
                jtr[i] += row[i] * residual
                for j in range(2):
                    jtj[i][j] += row[i] * row[j]
        det = jtj[0][0] * jtj[1][1] - jtj[0][1] * jtj[1][0]
        delta_lat = -(jtj[1][1] * jtr[0] - jtj[0][1] * jtr[1]) / det
        delta_lon = -(jtj[0][0] * jtr[1] - jtj[1][0] * jtr[0]) / det
        lat, lon = lat + delta_lat, lon + delta_lon
        if math.hypot(delta_lat, delta_lon) < 1e-13:
            break
    return lat, lon


def test_a_directory_reader_cannot_locate_a_shelter(api_client_for, make_organisation, shelter):
    reader = api_client_for(make_organisation("Curious"), scopes=["directory:read"])
    attacker = Attacker(reader, str(shelter.pk))
    estimate = attacker.estimate()
    truth = shelter.locations.values_list("latitude", "longitude").get()

    assert attacker.requests >= 300
    for refusal in attacker.refusals:
        assert refusal.status_code in (400, 422)
        assert refusal["Content-Type"] == "application/problem+json"
        assert [error["pointer"] for error in refusal.json()["errors"]] == ["/cursor"]
    missed_by = great_circle_km(estimate, truth)
    assert missed_by >= 1.0, f"the attack located the shelter to within {missed_by * 1000:.1f} m"


def test_an_active_partner_still_gets_exact_distances(
    api_client_for, make_organisation, make_partnership, shelter
):
    partner = make_organisation("Partner")
    make_partnership(shelter.organisation, partner)
    client = api_client_for(partner, scopes=["directory:read"])
    truth = shelter.locations.values_list("latitude", "longitude").get()
    for anchor in ANCHORS:
        exact = great_circle_km(anchor, truth)
        near = f"{anchor[0]},{anchor[1]}"

        def found(radius_km, near=near):
            response = client.post(
                "/api/v1/services/search",
                {"near": near, "radius_km": radius_km, "taxonomy": ["emergency-shelter"]},
                format="json",
            )
            assert response.status_code == 200
            hits = [r for r in response.json()["results"] if r["id"] == str(shelter.pk)]
            return hits[0] if hits else None

        result = found(RADIUS_KM)
        assert result["distance_km"] == pytest.approx(exact, abs=0.0006)
        assert result["locations"][0]["distance_km"] == pytest.approx(exact, abs=0.0006)
        assert result["locations"][0]["latitude"] == pytest.approx(truth[0])
        # The radius filters on the exact distance for a partner.
        assert found(exact + 0.002) is not None
        assert found(exact - 0.002) is None


def test_a_next_link_gives_away_no_distance_from_the_searcher(
    api_client_for, make_organisation, make_service
):
    """A POST search keeps the person's point out of URLs, and its `next` link must not put it
    back: a cursor that could be read would hold a distance from that point to a known service,
    and three of them locate the person. The link holds a sealed cursor: no JSON, no id, and
    never the same text twice for the same page."""
    for index in range(4):
        make_service(name=f"Drop-in {index}", locations=[location_at(offset(km_north=index + 0.5))])
    client = api_client_for(make_organisation("Outreach"), scopes=["directory:read"])
    search = {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 20, "limit": 2}
    pages = [client.post("/api/v1/services/search", search, format="json") for _ in range(2)]
    first, again = (cursor_of(page.json()) for page in pages)
    last = pages[0].json()["results"][-1]
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    with pytest.raises(ValueError):
        json.loads(raw)
    assert last["id"].encode() not in raw
    assert first != again
    follow = client.post(f"/api/v1/services/search?cursor={first}", search, format="json")
    assert [r["name"] for r in follow.json()["results"]] == ["Drop-in 2", "Drop-in 3"]
