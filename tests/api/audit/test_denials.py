"""Another organisation's object must cost what an unknown id costs, not only answer the same:
a look-up that wrote an audit row only when it found something made a foreign id measurably
slower, which told a partner that the referral, partnership or claim code exists.

Driven from the URL configuration through the tenancy matrix's table: every route that takes an
id, with every method, is called by an outsider with a real object's id and with an unknown
one. Both must run the same statements (same number, same text once the values are taken out)
and write the same number of rows to each table. Timing is not measured; it follows from this.
The directory's routes are checked with a suspended organisation's service and profile, the
one case in which they answer 404 for an object that exists."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.audit.models import AuditEntry
from partners.models import Organisation
from tests.api.routes import Route
from tests.api.test_tenancy_matrix import (
    PUBLIC,
    ROUTES_WITH_IDS,
    TENANT,
    World,
    call,
    cases,
    unknown_kwargs,
)

# Values in a statement: quoted strings (ids, hashes, times), numbers outside names, and the
# savepoint names Django numbers per transaction.
LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w$])\d+(?:\.\d+)?\b|\"s\d+_x\d+\"")

CASES = cases(TENANT | PUBLIC)


@pytest.fixture
def world(make_organisation, api_client_for):
    return World(make_organisation, api_client_for)


def foreign_ids(world: World, route: Route) -> dict:
    """A real object the outsider gets 404 for: a tenant object, or a suspended member's
    directory entry (the directory shows every other organisation's)."""
    if route.name in TENANT:
        return getattr(world, TENANT[route.name][0])()
    service = world.service()
    Organisation.objects.filter(pk=world.receiver_org.pk).update(suspended=True)
    if "organization" in route.name or "organisation" in route.name:
        return {"pk": str(world.receiver_org.pk)}
    return {"pk": str(service.pk)}


def rows_written() -> dict[str, int]:
    """Rows inserted, updated and deleted per table so far in this transaction (each test runs
    in one), unlogged tables included."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
        )
        return dict(cursor.fetchall())


def measure(client, method: str, route: Route, kwargs: dict):
    before = rows_written()
    with CaptureQueriesContext(connection) as queries:
        response = call(client, method, route, kwargs)
    after = rows_written()
    writes = {table: n - before.get(table, 0) for table, n in after.items()}
    statements = [LITERAL.sub("?", query["sql"]) for query in queries.captured_queries]
    return response, statements, {table: n for table, n in writes.items() if n}


def test_every_route_with_an_id_is_measured():
    assert {route.name for route in ROUTES_WITH_IDS} <= set(TENANT) | set(PUBLIC)
    for name in ("referrals:claim", "referrals:detail", "partnership-detail",
                 "webhook-endpoint-detail", "service-detail"):  # fmt: skip
        assert any(case.values[0].name == name for case in CASES), name


@pytest.mark.parametrize(("route", "method"), CASES)
def test_a_foreign_id_does_the_work_of_an_unknown_id(world, route, method):
    kwargs = foreign_ids(world, route)
    # Caches filled by a first request (taxonomy, prepared SQL) must not count for either side.
    call(world.outsider, method, route, unknown_kwargs(route))
    foreign, foreign_sql, foreign_writes = measure(world.outsider, method, route, kwargs)
    unknown, unknown_sql, unknown_writes = measure(
        world.outsider, method, route, unknown_kwargs(route)
    )
    assert foreign.status_code == unknown.status_code == 404, foreign.content
    assert len(foreign_sql) == len(unknown_sql), (foreign_sql, unknown_sql)
    assert foreign_sql == unknown_sql
    assert foreign_writes == unknown_writes
    # The trail still shows the probe, with the id as it was asked for.
    assert foreign_writes.get(AuditEntry._meta.db_table) == 1


def test_the_trail_records_both_with_the_requested_id_and_never_a_claim_code(world):
    referral = world.referral()
    unknown = "00000000-0000-4000-8000-000000000000"
    first = AuditEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    for pk in (referral["pk"], unknown):
        assert world.outsider.get(f"/api/v1/referrals/{pk}").status_code == 404
    assert world.outsider.get(f"/api/v1/referrals/claim/{referral['code']}").status_code == 404
    entries = list(
        AuditEntry.objects.filter(sequence__gt=first)
        .order_by("sequence")
        .values_list("action", "object_type", "object_id", "result", "actor_organisation")
    )
    outsider = world.outsider_org.pk
    assert entries == [
        ("denied GET referrals:detail", "referral", referral["pk"], "404", outsider),
        ("denied GET referrals:detail", "referral", unknown, "404", outsider),
        ("denied GET referrals:claim", "referral", "", "404", outsider),
    ]
    stored = " ".join(str(v) for row in AuditEntry.objects.values_list() for v in row)
    assert referral["code"] not in stored
