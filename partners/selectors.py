"""Reads for the partner directory. Every query that depends on who is asking takes the caller's
organisation explicitly, so scoping is visible at the call site."""

import base64
import binascii
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation.trans_real import parse_accept_lang_header
from psycopg.types.string import TextLoader

from api.errors import InvalidInput
from partners.models import (
    CapacityHistory,
    Location,
    Organisation,
    Partnership,
    PartnershipStatus,
    Schedule,
    Service,
    ServiceStatus,
    TaxonomyTerm,
)

TAXONOMY_LANGUAGES = ("en", "es", "fr", "pt", "ro", "ru", "th", "zh", "tl")
EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE_LATITUDE = 111.045
RADIUS_KM_MAX = 200

# Must match the expression of the service_fts_gin index (migration 0002) character for
# character, or PostgreSQL will not use the index.
SERVICE_DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(s.name, '') || ' ' || coalesce(s.description, ''))"
)


def active_partner_ids(organisation_id) -> list:
    """Ids of the organisations in an active partnership with this one."""
    rows = Partnership.objects.filter(
        Q(proposer_id=organisation_id) | Q(partner_id=organisation_id),
        status=PartnershipStatus.ACTIVE,
    ).values_list("proposer_id", "partner_id")
    return [b if a == organisation_id else a for a, b in rows]


def may_see_confidential(*, caller: Organisation, owner_id) -> bool:
    return caller.pk == owner_id or owner_id in active_partner_ids(caller.pk)


# --- Organisations and partnerships ---------------------------------------------------------


def organisations_visible() -> QuerySet[Organisation]:
    """The directory lists every organisation that is not suspended."""
    return Organisation.objects.filter(suspended=False)


def partnerships_for(organisation: Organisation) -> QuerySet[Partnership]:
    """Both sides see an agreement; nobody else does."""
    return Partnership.objects.filter(
        Q(proposer=organisation) | Q(partner=organisation)
    ).select_related("proposer", "partner")


# --- Taxonomy --------------------------------------------------------------------------------


def preferred_language(accept_language: str) -> str:
    """The first language of Accept-Language the taxonomy has names in, else English."""
    for tag, _quality in parse_accept_lang_header(accept_language or ""):
        primary = tag.split("-")[0].lower()
        if primary in TAXONOMY_LANGUAGES:
            return primary
    return "en"


def taxonomy_terms() -> QuerySet[TaxonomyTerm]:
    return TaxonomyTerm.objects.all()


_taxonomy_cache: dict = {"codes": frozenset(), "expires": 0.0}
TAXONOMY_CACHE_SECONDS = 60


def known_taxonomy_codes() -> frozenset[str]:
    """The taxonomy codes, cached per process for a minute: every search validates its codes
    and the list changes only when stewards add a term, so a query per request is waste."""
    if time.monotonic() >= _taxonomy_cache["expires"] or not _taxonomy_cache["codes"]:
        _taxonomy_cache["codes"] = frozenset(TaxonomyTerm.objects.values_list("code", flat=True))
        _taxonomy_cache["expires"] = time.monotonic() + TAXONOMY_CACHE_SECONDS
    return _taxonomy_cache["codes"]


# --- Services --------------------------------------------------------------------------------


def services_visible() -> QuerySet[Service]:
    """Every directory reader may see every service of a non-suspended organisation; what is
    hidden is inside locations (see location masking in the serializers)."""
    return Service.objects.filter(organisation__suspended=False)


def service_detail_queryset() -> QuerySet[Service]:
    return (
        services_visible()
        .select_related("organisation", "capacity")
        .prefetch_related(
            Prefetch(
                "locations",
                queryset=Location.objects.prefetch_related(
                    Prefetch("schedules", queryset=Schedule.objects.order_by("weekday", "opens_at"))
                ),
            ),
        )
    )


def capacity_history_for(service: Service) -> QuerySet[CapacityHistory]:
    return CapacityHistory.objects.filter(service=service)


@dataclass
class SearchFilters:
    """Validated search filters (see ServiceSearchQuerySerializer)."""

    taxonomy: list[str] = field(default_factory=list)
    language: str | None = None
    near: tuple[float, float] | None = None
    radius_km: float | None = None
    accepting: list[str] = field(default_factory=list)
    has_capacity: bool | None = None
    fresh: bool | None = None
    safeguards: dict[str, bool] = field(default_factory=dict)
    cost: list[str] = field(default_factory=list)
    open_now: bool | None = None
    organisation_kind: list[str] = field(default_factory=list)
    q: str | None = None


def _haversine(lat: str, lon: str, table: str = "l") -> str:
    """Great-circle distance in km from (lat, lon) placeholders to the row of `table`."""
    return (
        f"2 * {EARTH_RADIUS_KM} * asin(least(1, sqrt("
        f"power(sin(radians({table}.latitude - {lat}) / 2), 2)"
        f" + cos(radians({lat})) * cos(radians({table}.latitude))"
        f" * power(sin(radians({table}.longitude - {lon}) / 2), 2))))"
    )


def _bounding_box(lat: float, lon: float, radius_km: float) -> tuple[str, dict]:
    """A latitude/longitude box around the circle, so the index narrows the rows before the
    haversine runs on any of them."""
    dlat = radius_km / KM_PER_DEGREE_LATITUDE
    params = {"lat_min": lat - dlat, "lat_max": lat + dlat}
    sql = "e.latitude BETWEEN %(lat_min)s AND %(lat_max)s"
    cos_lat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
    dlon = radius_km / (KM_PER_DEGREE_LATITUDE * cos_lat) if cos_lat > 0 else 360
    if dlon >= 180:
        return sql, params
    west, east = lon - dlon, lon + dlon
    if west < -180 or east > 180:
        # Across the antimeridian the longitude band wraps: two ranges.
        params.update(lon_a=(west + 540) % 360 - 180, lon_b=(east + 540) % 360 - 180)
        return sql + " AND (e.longitude >= %(lon_a)s OR e.longitude <= %(lon_b)s)", params
    params.update(lon_min=west, lon_max=east)
    return sql + " AND e.longitude BETWEEN %(lon_min)s AND %(lon_max)s", params


def _location_json(distance: str | None) -> str:
    """One location as the search returns it. A confidential location's street address and
    coordinates are blanked in SQL unless the caller owns it or partners with its owner (a row
    in `revealed`, joined as `r`), so nothing hidden ever leaves the database; its distance is
    rounded to the kilometre."""
    hidden = "(l.confidential AND r.id IS NULL)"
    if distance:
        distance_sql = (
            f"CASE WHEN l.latitude IS NULL OR l.longitude IS NULL THEN NULL "
            f"WHEN {hidden} THEN round(({distance})::numeric) "
            f"ELSE round(({distance})::numeric, 3) END"
        )
    else:
        distance_sql = "NULL"
    return f"""json_build_object(
        'id', l.id, 'name', l.name, 'confidential', l.confidential,
        'address_1', CASE WHEN {hidden} THEN NULL ELSE l.address_1 END,
        'city', CASE WHEN {hidden} THEN NULL ELSE l.city END,
        'postal_code', CASE WHEN {hidden} THEN NULL ELSE l.postal_code END,
        'region', l.region, 'country', l.country,
        'latitude', CASE WHEN {hidden} THEN NULL ELSE l.latitude END,
        'longitude', CASE WHEN {hidden} THEN NULL ELSE l.longitude END,
        'time_zone', l.time_zone,
        'front_door_contact', CASE WHEN l.confidential THEN l.front_door_contact ELSE NULL END,
        'distance_km', {distance_sql}
    )"""


def service_search_sql(
    *,
    caller_id,
    filters: SearchFilters,
    now: datetime,
    limit: int,
    after: tuple | None = None,
) -> tuple[str, dict]:
    """The whole search as one SQL statement: each row is (sort key, id, the result as JSON).

    The filters run on partners_searchentry (a copy the triggers of migration 0005 keep), in
    one index-only scan of its bounding-box or name index; only the page of services found is
    then read and shaped in SQL. Shaping each result in SQL keeps a page at one query whatever
    its size, and keeps confidential addresses inside the database. No PostGIS: distances are
    haversine over plain latitude/longitude columns.
    """
    params: dict = {"caller": caller_id, "now": now, "limit": limit}
    where = ["e.status = 'active'", "e.organisation_suspended = false"]
    distance = None

    if filters.near is not None:
        lat, lon = filters.near
        params.update(lat=lat, lon=lon, radius=filters.radius_km)
        distance = _haversine("%(lat)s", "%(lon)s")
        box, box_params = _bounding_box(lat, lon, filters.radius_km)
        params.update(box_params)
        where += ["e.location_id IS NOT NULL", box]
    else:
        where.append("e.location_id IS NULL")
    if filters.taxonomy:
        params["taxonomy"] = filters.taxonomy
        where.append("e.taxonomy_codes && %(taxonomy)s::varchar[]")
    if filters.language:
        # A request for `pt` also finds services that list `pt-BR` (see language_keys).
        params["language"] = filters.language.lower()
        where.append("e.language_keys @> ARRAY[%(language)s::text]")
    if filters.accepting:
        params["accepting"] = filters.accepting
        where.append("e.accepting_referrals = ANY(%(accepting)s::text[])")
    if filters.has_capacity is not None:
        where.append("e.available > 0" if filters.has_capacity else "coalesce(e.available, 0) = 0")
    if filters.fresh is not None:
        stale = "(e.valid_until IS NOT NULL AND e.valid_until <= %(now)s)"
        where.append(
            f"e.accepting_referrals IS NOT NULL AND NOT {stale}" if filters.fresh else stale
        )
    for name, value in sorted(filters.safeguards.items()):
        where.append(f"e.{name} = %(sg_{name})s")
        params[f"sg_{name}"] = value
    if filters.cost:
        params["cost"] = filters.cost
        where.append("e.cost = ANY(%(cost)s::text[])")
    if filters.organisation_kind:
        params["kinds"] = filters.organisation_kind
        where.append("e.organisation_kind = ANY(%(kinds)s::text[])")
    if filters.q:
        params["q"] = filters.q
        where.append(
            f"e.service_id IN (SELECT s.id FROM partners_service s WHERE {SERVICE_DOCUMENT} "  # noqa: S608
            "@@ websearch_to_tsquery('simple'::regconfig, %(q)s))"
        )
    if filters.open_now is not None:
        # Opening hours are local: each location's clock is its own time zone. A schedule
        # whose closing time is not after its opening time runs past midnight.
        open_sql = """EXISTS (
            SELECT 1 FROM partners_location lo
            JOIN partners_schedule sc ON sc.location_id = lo.id
            CROSS JOIN LATERAL (SELECT (%(now)s::timestamptz AT TIME ZONE lo.time_zone) AS t) lt
            WHERE lo.service_id = e.service_id AND (
                (sc.weekday = extract(isodow FROM lt.t) AND lt.t::time >= sc.opens_at
                 AND (lt.t::time < sc.closes_at OR sc.closes_at <= sc.opens_at))
                OR (sc.closes_at <= sc.opens_at AND lt.t::time < sc.closes_at
                    AND sc.weekday = extract(isodow FROM lt.t - interval '1 day'))))"""
        where.append(open_sql if filters.open_now else f"NOT {open_sql}")
    if after is not None:
        params.update(after_key=after[0], after_id=after[1])

    # Only fixed SQL fragments are interpolated; every value is a bound parameter.
    if distance:
        entry_distance = _haversine("%(lat)s", "%(lon)s", table="e")
        after_sql = (
            f" AND (min({entry_distance}), e.service_id) > (%(after_key)s, %(after_id)s::uuid)"
            if after is not None
            else ""
        )
        # Every location of a service in the box counts: the nearest gives the distance, and
        # a confidential one rounds it to the kilometre for callers it is hidden from.
        hits = f"""
    SELECT e.service_id AS id, min({entry_distance}) AS sort_key,
           bool_or(e.confidential) AS any_confidential
    FROM partners_searchentry e
    WHERE {" AND ".join(where)}
    GROUP BY e.service_id
    HAVING min({entry_distance}) <= %(radius)s{after_sql}
    ORDER BY 2, 1
    LIMIT %(limit)s"""  # noqa: S608
        service_distance = (
            "CASE WHEN h.any_confidential AND r.id IS NULL THEN round(h.sort_key::numeric) "
            "ELSE round(h.sort_key::numeric, 3) END"
        )
    else:
        if after is not None:
            where.append("(e.name, e.service_id) > (%(after_key)s, %(after_id)s::uuid)")
        hits = f"""
    SELECT e.service_id AS id, e.name AS sort_key
    FROM partners_searchentry e
    WHERE {" AND ".join(where)}
    ORDER BY e.name, e.service_id
    LIMIT %(limit)s"""  # noqa: S608
        service_distance = "NULL"

    sql = f"""
WITH revealed AS MATERIALIZED (
    SELECT CASE WHEN p.proposer_id = %(caller)s THEN p.partner_id ELSE p.proposer_id END AS id
    FROM partners_partnership p
    WHERE p.status = 'active' AND (p.proposer_id = %(caller)s OR p.partner_id = %(caller)s)
    UNION SELECT %(caller)s::uuid
), hits AS MATERIALIZED ({hits}
)
SELECT h.sort_key, s.id, json_build_object(
    'id', s.id, 'name', s.name, 'description', s.description, 'status', s.status,
    'organisation', json_build_object('id', o.id, 'name', o.name, 'kind', o.kind,
                                      'verified', o.verified),
    'taxonomy', s.taxonomy_codes, 'languages', s.languages, 'cost', s.cost,
    'no_id_required', s.no_id_required,
    'no_immigration_status_questions', s.no_immigration_status_questions,
    'anonymous_access', s.anonymous_access, 'walk_in', s.walk_in,
    'sex_worker_friendly', s.sex_worker_friendly, 'trans_friendly', s.trans_friendly,
    'capacity', CASE WHEN c.service_id IS NULL THEN NULL ELSE json_build_object(
        'available', c.available, 'maximum', c.maximum, 'unit', c.unit,
        'accepting_referrals', c.accepting_referrals,
        'estimated_wait_days', c.estimated_wait_days, 'valid_until', c.valid_until,
        'updated', c.updated,
        'stale', (c.valid_until IS NOT NULL AND c.valid_until <= %(now)s)) END,
    'distance_km', {service_distance},
    'locations', locs.locations
) AS result
FROM hits h
JOIN partners_service s ON s.id = h.id
JOIN partners_organisation o ON o.id = s.organisation_id
LEFT JOIN partners_capacity c ON c.service_id = s.id
LEFT JOIN revealed r ON r.id = s.organisation_id
CROSS JOIN LATERAL (
    SELECT coalesce(json_agg({_location_json(distance)} ORDER BY l.name, l.id), '[]'::json)
        AS locations
    FROM partners_location l WHERE l.service_id = s.id
) locs
ORDER BY h.sort_key, s.id"""  # noqa: S608
    # Indentation collapsed: psycopg caches the parsing of a statement only up to 4 KB, and
    # parsing this one anew cost a third of a millisecond a search. (No literal or comment in
    # it holds a run of whitespace.)
    return " ".join(sql.split()), params


def encode_cursor(sort_key, service_id) -> str:
    raw = json.dumps([sort_key, str(service_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, near: bool) -> tuple:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, service_id = json.loads(raw)
        if near and (isinstance(key, bool) or not isinstance(key, (int, float))):
            raise ValueError
        if not near and not isinstance(key, str):
            raise ValueError
        return key, str(uuid.UUID(service_id))
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "The cursor is not one this search returned.",
            errors=[{"pointer": "/cursor", "detail": "Invalid cursor."}],
        ) from None


def fetch_search_rows(sql: str, params: dict) -> list[tuple]:
    """Run the search SQL, keeping each result as the JSON text PostgreSQL built: the API
    writes it straight into the response instead of parsing and re-serialising it."""
    with connection.cursor() as db:
        db.cursor.adapters.register_loader("json", TextLoader)
        db.execute(sql, params)
        return db.fetchall()


def services_search_json(
    *,
    caller: Organisation,
    filters: SearchFilters,
    now: datetime,
    page_size: int,
    cursor: str | None = None,
) -> tuple[list[str], str | None]:
    """One page of results (each a JSON object, as text) and the cursor of the next page
    (None on the last)."""
    after = decode_cursor(cursor, near=filters.near is not None) if cursor else None
    sql, params = service_search_sql(
        caller_id=caller.pk, filters=filters, now=now, limit=page_size + 1, after=after
    )
    rows = fetch_search_rows(sql, params)
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = encode_cursor(rows[-1][0], rows[-1][1])
    return [row[2] for row in rows], next_cursor


def services_search(**kwargs) -> tuple[list[dict], str | None]:
    """services_search_json with each result parsed, for callers in Python."""
    results, next_cursor = services_search_json(**kwargs)
    return [json.loads(result) for result in results], next_cursor


def services_matching_text(queryset: QuerySet[Service], text: str) -> QuerySet[Service]:
    """Full-text filter on the same indexed expression as the search."""
    match = RawSQL(  # noqa: S611 - a fixed expression; the text is a bound parameter
        f"SELECT s.id FROM partners_service s WHERE {SERVICE_DOCUMENT} "  # noqa: S608
        "@@ websearch_to_tsquery('simple'::regconfig, %s)",
        [text],
    )
    return queryset.filter(pk__in=match)


def services_for_hsds() -> QuerySet[Service]:
    return services_visible().filter(status=ServiceStatus.ACTIVE)
