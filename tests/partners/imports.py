"""Helpers for the import tests: HSDS documents to upload, uploads as a partner sends them,
zips of tabular packages, and exports read back through the HSDS API."""

import io
import json
import uuid
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

HSDS = Path(__file__).resolve().parents[2] / "partners" / "hsds"
EXAMPLES = HSDS / "examples"


def hsds_address(address_1: str) -> dict:
    """A physical address in Lisbon as HSDS writes one."""
    return {
        "address_1": address_1,
        "city": "Lisboa",
        "state_province": "Lisboa",
        "postal_code": "1100-001",
        "country": "PT",
        "address_type": "physical",
    }


def hsds_attribute(code: str, name: str, **taxonomy) -> dict:
    """An attribute naming the term `code` and, in `taxonomy`, its taxonomy as the publisher
    names it (`taxonomy="srn"`, or `taxonomy_detail={...}`)."""
    return {
        "id": str(uuid.uuid4()),
        "taxonomy_term": {
            "id": str(uuid.uuid4()),
            "code": code,
            "name": name,
            "description": "",
            **taxonomy,
        },
    }


def hsds_service(name="Walk-in STI testing", **fields) -> dict:
    """A fully nested HSDS service as another directory would publish it."""
    service_id = fields.pop("id", str(uuid.uuid4()))
    location_id = str(uuid.uuid4())
    return {
        "id": service_id,
        "name": name,
        "status": "active",
        "description": "Rapid tests.",
        "minimum_age": 16,
        "languages": [
            {"id": str(uuid.uuid4()), "code": "pt"},
            {"id": str(uuid.uuid4()), "code": "es"},
        ],
        "service_at_locations": [
            {
                "id": str(uuid.uuid4()),
                "location_id": location_id,
                "location": {
                    "id": location_id,
                    "location_type": "physical",
                    "name": "Clinic",
                    "latitude": 38.7169,
                    "longitude": -9.1399,
                    "addresses": [{"id": str(uuid.uuid4()), **hsds_address("Rua da Palma 1")}],
                },
                "schedules": [
                    {
                        "id": str(uuid.uuid4()),
                        "freq": "WEEKLY",
                        "byday": "MO,WE",
                        "opens_at": "10:00",
                        "closes_at": "18:00",
                        "description": "Local time, Europe/Lisbon.",
                    }
                ],
            }
        ],
        "attributes": [hsds_attribute("sti-testing", "STI testing", taxonomy="srn")],
        "capacities": [
            {
                "id": str(uuid.uuid4()),
                "unit": {"id": str(uuid.uuid4()), "name": "appointments"},
                "available": 3,
                "maximum": 10,
                "updated": "2026-11-01T10:00:00Z",
            }
        ],
        **fields,
    }


def json_file(document, name="directory.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, json.dumps(document).encode(), content_type="application/json")


def upload(client, file, **fields):
    return client.post("/api/v1/directory/imports", {"file": file, **fields}, format="multipart")


def package_zip(tables: dict[str, str] | None = None, folder: Path = EXAMPLES / "tabular") -> bytes:
    """A zip of CSV files with HSDS's datapackage.json, as a tabular export is published.
    `tables` replaces or adds files by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(HSDS / "datapackage.json", "datapackage.json")
        files = {path.name: path.read_text() for path in folder.glob("*.csv")}
        files.update(tables or {})
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def zip_file(content: bytes, name="directory.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/zip")


CITIES = [(38.7223, -9.1393), (41.1579, -8.6291), (40.4168, -3.7038), (41.3874, 2.1686)]
LANGUAGES = ["pt", "es", "en", "fr", "ro", "ru", "th", "zh", "tl", "pt-BR"]


def seed_directory(*, services: int, organisations: int, seed: int = 15) -> None:
    """A generated directory in bulk, as large as asked: organisations with services, each with
    a location (one in ten confidential), weekday hours, capacity, types and safeguards."""
    import random
    from datetime import time

    from partners.models import (
        SAFEGUARDS,
        Capacity,
        Location,
        Organisation,
        Schedule,
        Service,
        TaxonomyTerm,
    )

    rng = random.Random(seed)
    codes = sorted(TaxonomyTerm.objects.values_list("code", flat=True))
    owners = Organisation.objects.bulk_create(
        Organisation(
            name=f"Generated {n:05}",
            kind="clinic",
            description=f"Organisation {n}.",
            email=f"contact{n}@example.org" if n % 2 else "",
            website=f"https://org{n}.example.org" if n % 3 else "",
            phone=f"+351 21 {n:07}" if n % 4 else "",
        )
        for n in range(organisations)
    )
    link = Service.taxonomy_terms.through
    rows = {"services": [], "links": [], "locations": [], "schedules": [], "capacities": []}
    for n in range(services):
        terms = sorted(rng.sample(codes, rng.randint(1, 3)))
        service = Service(
            id=uuid.uuid4(),
            organisation=owners[n % organisations],
            name=f"Service {n:05}",
            description="Confidential care, no questions asked.",
            taxonomy_codes=terms,
            languages=rng.sample(LANGUAGES, rng.randint(1, 3)),
            minimum_age=rng.choice([None, 16, 18]),
            eligibility_description=rng.choice(["", "Adults"]),
            **{name: rng.random() < 0.5 for name in SAFEGUARDS},
        )
        rows["services"].append(service)
        rows["links"].extend(link(service_id=service.id, taxonomyterm_id=code) for code in terms)
        city = CITIES[n % len(CITIES)]
        location = Location(
            id=uuid.uuid4(),
            service=service,
            name=f"Site {n}",
            address_1=f"Rua {n}",
            city="Lisboa",
            region="Lisboa",
            postal_code=f"{1000 + n % 900}-{n % 1000:03}",
            country="PT",
            latitude=round(rng.gauss(city[0], 0.1), 6),
            longitude=round(rng.gauss(city[1], 0.1), 6),
            time_zone="Europe/Lisbon",
            confidential=rng.random() < 0.1,
        )
        rows["locations"].append(location)
        opens = rng.choice([8, 9, 14])
        rows["schedules"].extend(
            Schedule(
                location=location, weekday=day, opens_at=time(opens), closes_at=time(opens + 4)
            )
            for day in range(1, rng.randint(2, 6))
        )
        maximum = rng.randint(1, 30)
        rows["capacities"].append(
            Capacity(
                service=service,
                available=rng.randint(0, maximum),
                maximum=maximum,
                unit=rng.choice(["appointments", "beds", "places"]),
            )
        )
    Service.objects.bulk_create(rows["services"], batch_size=2000)
    link.objects.bulk_create(rows["links"], batch_size=5000)
    Location.objects.bulk_create(rows["locations"], batch_size=2000)
    Schedule.objects.bulk_create(rows["schedules"], batch_size=5000)
    Capacity.objects.bulk_create(rows["capacities"], batch_size=5000)
