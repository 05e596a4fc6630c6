"""The round trip: export this network's HSDS through every route, import it into an empty
directory (the steward's import: organisations as the file names them), export again, and get
the same documents apart from generated ids and timestamps. On the demo network, every route
and every item; on a generated 20,000-service directory, every list route whole and a sample of
every item route.

"Generated ids" are ours, made anew by the import: organisations and services (translated back
through the external ids the import kept, so links between them are compared exactly) and the
objects that have no id of their own here (locations, schedules, languages...). Taxonomy and
term ids are stable names, so they must come back identical."""

import io
import json
import re

import pytest
from django.db import connection, transaction

from partners.api.hsds import hsds_locations
from partners.demo import seed_demo
from partners.hsds_terms import TAXONOMIES, safeguard_term_id, taxonomy_term_id
from partners.imports.services import directory_import_create, import_run
from partners.models import SAFEGUARDS, DirectoryImport, Organisation, Service, TaxonomyTerm
from tests.partners.hsds_schemas import validate
from tests.partners.imports import seed_directory

pytestmark = pytest.mark.django_db

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMPS = {"last_modified", "updated"}
LISTS = {
    "/services": [{}, {"full": "true"}, {"minimal": "true"}],
    "/organizations": [{}, {"full": "true"}, {"full_service": "true"}],
    "/service_at_locations": [{}, {"full": "true"}],
    "/taxonomies": [{}],
    "/taxonomy_terms": [{}],
}


def pages(client, path: str, params: dict) -> list:
    contents, page = [], 1
    while True:
        body = client.get(f"/api/v1/hsds{path}", {**params, "page": page, "per_page": 100})
        assert body.status_code == 200, body.content
        body = body.json()
        contents.extend(body["contents"])
        if body["last_page"]:
            return contents
        page += 1


def export(client, *, every: int = 1, lists=LISTS) -> dict:
    """Every route: each list whole (every page), each item route for every `every`th id."""
    documents = {"/": client.get("/api/v1/hsds").json()}
    for path, variants in lists.items():
        for params in variants:
            documents[f"{path}?{json.dumps(params)}"] = pages(client, path, params)
    # Items in name order, so a sample picks the same objects from both directories.
    services = Service.objects.filter(status="active").order_by("name", "external_id")
    organisations = Organisation.objects.order_by("name")
    items = {
        "/services/{id}": list(services.values_list("pk", flat=True))[::every],
        "/organizations/{id}": list(organisations.values_list("pk", flat=True))[::every],
        "/service_at_locations/{id}": list(
            hsds_locations().order_by("name", "service__name").values_list("pk", flat=True)
        )[::every],
        "/taxonomies/{id}": [t.id for t in TAXONOMIES],
        "/taxonomy_terms/{id}": [
            *(
                taxonomy_term_id(code)
                for code in TaxonomyTerm.objects.values_list("code", flat=True)
            ),
            *(safeguard_term_id(name) for name in SAFEGUARDS),
        ],
    }
    for path, ids in items.items():
        documents[path] = []
        for pk in ids:
            query = {"full_service": "true"} if "organizations" in path else {}
            response = client.get(f"/api/v1/hsds{path.format(id=pk)}", query)
            assert response.status_code == 200, response.content
            validate(path, response.json())
            documents[path].append(response.json())
        assert documents[path]
    return documents


def canonical(value, stable: set[str]):
    """Generated ids become a placeholder, timestamps go, and lists are compared as multisets."""
    if isinstance(value, dict):
        return {k: canonical(v, stable) for k, v in value.items() if k not in TIMESTAMPS}
    if isinstance(value, list):
        items = [canonical(v, stable) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, str):
        return UUID.sub(lambda m: m.group(0) if m.group(0) in stable else "<id>", value)
    return value


def translated(documents: dict, back: dict[str, str]) -> dict:
    """The second export's organisation and service ids as the first export named them."""
    text = json.dumps(documents)
    text = UUID.sub(lambda m: back.get(m.group(0), m.group(0)), text)
    return json.loads(text)


def stable_ids() -> set[str]:
    return {
        *(t.id for t in TAXONOMIES),
        *(taxonomy_term_id(code) for code in TaxonomyTerm.objects.values_list("code", flat=True)),
        *(safeguard_term_id(name) for name in SAFEGUARDS),
    }


def empty_the_directory() -> None:
    """As a fresh database has it: no organisation, service, location, capacity or history.
    The history is append-only by trigger, lifted for this one statement (table owner's right)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks: ALTER needs that
        cursor.execute("ALTER TABLE partners_capacityhistory DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM partners_capacityhistory")
        cursor.execute("ALTER TABLE partners_capacityhistory ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    Organisation.objects.all().delete()


def analyze() -> None:
    """Statistics, as autovacuum would have made them on a live database: without them the
    planner joins 20,000 services to their organisations by nested loops over whole tables."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def round_trip(
    api_client_for, reader_name: str, *, large=False, **options
) -> tuple[dict, dict, DirectoryImport]:
    if large:
        analyze()
    reader = api_client_for(Organisation.objects.get(name=reader_name))
    before = export(reader, **options)
    original = before["/organizations?" + json.dumps({"full_service": "true"})]
    document = json.dumps({"contents": original}).encode()
    empty_the_directory()
    assert not Service.objects.exists()
    job = directory_import_create(
        organisation=None,
        file=io.BytesIO(document),
        size=len(document),
        import_format="json",
        enqueue=False,
    )
    import_run(job.pk)
    job.refresh_from_db()
    if large:
        analyze()
    reader = api_client_for(Organisation.objects.get(name=reader_name))
    back = {
        str(pk): external
        for pk, external in [
            *Organisation.objects.values_list("pk", "external_id"),
            *Service.objects.values_list("pk", "external_id"),
        ]
    }
    after = translated(export(reader, **options), back)
    return before, after, job


def assert_equal_apart_from_generated_ids(before: dict, after: dict) -> None:
    stable = stable_ids()
    assert set(after) == set(before)
    for key in before:
        assert canonical(after[key], stable) == canonical(before[key], stable), key


def test_the_demo_network_comes_back_the_same(api_client_for, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    seed_demo()
    before, after, job = round_trip(api_client_for, "Clínica Aberta")
    assert job.status == "succeeded" and job.error_count == 0, job.errors
    assert job.created_count == Service.objects.count() > 0
    assert job.unmapped_terms == []
    assert_equal_apart_from_generated_ids(before, after)
    # The comparison is not vacuous: the export has every part a service can have.
    full = json.dumps(before["/services?" + json.dumps({"full": "true"})])
    for part in (
        '"access_safeguard"',
        '"service_type"',
        '"schedules"',
        '"capacities"',
        '"addresses"',
    ):
        assert part in full


def test_the_comparison_does_catch_a_difference(api_client_for, settings, tmp_path):
    """Guards the guard: a lost field or a changed value is a difference."""
    settings.VAR_DIR = tmp_path
    seed_demo()
    reader = api_client_for(Organisation.objects.get(name="Clínica Aberta"))
    before = export(reader, lists={"/services": [{"full": "true"}]}, every=1000)
    service = Service.objects.filter(status="active", walk_in=True).first()
    service.walk_in = False
    service.save()
    after = export(reader, lists={"/services": [{"full": "true"}]}, every=1000)
    with pytest.raises(AssertionError):
        assert_equal_apart_from_generated_ids(before, after)


@pytest.mark.django_db(transaction=True)
def test_a_20000_service_directory_comes_back_the_same(api_client_for, taxonomy):
    """Committed, like a live directory (and emptied by TRUNCATE afterwards, which leaves the
    tables small again for the plans other tests check)."""
    seed_directory(services=20_000, organisations=2_000)
    before, after, job = round_trip(
        api_client_for,
        "Generated 00000",
        large=True,
        every=400,
        lists={
            "/services": [{"full": "true"}],
            "/organizations": [{"full_service": "true"}],
            "/service_at_locations": [{"full": "true"}],
            "/taxonomies": [{}],
            "/taxonomy_terms": [{}],
        },
    )
    assert job.status == "succeeded" and job.error_count == 0, job.errors
    assert job.created_count == 20_000
    assert len(before["/services?" + json.dumps({"full": "true"})]) == 20_000
    assert_equal_apart_from_generated_ids(before, after)
