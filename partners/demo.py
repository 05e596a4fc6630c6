"""The demo network `make run` seeds: a few organisations that partner with each other.
Idempotent: organisations are found by name, so a second run adds nothing."""

import json
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction

from partners.models import (
    OPEN_PARTNERSHIP_STATUSES,
    SAFEGUARDS,
    Application,
    Organisation,
    Partnership,
    PartnershipStatus,
    Service,
)
from partners.services import application_create, application_rotate_secret, service_create

DEMO_ORGANISATIONS = [
    {
        "client_id": "demo-collective",
        "name": "Red Umbrella Collective",
        "kind": "sex_worker_led",
        "community_led": True,
        "region": "Lisboa",
        "languages": ["pt", "es", "en", "ro"],
        "description": "Peer support, outreach and harm reduction run by sex workers.",
    },
    {
        "client_id": "demo-migrant-rights",
        "name": "Sin Fronteras Migrant Rights",
        "kind": "immigrant_rights",
        "community_led": True,
        "region": "Lisboa",
        "languages": ["es", "pt", "en", "tl"],
        "description": "Know-your-rights sessions, accompaniment and interpretation.",
    },
    {
        "client_id": "demo-clinic",
        "name": "Clínica Aberta",
        "kind": "clinic",
        "community_led": False,
        "region": "Lisboa",
        "languages": ["pt", "en", "th", "zh"],
        "description": "Free, confidential sexual and reproductive health care. No ID asked.",
    },
    {
        "client_id": "demo-legal",
        "name": "Defensa Legal Solidaria",
        "kind": "legal_aid",
        "community_led": False,
        "region": "Lisboa",
        "languages": ["es", "pt", "fr", "en"],
        "description": "Free criminal and immigration legal advice.",
    },
]


WEEKDAYS = (1, 2, 3, 4, 5)
EVERY_SAFEGUARD = dict.fromkeys(SAFEGUARDS, True)


def _safeguards(*names: str) -> dict:
    """The access safeguards a demo service offers, as its boolean fields."""
    return dict.fromkeys(names, True)


# Where the demo services are: real Lisbon neighbourhoods, invented addresses.
DEMO_PLACES = {
    "Intendente drop-in": ("Largo do Intendente 10", 38.7214, -9.1354),
    "Safe house": ("Rua Invented 1", 38.7402, -9.1290),
    "Martim Moniz office": ("Rua da Palma 200", 38.7167, -9.1366),
    "Arroios clinic": ("Avenida Almirante Reis 100", 38.7330, -9.1350),
    "Baixa office": ("Rua dos Fanqueiros 50", 38.7105, -9.1370),
}


def _hours(days, opens, closes) -> list[dict]:
    return [{"weekday": day, "opens_at": opens, "closes_at": closes} for day in days]


def _place(name, days, opens, closes, **extra) -> dict:
    address, lat, lon = DEMO_PLACES[name]
    return {
        "name": name,
        "address_1": address,
        "city": "Lisboa",
        "region": "Lisboa",
        "country": "PT",
        "latitude": lat,
        "longitude": lon,
        "time_zone": "Europe/Lisbon",
        "schedules": _hours(days, opens, closes),
        **extra,
    }


# Services by organisation name: what each demo organisation offers, where (DEMO_PLACES) and
# when, and its current capacity. A service speaks its organisation's languages unless it says.
DEMO_SERVICES = {
    "Red Umbrella Collective": [
        {
            "name": "Peer support drop-in",
            "description": "Coffee, peer support, condoms and harm reduction supplies, no "
            "questions asked.",
            "taxonomy": ["peer-support", "harm-reduction-supplies"],
            **EVERY_SAFEGUARD,
            "locations": [_place("Intendente drop-in", WEEKDAYS, "14:00", "20:00")],
            "capacity": {"available": 10, "maximum": 15, "unit": "places"},
        },
        {
            "name": "Emergency safe house",
            "description": "Short stays for sex workers escaping violence. Call first.",
            "taxonomy": ["emergency-shelter", "safe-reporting-violence"],
            "languages": ["pt", "es", "en"],
            **_safeguards(
                "no_id_required",
                "no_immigration_status_questions",
                "sex_worker_friendly",
                "trans_friendly",
            ),
            "locations": [
                _place(
                    "Safe house",
                    (1, 2, 3, 4, 5, 6, 7),
                    "00:00",
                    "23:59",
                    confidential=True,
                    front_door_contact="Call +351 210 000 101; we meet you at Arroios metro.",
                )
            ],
            "capacity": {
                "available": 2,
                "maximum": 6,
                "unit": "beds",
                "accepting_referrals": "limited",
            },
        },
    ],
    "Sin Fronteras Migrant Rights": [
        {
            "name": "Know-your-rights and accompaniment",
            "description": "Immigration advice and someone to go with you to appointments.",
            "taxonomy": ["legal-aid-immigration", "interpretation"],
            **_safeguards("no_immigration_status_questions", "walk_in"),
            "locations": [_place("Martim Moniz office", (2, 4), "10:00", "17:00")],
            "capacity": {"available": 5, "maximum": 20, "unit": "cases"},
        },
    ],
    "Clínica Aberta": [
        {
            "name": "Walk-in STI testing and PrEP",
            "description": "Rapid HIV, syphilis and hepatitis tests; PrEP and PEP starts.",
            "taxonomy": ["sti-testing", "hiv-prep-pep"],
            **EVERY_SAFEGUARD,
            "locations": [_place("Arroios clinic", (1, 2, 3, 4, 5, 6), "09:00", "19:00")],
            "capacity": {"available": 8, "maximum": 30, "unit": "appointments"},
        },
        {
            "name": "Contraception and abortion care",
            "description": "Contraception, abortion care and follow-up, confidential.",
            "taxonomy": ["contraception", "abortion-reproductive-care"],
            **_safeguards("no_id_required", "no_immigration_status_questions", "trans_friendly"),
            "locations": [_place("Arroios clinic", WEEKDAYS, "09:00", "17:00")],
            "capacity": {
                "available": 3,
                "maximum": 10,
                "unit": "appointments",
                "accepting_referrals": "limited",
                "estimated_wait_days": 2,
            },
        },
    ],
    "Defensa Legal Solidaria": [
        {
            "name": "Criminal defence and labour rights advice",
            "description": "Free advice after an arrest, a raid or unpaid wages.",
            "taxonomy": ["legal-aid-criminal", "labour-rights"],
            **_safeguards("no_immigration_status_questions", "sex_worker_friendly"),
            "locations": [_place("Baixa office", (1, 3), "10:00", "16:00")],
            "capacity": {
                "available": 0,
                "maximum": 10,
                "unit": "cases",
                "accepting_referrals": "waitlist",
                "estimated_wait_days": 7,
            },
        },
    ],
}

# Every pair of demo organisations works together, each agreement allowing what that kind of
# referral needs.
DEMO_PARTNERSHIPS = [
    ("Red Umbrella Collective", "Clínica Aberta", ["contact", "health", "notes"]),
    ("Red Umbrella Collective", "Sin Fronteras Migrant Rights", ["contact", "legal", "notes"]),
    ("Red Umbrella Collective", "Defensa Legal Solidaria", ["contact", "legal", "notes"]),
    ("Sin Fronteras Migrant Rights", "Clínica Aberta", ["contact", "health"]),
    ("Sin Fronteras Migrant Rights", "Defensa Legal Solidaria", ["contact", "legal", "notes"]),
    ("Clínica Aberta", "Defensa Legal Solidaria", ["contact", "notes"]),
]


def _seed_services(organisations: dict[str, Organisation]) -> None:
    """Services found by (organisation, name): existing ones are left as their owners keep
    them."""
    languages = {spec["name"]: spec["languages"] for spec in DEMO_ORGANISATIONS}
    for org_name, specs in DEMO_SERVICES.items():
        organisation = organisations[org_name]
        for spec in specs:
            spec = {"languages": languages[org_name], **spec}
            capacity = spec.pop("capacity")
            if Service.objects.filter(organisation=organisation, name=spec["name"]).exists():
                continue
            service_create(organisation=organisation, capacity=capacity, **spec)


def _seed_partnerships(organisations: dict[str, Organisation]) -> None:
    """Seeded as already agreed, without events: no one is subscribed yet."""
    for a_name, b_name, categories in DEMO_PARTNERSHIPS:
        a, b = organisations[a_name], organisations[b_name]
        exists = Partnership.objects.filter(
            proposer__in=[a, b], partner__in=[a, b], status__in=OPEN_PARTNERSHIP_STATUSES
        ).exists()
        if not exists:
            Partnership.objects.create(
                proposer=a,
                partner=b,
                status=PartnershipStatus.ACTIVE,
                data_categories=categories,
                purposes=["Referrals between demo partners"],
            )


def credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


@transaction.atomic
def seed_demo() -> dict[str, dict]:
    """Create what is missing and return the demo credentials (client id → secret, organisation).

    Secrets live only as hashes in the database, so the plaintext is kept in a git-ignored file
    under var/ for the demo; a missing file means the secrets are rotated and written again.
    """
    path = credentials_file()
    known = json.loads(path.read_text()) if path.exists() else {}
    credentials = {}
    for spec in DEMO_ORGANISATIONS:
        spec = dict(spec)
        client_id = spec.pop("client_id")
        organisation, _ = Organisation.objects.get_or_create(
            name=spec["name"], defaults={**spec, "verified": True}
        )
        application = Application.objects.filter(client_id=client_id).first()
        if application is None:
            application, secret = application_create(
                organisation=organisation, scopes=list(settings.SCOPES), client_id=client_id
            )
        elif client_id in known:
            secret = known[client_id]["client_secret"]
        else:
            secret = application_rotate_secret(application=application)
        credentials[client_id] = {
            "organisation": organisation.name,
            "organisation_id": str(organisation.id),
            "client_secret": secret,
        }
    organisations = {
        org.name: org
        for org in Organisation.objects.filter(name__in=[s["name"] for s in DEMO_ORGANISATIONS])
    }
    _seed_services(organisations)
    _seed_partnerships(organisations)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials, indent=2))
    os.chmod(path, 0o600)
    return credentials
