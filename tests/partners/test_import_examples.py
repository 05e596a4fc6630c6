"""The HSDS examples (copied from ../shared/hsds-3.1/examples into partners/hsds/examples), JSON and
tabular, imported through the API and through `manage.py import_hsds`.

Upstream's examples carry placeholder values that this network refuses by rule: a latitude of
100 and a capacity of 12 available out of a maximum of 10. Imported as they are, each is refused
with exactly those errors; with those two values made real, everything else lands."""

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from partners.imports.services import import_run
from partners.models import Organisation, Service
from tests.partners.imports import EXAMPLES, HSDS, json_file, package_zip, upload, zip_file

pytestmark = pytest.mark.django_db

EXAMPLE_ID = "ac148810-d857-441c-9679-408f346de14b"


def run(client, file, **fields) -> dict:
    response = upload(client, file, **fields)
    assert response.status_code == 202, response.content
    import_run(response.json()["id"])
    return client.get(f"/api/v1/directory/imports/{response.json()['id']}").json()


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def made_real(service: dict) -> dict:
    service["service_at_locations"][0]["location"]["latitude"] = 10
    service["capacities"][0]["available"] = 8
    return service


def test_the_json_example_is_refused_for_its_placeholders_only(client, organisation):
    job = run(client, json_file(example("service_full.json")))
    assert job["counts"] == {"created": 0, "updated": 0, "skipped": 0, "refused": 1}
    assert [(e["pointer"], e["detail"]) for e in job["errors"]] == [
        ("/service_at_locations/0/location/latitude", "Out of range: must be between -90 and 90."),
        ("/capacities/0/available", "Must not be above maximum (10)."),
    ]
    assert job["warnings"][0]["pointer"] == "/capacities/0/unit/name"
    assert job["unmapped_terms"] == [
        {"taxonomy": "taxonomy", "code": "code", "name": "name", "count": 1}
    ]
    assert not Service.objects.exists()


def test_the_json_example_made_real_is_imported(client, organisation):
    mapping = io.BytesIO(json.dumps({"taxonomy": {"code": "mental-health"}}).encode())
    mapping.name = "mapping.json"
    job = run(client, json_file(made_real(example("service_full.json"))), taxonomy_mapping=mapping)
    assert job["counts"]["created"] == 1 and job["errors"] == []
    service = Service.objects.get(external_id=EXAMPLE_ID)
    assert service.organisation == organisation
    assert service.name == "Community Counselling"
    assert (service.minimum_age, service.maximum_age) == (12, 100)
    assert service.languages == ["ur"]
    assert service.taxonomy_codes == ["mental-health"]
    location = service.locations.get()
    assert (location.name, location.latitude, location.longitude) == (
        "MyCity Civic Center",
        10,
        101,
    )
    assert (location.address_1, location.city, location.region) == (
        "1-30 Main Street",
        "MyCity",
        "MyState",
    )
    # TH,FR 10:00–18:00 from the service-at-location and from the location's own schedules.
    assert sorted(location.schedules.values_list("weekday", "opens_at")) == sorted(
        [(4, location.schedules.first().opens_at), (5, location.schedules.first().opens_at)] * 2
    )
    assert str(location.schedules.first().opens_at) == "10:00:00"


def test_the_organization_example_through_the_command(tmp_path):
    document = example("organization_full.json")
    made_real(document["services"][0])
    path = tmp_path / "organization.json"
    path.write_text(json.dumps(document))
    out = io.StringIO()
    call_command("import_hsds", str(path), stdout=out)
    text = out.getvalue()
    assert "succeeded" in text and "created" in text
    organisation = Organisation.objects.get(external_id=document["id"])
    assert (organisation.name, organisation.email) == (
        "Example Organization Inc.",
        "email@example.com",
    )
    assert list(organisation.services.values_list("external_id", flat=True)) == [EXAMPLE_ID]


def package_folder(tmp_path, latitude="100") -> Path:
    folder = tmp_path / "package"
    folder.mkdir()
    for path in (EXAMPLES / "tabular").glob("*.csv"):
        shutil.copy(path, folder / path.name)
    shutil.copy(HSDS / "datapackage.json", folder / "datapackage.json")
    rows = list(csv.DictReader(io.StringIO((folder / "locations.csv").read_text())))
    rows[0]["latitude"] = latitude
    with open(folder / "locations.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_the_tabular_example_is_refused_for_its_placeholder_only(client, organisation):
    job = run(client, zip_file(package_zip()))
    assert job["format"] == "tabular"
    assert job["counts"]["refused"] == 1
    assert [(e["file"], e["row"], e["column"], e["detail"]) for e in job["errors"]] == [
        ("locations.csv", 2, "latitude", "Out of range: must be between -90 and 90.")
    ]
    # Upstream's capacity and attribute rows name a service the package does not have.
    assert {(w["file"], w["column"]) for w in job["warnings"]} == {
        ("service_capacity.csv", "service_id"),
        ("attributes.csv", "link_id"),
    }


def test_the_tabular_example_made_real_through_the_command(tmp_path):
    folder = package_folder(tmp_path, latitude="10")
    out = io.StringIO()
    call_command("import_hsds", str(folder), "--dry-run", stdout=out)
    assert "dry run" in out.getvalue()
    assert not Service.objects.exists()
    call_command("import_hsds", str(folder), stdout=out)
    service = Service.objects.get(external_id=EXAMPLE_ID)
    assert service.organisation.external_id == "d9d5e0f5-d3ce-4f73-9a2f-4dd0ecc6c610"
    assert service.organisation.phone == '"+44 1234 234567"'
    location = service.locations.get()
    assert (location.latitude, location.postal_code) == (10, "ABC 1234")
    assert sorted(location.schedules.values_list("weekday", flat=True)) == [4, 5]
    assert service.languages == ["ur"]


def test_the_command_for_one_organisation_and_its_refusals(tmp_path, make_organisation):
    owner = make_organisation("Owner")
    path = tmp_path / "service.json"
    path.write_text(json.dumps(made_real(example("service_full.json"))))
    out = io.StringIO()
    call_command("import_hsds", str(path), "--organisation", str(owner.pk), stdout=out)
    assert Service.objects.get().organisation == owner
    broken = tmp_path / "broken.json"
    broken.write_text("[{]")
    with pytest.raises(CommandError, match="failed"):
        call_command("import_hsds", str(broken), stdout=io.StringIO())
    with pytest.raises(CommandError, match="No organisation"):
        call_command("import_hsds", str(path), "--organisation", str(path.stat().st_ino))
