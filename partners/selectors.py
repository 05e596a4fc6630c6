"""Reads for the partner directory. Every query that depends on who is asking takes the caller's
organisation explicitly, so scoping is visible at the call site."""

import json
import time
import uuid
from datetime import datetime

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation.trans_real import parse_accept_lang_header
from psycopg.types.string import TextLoader

from api.pagination import invalid_cursor, open_cursor, seal_cursor
from partners.models import (
    CapacityHistory,
    Location,
    Organisation,
    Partnership,
    Schedule,
    Service,
    ServiceStatus,
    TaxonomyTerm,
)
from partners.search import SERVICE_DOCUMENT, SearchFilters, service_search_sql

TAXONOMY_LANGUAGES = ("en", "es", "fr", "pt", "ro", "ru", "th", "zh", "tl")


def active_partner_ids(organisation_id) -> list:
    """Ids of the organisations in an active partnership with this one."""
    rows = Partnership.objects.active_for(organisation_id).values_list("proposer_id", "partner_id")
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


def search_cursor_binding(*, caller_id, filters: SearchFilters) -> str:
    """What a search cursor is good for: this caller and exactly these filters."""
    return json.dumps(["services.search", str(caller_id), vars(filters)], sort_keys=True)


def encode_cursor(sort_key, service_id, *, binding: str) -> str:
    return seal_cursor(json.dumps([sort_key, str(service_id)]), binding=binding)


def decode_cursor(cursor: str, *, binding: str) -> tuple:
    """The position a cursor sealed for this search holds (see api.pagination)."""
    try:
        key, service_id = json.loads(open_cursor(cursor, binding=binding))
        return key, str(uuid.UUID(service_id))
    except (ValueError, TypeError, AttributeError):
        raise invalid_cursor(cursor) from None


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
    language: str = "en",
) -> tuple[list[str], str | None]:
    """One page of results (each a JSON object, as text, taxonomy names in `language`) and the
    cursor of the next page (None on the last)."""
    binding = search_cursor_binding(caller_id=caller.pk, filters=filters)
    after = decode_cursor(cursor, binding=binding) if cursor else None
    sql, params = service_search_sql(
        caller_id=caller.pk,
        filters=filters,
        now=now,
        limit=page_size + 1,
        after=after,
        language=language,
    )
    rows = fetch_search_rows(sql, params)
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = encode_cursor(rows[-1][0], rows[-1][1], binding=binding)
    return [row[2] for row in rows], next_cursor


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
