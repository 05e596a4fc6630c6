"""HSDS imports run in this process (the worker's own code path, without the worker): what is
written, how a re-import is matched, dry runs, the itemised report, the upload's refusals, and
that an import never writes into another organisation's records."""

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.models import Event
from partners.imports.services import import_run
from partners.models import (
    Capacity,
    DirectoryImport,
    DirectoryImportChunk,
    DirectoryImportRecord,
    Location,
    Schedule,
    Service,
)
from tests.api.helpers import assert_problem
from tests.partners.imports import (
    hsds_attribute,
    hsds_service,
    json_file,
    package_zip,
    upload,
    zip_file,
)

pytestmark = pytest.mark.django_db


def run(client, file, **fields) -> dict:
    """Upload, run the job as the worker would, and read the job back."""
    response = upload(client, file, **fields)
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued"
    assert response["Location"] == f"/api/v1/directory/imports/{job['id']}"
    import_run(job["id"])
    finished = client.get(f"/api/v1/directory/imports/{job['id']}")
    assert finished.status_code == 200
    return finished.json()


def state(organisation) -> tuple:
    services = Service.objects.filter(organisation=organisation).order_by("external_id")
    return (
        list(services.values_list("external_id", "name", "status", "taxonomy_codes")),
        list(Location.objects.filter(service__organisation=organisation).values_list("name")),
        Schedule.objects.filter(location__service__organisation=organisation).count(),
        list(Capacity.objects.filter(service__organisation=organisation).values_list("version")),
    )


def test_an_import_writes_services_owned_by_the_importer(client, organisation):
    first, second = hsds_service(), hsds_service("Legal clinic", walk_in=True)
    second["attributes"].append(
        {
            **hsds_attribute("walk_in", "Walk-in", taxonomy="srn-safeguards"),
            "taxonomy_term_id": "ignored",
        }
    )
    job = run(client, json_file([first, second]))
    assert job["status"] == "succeeded", job
    assert job["counts"] == {"created": 2, "updated": 0, "skipped": 0, "refused": 0}
    assert job["progress"] == {"done": 2, "total": 2}
    assert job["errors"] == [] and job["error_count"] == 0
    service = Service.objects.get(external_id=first["id"])
    assert service.organisation == organisation
    assert (service.name, service.minimum_age, service.languages) == (
        "Walk-in STI testing",
        16,
        ["pt", "es"],
    )
    assert service.taxonomy_codes == ["sti-testing"]
    assert list(service.taxonomy_terms.values_list("code", flat=True)) == ["sti-testing"]
    location = service.locations.get()
    assert (location.address_1, location.postal_code, location.time_zone) == (
        "Rua da Palma 1",
        "1100-001",
        "Europe/Lisbon",
    )
    assert sorted(location.schedules.values_list("weekday", flat=True)) == [1, 3]
    assert (service.capacity.available, service.capacity.maximum) == (3, 10)
    assert service.capacity_history.count() == 1
    assert Service.objects.get(external_id=second["id"]).walk_in is True
    # The job keeps its report and drops the upload and the staged records.
    assert not DirectoryImportChunk.objects.exists()
    assert not DirectoryImportRecord.objects.exists()


def test_a_reimport_matches_by_hsds_id_and_never_duplicates(client, organisation):
    services = [hsds_service(), hsds_service("Legal clinic")]
    run(client, json_file(services))
    before = state(organisation)
    skipped = run(client, json_file(services))
    assert skipped["counts"] == {"created": 0, "updated": 0, "skipped": 2, "refused": 0}
    assert state(organisation) == before
    services[0]["name"] = "Renamed"
    services[0]["capacities"][0]["available"] = 7
    updated = run(client, json_file(services), on_conflict="update")
    assert updated["counts"] == {"created": 0, "updated": 2, "skipped": 0, "refused": 0}
    assert Service.objects.filter(organisation=organisation).count() == 2
    service = Service.objects.get(external_id=services[0]["id"])
    assert service.name == "Renamed"
    assert service.locations.count() == 1
    assert (service.capacity.available, service.capacity.version) == (7, 2)


def test_a_reimport_keeps_each_locations_row_and_coarse_point(client, organisation):
    """An update that sends a location again at the same coordinates keeps its row, so the
    database keeps the coarse point it drew: a fresh draw on every re-import would let anyone
    average the draws back to a shelter's true position."""
    services = [hsds_service()]
    run(client, json_file(services))
    service = Service.objects.get(external_id=services[0]["id"])
    before = list(service.locations.values_list("pk", "coarse_latitude", "coarse_longitude"))
    assert before and before[0][1] is not None
    for attempt in range(3):
        services[0]["name"] = f"Renamed {attempt}"
        updated = run(client, json_file(services), on_conflict="update")
        assert updated["counts"]["updated"] == 1
        assert (
            list(service.locations.values_list("pk", "coarse_latitude", "coarse_longitude"))
            == before
        )
    moved = services[0]["service_at_locations"][0]["location"]
    moved["latitude"] += 0.05
    run(client, json_file(services), on_conflict="update")
    [(pk, latitude, longitude)] = service.locations.values_list(
        "pk", "coarse_latitude", "coarse_longitude"
    )
    assert pk != before[0][0] and (latitude, longitude) != before[0][1:]


def test_reimporting_our_own_export_updates_in_place(client, organisation, make_service):
    service = make_service(organisation, name="Ours")
    export = client.get(f"/api/v1/hsds/services/{service.pk}").json()
    export["name"] = "Ours, renamed"
    job = run(client, json_file(export), on_conflict="update")
    assert job["counts"]["updated"] == 1
    service.refresh_from_db()
    assert service.name == "Ours, renamed"
    assert Service.objects.filter(organisation=organisation).count() == 1


def test_a_dry_run_reports_and_changes_nothing(client, organisation):
    services = [hsds_service(), hsds_service("Broken", latitude_is="ignored")]
    services[1]["service_at_locations"][0]["location"]["latitude"] = 123
    dry = run(client, json_file(services[:1]), dry_run="true")
    assert dry["counts"] == {"created": 1, "updated": 0, "skipped": 0, "refused": 0}
    assert dry["dry_run"] is True
    assert not Service.objects.filter(organisation=organisation).exists()
    bad = run(client, json_file(services), dry_run="true")
    assert bad["counts"]["refused"] == 2
    assert bad["errors"][0]["pointer"] == "/1/service_at_locations/0/location/latitude"
    assert not Service.objects.filter(organisation=organisation).exists()


def test_bad_input_gets_an_itemised_report_and_changes_nothing(client, organisation):
    good = hsds_service("Fine")
    missing = hsds_service()
    del missing["name"]
    wrong = hsds_service("Wrong type", minimum_age="twelve")
    unknown = hsds_service("Unknown term")
    unknown["attributes"][0]["taxonomy_term"]["code"] = "astrology"
    unresolved = hsds_service("Unresolved term")
    unresolved["attributes"] = [{"id": str(uuid.uuid4()), "taxonomy_term_id": str(uuid.uuid4())}]
    far = hsds_service("Far away")
    far["service_at_locations"][0]["location"]["longitude"] = -200
    document = {"total_items": 6, "contents": [good, missing, wrong, unknown, unresolved, far]}
    for dry_run in ("true", "false"):
        job = run(client, json_file(document), dry_run=dry_run)
        assert job["status"] == "succeeded"
        # All or nothing for the organisation: the good service is refused with the others.
        assert job["counts"] == {"created": 0, "updated": 0, "skipped": 0, "refused": 6}
        assert [(e["pointer"], e["detail"]) for e in job["errors"]] == [
            ("/contents/1/name", "Missing required field."),
            ("/contents/2/minimum_age", "Must be a whole number."),
            (
                "/contents/3/attributes/0/taxonomy_term/code",
                "Unknown taxonomy term 'astrology' of Solidarity Referral Network service types.",
            ),
            (
                "/contents/4/attributes/0/taxonomy_term_id",
                "Unknown taxonomy term: it is neither given here nor one of this network's.",
            ),
            (
                "/contents/5/service_at_locations/0/location/longitude",
                "Out of range: must be between -180 and 180.",
            ),
        ]
        assert job["errors"][0]["record"] == missing["id"]
        assert job["error_count"] == 5
        assert not Service.objects.filter(organisation=organisation).exists()


def test_a_repeated_id_is_an_error(client, organisation):
    service = hsds_service()
    job = run(client, json_file([service, {**service, "name": "Again"}]))
    assert job["counts"]["refused"] == 2
    assert "same id as an earlier record" in job["errors"][0]["detail"]


def test_unmapped_terms_are_reported_never_guessed_and_a_mapping_maps_them(client, organisation):
    service = hsds_service()
    la = {"id": str(uuid.uuid4()), "name": "211 LA", "description": ""}
    service["attributes"] = [
        hsds_attribute("BD-1800.2000", "Food pantries", taxonomy_detail=la),
        hsds_attribute("NO-ID", "No ID needed", taxonomy="211 LA"),
    ]
    job = run(client, json_file(service))
    assert job["counts"]["created"] == 1
    assert job["unmapped_terms"] == [
        {"taxonomy": "211 LA", "code": "BD-1800.2000", "name": "Food pantries", "count": 1},
        {"taxonomy": "211 LA", "code": "NO-ID", "name": "No ID needed", "count": 1},
    ]
    created = Service.objects.get(external_id=service["id"])
    assert created.taxonomy_codes == [] and created.no_id_required is False
    mapping = SimpleUploadedFile(
        "mapping.csv",
        b"taxonomy,code,srn_code\n211 la,bd-1800.2000,food\n211 LA,NO-ID,no_id_required\n",
        content_type="text/csv",
    )
    mapped = run(client, json_file(service), on_conflict="update", taxonomy_mapping=mapping)
    assert mapped["unmapped_terms"] == []
    created.refresh_from_db()
    assert created.taxonomy_codes == ["food"] and created.no_id_required is True


def test_a_mapping_to_codes_we_do_not_have_is_refused_row_by_row(client):
    mapping = SimpleUploadedFile(
        "mapping.csv", b"taxonomy,code,srn_code\n211 LA,BD,food\n211 LA,X,astrology\n"
    )
    response = upload(client, json_file(hsds_service()), taxonomy_mapping=mapping)
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {
            "pointer": "/taxonomy_mapping",
            "row": 3,
            "column": "srn_code",
            "detail": "'astrology' is not a code of this network's taxonomy.",
        }
    ]
    assert not DirectoryImport.objects.exists()


def test_the_finished_event_goes_to_the_importer(client, organisation):
    job = run(client, json_file(hsds_service()))
    event = Event.objects.get(type="directory.import.finished")
    assert event.organisation == organisation
    assert event.data == {
        "import_id": job["id"],
        "status": "succeeded",
        "dry_run": False,
        "counts": {"created": 1, "updated": 0, "skipped": 0, "refused": 0},
        "links": {"self": f"/api/v1/directory/imports/{job['id']}"},
    }


def test_a_truncated_document_fails_the_job_and_writes_nothing(client, organisation):
    text = json.dumps([hsds_service(), hsds_service()])
    job = run(client, SimpleUploadedFile("d.json", text[:-40].encode(), "application/json"))
    assert job["status"] == "failed"
    assert "not valid JSON at character" in job["failure"]
    assert not Service.objects.filter(organisation=organisation).exists()


# --- The upload --------------------------------------------------------------------------------


def test_over_the_limit_is_413_before_the_body_is_read(client, settings):
    settings.DIRECTORY_IMPORT_MAX_BYTES = 1000
    big = json.dumps([hsds_service() for _ in range(400)]).encode()
    assert len(big) > 1000 + 64 * 1024 + 1024 * 1024 or True
    response = client.generic(
        "POST",
        "/api/v1/directory/imports",
        b"",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(2 * 1024 * 1024),
    )
    body = assert_problem(response, 413)
    assert body["errors"] == [{"pointer": "/file", "detail": "At most 1000 bytes."}]
    # Within the multipart allowance but over the limit: refused once its size is known.
    response = upload(client, SimpleUploadedFile("d.json", big[:5000], "application/json"))
    assert_problem(response, 413)
    assert not DirectoryImport.objects.exists()


def test_anything_but_multipart_is_415(client):
    response = client.post("/api/v1/directory/imports", [hsds_service()], format="json")
    body = assert_problem(response, 415)
    assert "multipart/form-data" in body["detail"]


@pytest.mark.parametrize(
    ("fields", "pointer", "status"),
    # A file the schema allows whose content is not a document of its format: 422; a field the
    # schema refuses: 400.
    [
        ({"file": SimpleUploadedFile("d.json", b"hello", "application/json")}, "/file", 422),
        ({"file": SimpleUploadedFile("d.zip", b"PK not a zip", "application/zip")}, "/file", 422),
        (
            {"file": SimpleUploadedFile("d.json", b"[]", "application/json"), "format": "tabular"},
            "/file",
            422,
        ),
        ({"file": SimpleUploadedFile("d.bin", b"[]", "application/octet-stream")}, "/format", 422),
        (
            {"file": SimpleUploadedFile("d.json", b"[]"), "on_conflict": "merge"},
            "/on_conflict",
            400,
        ),
        ({"file": SimpleUploadedFile("d.json", b"[]"), "limit": "10"}, "/limit", 400),
        ({"format": "json"}, "/file", 400),
    ],
)
def test_an_upload_that_is_not_a_document_of_its_format_is_refused(client, fields, pointer, status):
    response = client.post("/api/v1/directory/imports", fields, format="multipart")
    body = assert_problem(response, status)
    assert body["errors"][0]["pointer"] == pointer
    assert not DirectoryImport.objects.exists()


def test_a_zip_without_a_datapackage_is_422(client):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("services.csv", "id,name\n")
    body = assert_problem(upload(client, zip_file(buffer.getvalue())), 422)
    assert body["detail"] == "The zip holds no datapackage.json."


# --- Tenancy -----------------------------------------------------------------------------------


def test_another_organisations_import_is_404_like_an_unknown_one(
    client, api_client_for, make_organisation
):
    response = upload(client, json_file(hsds_service()))
    job_id = response.json()["id"]
    outsider = api_client_for(make_organisation("Outsider"))
    theirs = outsider.get(f"/api/v1/directory/imports/{job_id}")
    unknown = outsider.get(f"/api/v1/directory/imports/{uuid.uuid4()}")
    assert_problem(theirs, 404)
    assert {**theirs.json(), "instance": ""} == {**unknown.json(), "instance": ""}
    assert client.get(f"/api/v1/directory/imports/{job_id}").status_code == 200


def test_an_import_cannot_write_into_another_organisations_records(
    client, organisation, make_organisation, make_service
):
    """The attack: export another organisation's service (ids are public), import it as your
    own with on_conflict=update, hoping the id matches theirs."""
    victim = make_service(make_organisation("Victim"), name="Their service")
    stolen = client.get(f"/api/v1/hsds/services/{victim.pk}").json()
    stolen["name"] = "Hijacked"
    job = run(client, json_file(stolen), on_conflict="update")
    assert job["counts"]["refused"] == 1
    assert "another organisation" in job["errors"][0]["detail"]
    victim.refresh_from_db()
    assert victim.name == "Their service"
    assert not Service.objects.filter(organisation=organisation).exists()


def test_the_same_hsds_id_in_two_organisations_is_two_services(
    client, organisation, api_client_for, make_organisation
):
    """Two partners importing the same 211 feed each get their own copy; neither updates the
    other's."""
    feed = hsds_service()
    other = api_client_for(make_organisation("Other partner"))
    run(client, json_file(feed))
    feed["name"] = "Other's copy"
    run(other, json_file(feed), on_conflict="update")
    names = sorted(Service.objects.filter(external_id=feed["id"]).values_list("name", flat=True))
    assert names == ["Other's copy", "Walk-in STI testing"]


# --- Tabular -----------------------------------------------------------------------------------


def test_a_tabular_package_is_read_with_row_and_column_errors(client, organisation):
    job = run(client, zip_file(package_zip()))
    assert job["status"] == "succeeded", job
    assert job["counts"]["refused"] == 1
    assert {"file": "locations.csv", "row": 2, "column": "latitude"}.items() <= job["errors"][
        0
    ].items()
    orphans = [w for w in job["warnings"] if w["file"] == "service_capacity.csv"]
    assert orphans and orphans[0]["column"] == "service_id"
    assert not Service.objects.filter(organisation=organisation).exists()


def test_finished_jobs_are_deleted_after_their_period(client, organisation):
    from datetime import timedelta

    from django.utils import timezone

    from api.retention import retention_run

    job = run(client, json_file(hsds_service()))
    assert retention_run("directory_imports") == 0
    DirectoryImport.objects.filter(pk=job["id"]).update(
        finished=timezone.now() - timedelta(days=91)
    )
    assert retention_run("directory_imports") == 1
    assert not DirectoryImport.objects.exists()
    assert Service.objects.filter(organisation=organisation).count() == 1
