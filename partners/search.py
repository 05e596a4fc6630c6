"""The service search in one place: its filters, the SQL that runs them on partners_searchentry,
the open_now clauses, and the JSON shape of a hit. The shape is built in SQL from the tuples
below, which also order the serializers that document it (partners.api.serializers); the
safeguards, the masking of confidential locations and capacity staleness come from their one
definition in partners.models. The fixed fragments are built once, at import."""

import math
from dataclasses import dataclass, field
from datetime import datetime

from api.timestamps import iso_sql
from partners.models import (
    ACTIVE_PARTNERSHIP_PARAMS,
    CAPACITY_FIGURES,
    LOCATION_SHOWN,
    SAFEGUARDS,
    SERVICE_HEAD_FIELDS,
    OpeningHours,
    ServiceStatus,
    active_partnership_sql,
    capacity_stale_sql,
    location_field_sql,
    location_hidden_sql,
)

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE_LATITUDE = 111.045
RADIUS_KM_MAX = 200
COORDINATES = ("latitude", "longitude")

# Must match the expression of the service_fts_gin index (migration 0002) character for
# character, or PostgreSQL will not use the index.
SERVICE_DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(s.name, '') || ' ' || coalesce(s.description, ''))"
)

# --- The shape of a hit ----------------------------------------------------------------------

ORGANISATION_FIELDS = ("id", "name", "kind", "verified")
CAPACITY_FIELDS = (*CAPACITY_FIGURES, "updated", "stale")
LOCATION_FIELDS = (*LOCATION_SHOWN, "distance_km")
RESULT_FIELDS = (
    *SERVICE_HEAD_FIELDS,
    "languages",
    "cost",
    *SAFEGUARDS,
    "capacity",
    "distance_km",
    "locations",
)

# The caller is neither the owner of location `l` nor an active partner of the owner: no row in
# `revealed`, joined as `r`.
UNREVEALED = "r.id IS NULL"
LOCATION_HIDDEN = location_hidden_sql("l", UNREVEALED)


def json_object(fields: tuple[str, ...], alias: str, values: dict[str, str]) -> str:
    """json_build_object over `fields`: each from `values`, else from the column of that name."""
    pairs = (f"'{name}', {values.get(name, f'{alias}.{name}')}" for name in fields)
    return f"json_build_object({', '.join(pairs)})"


def _haversine(latitude: str, longitude: str) -> str:
    """Great-circle distance in km from the `near` point to the point in these columns."""
    return (
        f"2 * {EARTH_RADIUS_KM} * asin(least(1, sqrt("
        f"power(sin(radians({latitude} - %(lat)s) / 2), 2)"
        f" + cos(radians(%(lat)s)) * cos(radians({latitude}))"
        f" * power(sin(radians({longitude} - %(lon)s) / 2), 2))))"
    )


def _location_json(near: bool) -> str:
    """One location as the search returns it, masked in SQL (partners.models.LOCATION_MASKS)
    so nothing hidden ever leaves the database. A hidden location's distance is that of its
    coarse point, rounded to the kilometre."""
    values = {name: location_field_sql("l", name, UNREVEALED) for name in LOCATION_FIELDS}
    if near:
        point = [
            f"CASE WHEN {LOCATION_HIDDEN} THEN l.coarse_{c} ELSE l.{c} END" for c in COORDINATES
        ]
        values["distance_km"] = (
            f"round(({_haversine(*point)})::numeric, CASE WHEN {LOCATION_HIDDEN} THEN 0 ELSE 3 END)"
        )
    else:
        values["distance_km"] = "NULL"
    return json_object(LOCATION_FIELDS, "l", values)


CAPACITY_JSON = json_object(
    CAPACITY_FIELDS,
    "c",
    {
        "valid_until": iso_sql("c.valid_until"),
        "updated": iso_sql("c.updated"),
        "stale": capacity_stale_sql("c"),
    },
)
ORGANISATION_JSON = json_object(ORGANISATION_FIELDS, "o", {})


def _result_json(distance: str) -> str:
    """One hit: service `s` of organisation `o`, its capacity `c` (NULL when it has none), its
    taxonomy `taxa` and its locations `locs`."""
    return json_object(
        RESULT_FIELDS,
        "s",
        {
            "organisation": ORGANISATION_JSON,
            "taxonomy": "taxa.taxonomy",
            "capacity": f"CASE WHEN c.service_id IS NULL THEN NULL ELSE {CAPACITY_JSON} END",
            "distance_km": distance,
            "locations": "locs.locations",
        },
    )


# A service's distance is that of its nearest location in the box (`hits`), rounded to the
# kilometre when one of them is confidential and hidden from the caller.
SERVICE_DISTANCE = (
    f"CASE WHEN h.any_confidential AND {UNREVEALED} THEN round(h.sort_key::numeric) "
    "ELSE round(h.sort_key::numeric, 3) END"
)
RESULT_JSON = {True: _result_json(SERVICE_DISTANCE), False: _result_json("NULL")}
LOCATIONS_JSON = {near: _location_json(near) for near in (True, False)}

# --- The search entries ----------------------------------------------------------------------

# Where the triggers copy each column of partners_searchentry from: service `s`, its
# organisation `o`, its capacity `c` (NULL when it has none) and `l`, which is in turn no
# location (the listing's row), each location, and each confidential location's coarse point.
SEARCH_ENTRY_SOURCES = {
    "service_id": "s.id",
    "organisation_id": "s.organisation_id",
    "location_id": "l.id",
    "name": "s.name",
    "status": "s.status",
    "organisation_suspended": "o.suspended",
    "organisation_kind": "o.kind",
    "taxonomy_codes": "s.taxonomy_codes",
    "language_keys": "partners_language_keys(s.languages)",
    "cost": "s.cost",
    **{name: f"s.{name}" for name in SAFEGUARDS},
    "accepting_referrals": "c.accepting_referrals",
    "available": "c.available",
    "valid_until": "c.valid_until",
    "latitude": "l.latitude",
    "longitude": "l.longitude",
    "confidential": "coalesce(l.confidential, false)",
    "coarse": "l.coarse",
}


def search_entry_refresh_sql(columns: list[str]) -> str:
    """partners_searchentry_refresh, which every trigger on the search entries' sources calls
    (migration 0005): it rebuilds the entries of the services given, each of `columns` from its
    source above (a column without one is a KeyError here, never a NULL in the search). A
    migration that changes SearchEntry's columns runs it again with the columns it leaves."""
    sources = [SEARCH_ENTRY_SOURCES[column] for column in columns]
    return f"""
CREATE OR REPLACE FUNCTION partners_searchentry_refresh(service_ids uuid[]) RETURNS void AS $$
BEGIN
    -- Two transactions rebuilding one service must take turns, or the later one's delete
    -- would miss the earlier one's rows: the service row lock orders them.
    PERFORM 1 FROM partners_service WHERE id = ANY(service_ids) ORDER BY id FOR NO KEY UPDATE;
    DELETE FROM partners_searchentry WHERE service_id = ANY(service_ids);
    INSERT INTO partners_searchentry ({", ".join(columns)})
    SELECT {", ".join(sources)}
    FROM partners_service s
    JOIN partners_organisation o ON o.id = s.organisation_id
    LEFT JOIN partners_capacity c ON c.service_id = s.id
    CROSS JOIN LATERAL (
        SELECT NULL::uuid AS id, NULL::float8 AS latitude, NULL::float8 AS longitude,
               NULL::boolean AS confidential, false AS coarse
        UNION ALL
        SELECT lo.id, lo.latitude, lo.longitude, lo.confidential, false
        FROM partners_location lo WHERE lo.service_id = s.id
        UNION ALL
        SELECT lo.id, lo.coarse_latitude, lo.coarse_longitude, true, true
        FROM partners_location lo
        WHERE lo.service_id = s.id AND lo.confidential AND lo.coarse_latitude IS NOT NULL
    ) l
    WHERE s.id = ANY(service_ids);
END;
$$ LANGUAGE plpgsql;"""  # noqa: S608


# --- open_now --------------------------------------------------------------------------------

# Opening hours are local: each time zone in partners_openinghours (kept by the triggers of
# migration 0009) gets its current second of the ISO week once, from a loose scan of the time
# zone index. A candidate is then open if one of its rows holds its zone's second; and when no
# service anywhere is open (a night, a weekend), one probe of the ranges' index per zone says so
# before any candidate is read.
OPEN_CLOCKS = f"""zones(time_zone) AS (
    (SELECT time_zone FROM {OpeningHours._meta.db_table} ORDER BY time_zone LIMIT 1)
    UNION ALL
    SELECT (SELECT o.time_zone FROM {OpeningHours._meta.db_table} o
            WHERE o.time_zone > z.time_zone ORDER BY o.time_zone LIMIT 1)
    FROM zones z WHERE z.time_zone IS NOT NULL
), clocks AS MATERIALIZED (
    SELECT z.time_zone, (extract(isodow FROM lt.t)::int - 1) * 86400
                        + floor(extract(epoch FROM lt.t::time))::int AS second
    FROM zones z CROSS JOIN LATERAL (SELECT %(now)s::timestamptz AT TIME ZONE z.time_zone AS t) lt
    WHERE z.time_zone IS NOT NULL
),"""  # noqa: S608
# OFFSET 0 keeps each EXISTS a per-candidate probe (and the gate a per-zone probe of the
# ranges' index): flattened into joins, they would read every open service first, because the
# planner cannot estimate how many ranges hold a second.
OPEN_NOW = f"""EXISTS (SELECT 1 FROM {OpeningHours._meta.db_table} o
    JOIN clocks c ON c.time_zone = o.time_zone
    WHERE o.service_id = e.service_id AND o.open_seconds @> c.second OFFSET 0)"""  # noqa: S608
ANY_OPEN = f"""EXISTS (SELECT 1 FROM clocks c CROSS JOIN LATERAL (
    SELECT 1 FROM {OpeningHours._meta.db_table} o
    WHERE o.open_seconds @> c.second AND o.time_zone = c.time_zone LIMIT 1) open OFFSET 0)"""  # noqa: S608

# --- The statement ---------------------------------------------------------------------------


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


def service_search_sql(
    *,
    caller_id,
    filters: SearchFilters,
    now: datetime,
    limit: int,
    after: tuple | None = None,
    language: str = "en",
) -> tuple[str, dict]:
    """The whole search as one SQL statement: each row is (sort key, id, the result as JSON).

    The filters run on partners_searchentry (a copy the database's triggers keep), in one
    index-only scan of its bounding-box or name index; only the page of services found is then
    read and shaped in SQL. Shaping each result in SQL keeps a page at one query whatever its
    size, and keeps confidential addresses inside the database. No PostGIS: distances are
    haversine over plain latitude/longitude columns.
    """
    params: dict = {
        "caller": caller_id,
        "now": now,
        "limit": limit,
        "names_language": language,
        **ACTIVE_PARTNERSHIP_PARAMS,
    }
    # A literal, from the model's choices: the search entries' partial indexes hold only active
    # services, and PostgreSQL matches a partial index only against a constant.
    where = [f"e.status = '{ServiceStatus.ACTIVE}'", "e.organisation_suspended = false"]
    near = filters.near is not None

    if near:
        lat, lon = filters.near
        params.update(lat=lat, lon=lon, radius=filters.radius_km)
        box, box_params = _bounding_box(lat, lon, filters.radius_km)
        params.update(box_params)
        # A confidential location has two rows: at its coordinates, for its owner and the
        # owner's active partners, and at its coarse point, for every other caller; so the
        # filter, the order and the cursor never depend on a position the caller may not see.
        seen_from = "e.coarse = (e.organisation_id NOT IN (SELECT id FROM revealed))"
        where += ["e.location_id IS NOT NULL", box, f"(NOT e.confidential OR {seen_from})"]
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
        stale = capacity_stale_sql("e")
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
        where += [ANY_OPEN, OPEN_NOW] if filters.open_now else [f"NOT {OPEN_NOW}"]
    if after is not None:
        params.update(after_key=after[0], after_id=after[1])

    # Only fixed SQL fragments are interpolated; every value is a bound parameter.
    if near:
        entry_distance = _haversine("e.latitude", "e.longitude")
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
    else:
        if after is not None:
            where.append("(e.name, e.service_id) > (%(after_key)s, %(after_id)s::uuid)")
        hits = f"""
    SELECT e.service_id AS id, e.name AS sort_key
    FROM partners_searchentry e
    WHERE {" AND ".join(where)}
    ORDER BY e.name, e.service_id
    LIMIT %(limit)s"""  # noqa: S608

    clocks = f"RECURSIVE {OPEN_CLOCKS}" if filters.open_now is not None else ""
    sql = f"""
WITH {clocks} revealed AS MATERIALIZED (
    SELECT CASE WHEN p.proposer_id = %(caller)s THEN p.partner_id ELSE p.proposer_id END AS id
    FROM partners_partnership p
    WHERE {active_partnership_sql("p", "%(caller)s")}
    UNION SELECT %(caller)s::uuid
), hits AS MATERIALIZED ({hits}
)
SELECT h.sort_key, s.id, {RESULT_JSON[near]} AS result
FROM hits h
JOIN partners_service s ON s.id = h.id
JOIN partners_organisation o ON o.id = s.organisation_id
LEFT JOIN partners_capacity c ON c.service_id = s.id
LEFT JOIN revealed r ON r.id = s.organisation_id
CROSS JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object(
        'code', tc.code, 'name', coalesce(t.names ->> %(names_language)s, t.names ->> 'en', tc.code)
    ) ORDER BY tc.n), '[]'::json) AS taxonomy
    FROM unnest(s.taxonomy_codes) WITH ORDINALITY AS tc(code, n)
    LEFT JOIN partners_taxonomyterm t ON t.code = tc.code
) taxa
CROSS JOIN LATERAL (
    SELECT coalesce(json_agg({LOCATIONS_JSON[near]} ORDER BY l.name, l.id), '[]'::json)
        AS locations
    FROM partners_location l WHERE l.service_id = s.id
) locs
ORDER BY h.sort_key, s.id"""  # noqa: S608
    # Indentation collapsed: psycopg caches the parsing of a statement only up to 4 KB. (No
    # literal or comment in it holds a run of whitespace.)
    return " ".join(sql.split()), params
