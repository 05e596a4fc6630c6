"""Directory benchmark: 20,000 services across 2,000 organisations (capacity, locations,
schedules) in the bench database, then over HTTP (gunicorn, 2 sync workers, wrk at 1, 4 and 16
connections, interleaved rounds: see rounds.py):

- a combined search (taxonomy + language + near/radius + accepting + a safeguard) through the
  real API (token, scopes, rate limit, validation), against its ceiling: a bare Django view (no
  REST framework, no authentication) that runs the exact SQL the search produces (the same
  `service_search_sql` call) and returns the rows as JSON;
- a taxonomy search with `open_now=true` against the same search without it, both through the
  API (one filter, so its candidates span the directory: the combined search's box leaves too
  few for opening hours to matter);
- a bulk update of 500 capacities through POST /capacity/bulk, timed end to end.

Targets (issue 18, ratios measured in the same run): search throughput ≥ 0.8× the ceiling's at
16 connections and p50 ≤ 1.3× the ceiling's at 1 connection; the search with `open_now` ≥ 0.8×
the throughput of the same search without it. Issue 3's: one query per page, bulk ≤ 1 s.

Services cluster around ten Iberian cities, so a 10 km search around Lisbon sees a realistic
few hundred candidates rather than an empty or a whole-table neighbourhood."""

import functools
import json
import random
import statistics
import time
import urllib.request
import uuid
from datetime import time as clock
from urllib.parse import urlencode

from tests.bench import harness, machine, rounds

ORGANISATIONS = 2_000
SERVICES = 20_000
CALLER_SERVICES = 500  # the measuring organisation owns enough services for a 500-item bulk
PREFIX = "Bench directory"
BARE_PATH = "/bench/directory/bare-search"
AUTHENTICATED_PATH = "/bench/directory/authenticated-search"  # the ceiling after the token
BULK_SECONDS = 1.0
BULK_RUNS = 5

CITIES = [
    (38.7223, -9.1393),  # Lisboa
    (41.1579, -8.6291),  # Porto
    (40.4168, -3.7038),  # Madrid
    (41.3874, 2.1686),  # Barcelona
    (37.3891, -5.9845),  # Sevilla
    (39.4699, -0.3763),  # València
    (43.2630, -2.9350),  # Bilbao
    (37.0194, -7.9304),  # Faro
    (40.2033, -8.4103),  # Coimbra
    (42.8782, -8.5448),  # Santiago
]
LANGUAGES = ["pt", "es", "en", "fr", "ro", "ru", "th", "zh", "tl", "ar", "uk", "pt-BR"]

# The combined search measured, as query parameters; the bare view runs the SQL the API
# builds from these same parameters.
SEARCH = {
    "taxonomy": "sti-testing,hiv-prep-pep,general-health",
    "language": "pt",
    "near": f"{CITIES[0][0]},{CITIES[0][1]}",
    "radius_km": "10",
    "accepting": "open,limited",
    "no_id_required": "true",
}

# The open_now comparison's search. The bench's opening hours are weekday daytimes in Lisbon
# and Madrid, so at night and at weekends it finds nothing: its row says how many it found.
OPEN_NOW_SEARCH = {"taxonomy": "sti-testing"}


# --- Seeding ---------------------------------------------------------------------------------


def _caller():
    """The measuring organisation (owner of CALLER_SERVICES services) with a fresh client."""
    from partners.models import Organisation
    from partners.services import application_create

    organisation = Organisation.objects.filter(name=f"{PREFIX} 0000").first()
    application, secret = application_create(
        organisation=organisation, scopes=["directory:read", "capacity:write"]
    )
    return organisation, application, secret


def seed() -> int:
    """Create the bench directory unless it is there. Returns how many services were added."""
    from django.db import connection, transaction

    from partners.models import (
        Capacity,
        CapacityHistory,
        Location,
        Organisation,
        Schedule,
        Service,
        TaxonomyTerm,
    )

    if Service.objects.filter(organisation__name__startswith=PREFIX).count() >= SERVICES:
        return 0
    rng = random.Random(42)
    codes = sorted(TaxonomyTerm.objects.values_list("code", flat=True))
    kinds = [
        "sex_worker_led",
        "immigrant_rights",
        "clinic",
        "legal_aid",
        "harm_reduction",
        "shelter",
        "other",
    ]
    with transaction.atomic():
        Organisation.objects.filter(name__startswith=PREFIX).delete()
        organisations = Organisation.objects.bulk_create(
            Organisation(
                name=f"{PREFIX} {index:04}",
                kind=kinds[index % len(kinds)],
                community_led=index % 3 == 0,
                region="Bench",
                languages=rng.sample(LANGUAGES, 3),
                verified=True,
            )
            for index in range(ORGANISATIONS)
        )
        owners = [organisations[0]] * CALLER_SERVICES + [
            organisations[1 + i % (ORGANISATIONS - 1)] for i in range(SERVICES - CALLER_SERVICES)
        ]
        services, locations, schedules, capacities, history, links = [], [], [], [], [], []
        Link = Service.taxonomy_terms.through
        for index, owner in enumerate(owners):
            terms = rng.sample(codes, rng.randint(1, 3))
            service = Service(
                id=uuid.uuid4(),
                organisation=owner,
                name=f"Service {index:05} {' '.join(terms)}",
                description="Confidential care, no questions about status. " * 2,
                taxonomy_codes=sorted(terms),
                languages=rng.sample(LANGUAGES, rng.randint(1, 4)),
                cost=rng.choice(["free", "free", "sliding_scale", "fee"]),
                no_id_required=rng.random() < 0.6,
                no_immigration_status_questions=rng.random() < 0.7,
                anonymous_access=rng.random() < 0.4,
                walk_in=rng.random() < 0.5,
                sex_worker_friendly=rng.random() < 0.5,
                trans_friendly=rng.random() < 0.5,
            )
            services.append(service)
            links.extend(Link(service_id=service.id, taxonomyterm_id=code) for code in terms)
            city = CITIES[index % len(CITIES)]
            location = Location(
                id=uuid.uuid4(),
                service=service,
                name="Main site",
                address_1=f"Rua {index}",
                city="Bench",
                region="Bench",
                country="PT",
                latitude=rng.gauss(city[0], 0.12),
                longitude=rng.gauss(city[1], 0.15),
                time_zone="Europe/Lisbon" if city[1] < -6.5 else "Europe/Madrid",
                confidential=rng.random() < 0.1,
                front_door_contact="Call first",
            )
            locations.append(location)
            opens = rng.choice([8, 9, 10, 14])
            schedules.extend(
                Schedule(
                    location=location,
                    weekday=day,
                    opens_at=clock(opens),
                    closes_at=clock(opens + 6),
                )
                for day in range(1, 6)
            )
            maximum = rng.randint(1, 40)
            state = rng.choice(["open", "open", "limited", "waitlist", "closed"])
            capacities.append(
                Capacity(
                    service=service,
                    available=rng.randint(0, maximum),
                    maximum=maximum,
                    unit="appointments",
                    accepting_referrals=state,
                )
            )
            history.append(
                CapacityHistory(
                    service=service,
                    available=capacities[-1].available,
                    maximum=maximum,
                    unit="appointments",
                    accepting_referrals=state,
                    version=1,
                )
            )
        for model, rows in (
            (Service, services),
            (Link, links),
            (Location, locations),
            (Schedule, schedules),
            (Capacity, capacities),
            (CapacityHistory, history),
        ):
            # Server-side binding allows at most 65,535 parameters a statement.
            model.objects.bulk_create(rows, batch_size=2_000)
    with connection.cursor() as cursor:
        # Fresh statistics, and a visibility map so index-only scans need not visit the heap.
        cursor.execute("VACUUM ANALYZE")
    return len(services)


# --- The bare view ---------------------------------------------------------------------------


def _bench_filters():
    from partners.selectors import SearchFilters

    lat, lon = (float(part) for part in SEARCH["near"].split(","))
    return SearchFilters(
        taxonomy=SEARCH["taxonomy"].split(","),
        language=SEARCH["language"],
        near=(lat, lon),
        radius_km=float(SEARCH["radius_km"]),
        accepting=SEARCH["accepting"].split(","),
        safeguards={"no_id_required": True},
    )


def bare_search(request):
    """No REST framework, no authentication, no validation: the search SQL, its rows as
    JSON. The caller whose partnerships decide what is revealed is named in the query string."""
    from django.http import HttpResponse
    from django.utils import timezone

    from partners.selectors import fetch_search_rows, service_search_sql

    sql, params = service_search_sql(
        caller_id=request.GET["caller"],
        filters=_bench_filters(),
        now=timezone.now(),
        limit=26,
    )
    rows = fetch_search_rows(sql, params)
    body = f'{{"next":null,"previous":null,"results":[{",".join(row[2] for row in rows[:25])}]}}'
    return HttpResponse(body, content_type="application/json")


def bare_urlpatterns() -> list:
    from django.urls import path

    return [
        path(BARE_PATH.lstrip("/"), bare_search),
        path(AUTHENTICATED_PATH.lstrip("/"), harness.authenticated(bare_search, "caller")),
    ]


# --- The run ---------------------------------------------------------------------------------


def _request(url, *, token=None, body=None, method="GET"):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def _query_counts(caller) -> set[int]:
    """Queries per search page, in process: the same for 5 and 50 results."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from partners.selectors import SearchFilters, services_search_json

    counts = set()
    for size in (5, 50):
        with CaptureQueriesContext(connection) as captured:
            services_search_json(
                caller=caller, filters=SearchFilters(), now=timezone.now(), page_size=size
            )
        counts.add(len(captured.captured_queries))
    return counts


def _bulk_items(caller, rng) -> list[dict]:
    from partners.models import Service

    ids = list(Service.objects.filter(organisation=caller).values_list("id", flat=True)[:500])
    items = []
    for service_id in ids:
        maximum = rng.randint(5, 40)
        items.append(
            {
                "service_id": str(service_id),
                "available": rng.randint(0, maximum),
                "maximum": maximum,
                "unit": "appointments",
                "accepting_referrals": rng.choice(["open", "limited", "waitlist"]),
                "estimated_wait_days": rng.randint(0, 5),
            }
        )
    return items


TARGETS = {
    "search": (
        rounds.Target("search throughput / ceiling", "rps_ratio", 16, 0.8),
        rounds.Target("search p50 / ceiling", "p50_ratio", 1, 1.3, at_least=False),
    ),
    "open_now": (rounds.Target("open_now search / same without", "rps_ratio", 16, 0.8),),
}


def _honest_ceiling(caller, application) -> dict:
    """In process: the bare view sends the API's own search SQL, and returns its rows."""
    from django.test import Client

    from tests.conftest import issue_token

    api = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(application)}", HTTP_HOST="127.0.0.1")
    bare = Client(HTTP_HOST="127.0.0.1")
    api_path = f"/api/v1/services?{urlencode(SEARCH)}"
    bare_path = f"{BARE_PATH}?caller={caller.pk}"
    same = harness.same_sql(lambda: api.get(api_path), lambda: bare.get(bare_path))
    api_rows = json.loads(api.get(api_path).content)["results"]
    bare_rows = json.loads(bare.get(bare_path).content)["results"]
    return {
        "name": "search ceiling: the API's SQL and rows",
        "same_sql": same,
        "same_rows": api_rows == bare_rows,
        "results": len(api_rows),
        "ok": same and api_rows == bare_rows and bool(api_rows),
    }


def _open_now_results(base: str, token: str) -> dict:
    from django.utils import timezone

    query = urlencode(OPEN_NOW_SEARCH)
    _, plain = _request(f"{base}/api/v1/services?{query}", token=token)
    _, open_now = _request(f"{base}/api/v1/services?{query}&open_now=true", token=token)
    return {
        "name": "open_now search: results on this page",
        "search": query,
        "at": timezone.now().strftime("%a %H:%M UTC"),
        "open_now_results": len(open_now["results"]),
        "plain_results": len(plain["results"]),
    }


def run(args) -> list[dict]:
    with harness.bench_database() as database_url:
        harness.setup_django()
        started = time.perf_counter()
        added = seed()
        seed_seconds = round(time.perf_counter() - started, 1)
        caller, application, secret = _caller()
        queries = _query_counts(caller)
        honest = _honest_ceiling(caller, application)
        rng = random.Random(7)
        with (
            harness.serve(database_url, workers=2) as base,
            machine.CpuAccount(database_url) as account,
        ):
            token = harness.get_token(base, application.client_id, secret)
            auth = {"Authorization": f"Bearer {token}"}
            search_url = f"{base}/api/v1/services?{urlencode(SEARCH)}"
            compare = functools.partial(
                rounds.interleave, account=account, duration=args.duration, rounds=args.rounds
            )
            search = compare(
                "search",
                rounds.wrk_side("api", search_url, headers=auth),
                rounds.wrk_side("ceiling", f"{base}{BARE_PATH}?caller={caller.pk}"),
                targets=TARGETS["search"],
            )
            # How far below its ceiling the token statement alone puts any API request.
            token_bound = compare(
                "search: ceiling after the token statement",
                rounds.wrk_side("with token", f"{base}{AUTHENTICATED_PATH}", headers=auth),
                rounds.wrk_side("ceiling", f"{base}{BARE_PATH}?caller={caller.pk}"),
                connections=(1, 16),
            )
            open_now_url = f"{base}/api/v1/services?{urlencode(OPEN_NOW_SEARCH)}"
            open_now_found = _open_now_results(base, token)
            open_now = compare(
                "open_now",
                rounds.wrk_side("open_now", f"{open_now_url}&open_now=true", headers=auth),
                rounds.wrk_side("plain", open_now_url, headers=auth),
                targets=TARGETS["open_now"],
            )
            bulk_times = []
            for _ in range(BULK_RUNS):
                items = _bulk_items(caller, rng)
                began = time.perf_counter()
                status, _ = _request(
                    f"{base}/api/v1/capacity/bulk",
                    token=token,
                    body={"items": items},
                    method="POST",
                )
                bulk_times.append(time.perf_counter() - began)
                assert status == 200
    rows = [
        {
            "name": "seed",
            "services": SERVICES,
            "organisations": ORGANISATIONS,
            "added_now": added,
            "seconds": seed_seconds,
        },
        {
            "name": "search queries per page (5 and 50 results)",
            "queries": sorted(queries),
            "target": "one",
            "ok": queries == {1},
        },
        honest,
        *search,
        *token_bound,
        open_now_found,
        *open_now,
        {
            "name": "POST /capacity/bulk, 500 items",
            "median_s": round(statistics.median(bulk_times), 3),
            "max_s": round(max(bulk_times), 3),
            "runs": BULK_RUNS,
            "target": f"≤{BULK_SECONDS}s",
            "ok": max(bulk_times) <= BULK_SECONDS,
        },
    ]
    harness.report("directory", rows)
    return rows
