"""OpenAPI examples of the directory endpoints, kept apart so the views read as code.

One cast tells one story across them: the collective refers to the clinic's walk-in service."""

from drf_spectacular.utils import OpenApiExample

from api.pagination import one_page
from partners.models import SAFEGUARDS

ORGANISATION_EXAMPLE = {
    "id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
    "name": "Clínica Aberta",
    "kind": "clinic",
    "community_led": False,
    "description": "Free, confidential sexual and reproductive health care. No ID asked.",
    "website": "https://clinica.example.org",
    "email": "hello@clinica.example.org",
    "phone": "+351 210 000 000",
    "languages": ["pt", "en", "th", "zh"],
    "region": "Lisboa",
    "verified": True,
    "created": "2026-11-01T09:00:00Z",
    "updated": "2026-11-20T16:30:00Z",
}
CAPACITY_EXAMPLE = {
    "available": 4,
    "maximum": 12,
    "unit": "appointments",
    "description": "Same-day STI testing slots.",
    "accepting_referrals": "open",
    "estimated_wait_days": 0,
    "valid_until": "2026-11-28T20:00:00Z",
}
LOCATION_EXAMPLE = {
    "id": "6a1d1d3e-0a59-4d59-b7a4-9c1c0e6e8f10",
    "name": "Safe house",
    "confidential": True,
    "address_1": None,
    "city": None,
    "postal_code": None,
    "region": "Lisboa",
    "country": "PT",
    "latitude": None,
    "longitude": None,
    "time_zone": "Europe/Lisbon",
    "front_door_contact": "Call +351 210 000 001; we meet you at the metro.",
}
SERVICE_EXAMPLE = {
    "id": "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa",
    "name": "Walk-in STI testing",
    "description": "Rapid HIV, syphilis and hepatitis tests; results in 20 minutes.",
    "status": "active",
    "organisation": {
        "id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
        "name": "Clínica Aberta",
        "kind": "clinic",
        "verified": True,
    },
    "languages": ["pt", "en", "th"],
    "cost": "free",
    **dict.fromkeys(SAFEGUARDS, True),
}
PARTNERSHIP_EXAMPLE = {
    "id": "9d3c1c7e-2f7b-4c55-8d0b-3a7f0f6c2b11",
    "proposer": {
        "id": "5e2b7f4c-8a1d-4e3f-9b6c-7d8e9f0a1b2c",
        "name": "Red Umbrella Collective",
        "kind": "sex_worker_led",
        "verified": True,
    },
    "partner": {
        "id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
        "name": "Clínica Aberta",
        "kind": "clinic",
        "verified": True,
    },
    "status": "active",
    "data_categories": ["contact", "health", "notes"],
    "purposes": ["Referral for sexual health care"],
    "suspended_by": None,
    "created": "2026-11-20T10:00:00Z",
    "updated": "2026-11-21T09:12:00Z",
}
SEARCH_EXAMPLE = {
    "next": None,
    "previous": None,
    "results": [
        {
            **SERVICE_EXAMPLE,
            "taxonomy": [
                {"code": "sti-testing", "name": "STI testing"},
                {"code": "hiv-prep-pep", "name": "HIV PrEP/PEP"},
            ],
            "capacity": {
                **{k: v for k, v in CAPACITY_EXAMPLE.items() if k != "description"},
                "updated": "2026-11-28T09:40:00Z",
                "stale": False,
            },
            "distance_km": 3.0,
            "locations": [{**LOCATION_EXAMPLE, "distance_km": 3.0}],
        }
    ],
}


def a_page(item: dict) -> list[OpenApiExample]:
    """A list's answer: one item in the envelope every list has."""
    return [OpenApiExample("A page", value=one_page([item]), response_only=True)]


ME = [
    OpenApiExample(
        "A clinic's token",
        value={
            "organisation": {
                "id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
                "name": "Clínica Aberta",
                "kind": "clinic",
                "community_led": True,
                "region": "Lisboa",
                "verified": True,
            },
            "client_id": "demo-clinic",
            "scopes": ["directory:read", "referrals:read"],
            "token_expires": "2026-11-28T10:15:00Z",
        },
        response_only=True,
    )
]

ORGANISATION_LIST = a_page(ORGANISATION_EXAMPLE)
ORGANISATION = [OpenApiExample("A clinic", value=ORGANISATION_EXAMPLE, response_only=True)]
ORGANISATION_UPDATE = [
    OpenApiExample(
        "New languages",
        value={"languages": ["pt", "en", "th", "zh", "tl"]},
        request_only=True,
    ),
    OpenApiExample("Result", value=ORGANISATION_EXAMPLE, response_only=True),
]

TAXONOMY_TERMS = [
    OpenApiExample(
        "In Spanish",
        value=one_page([{"code": "sti-testing", "name": "Pruebas de ITS", "description": ""}]),
        response_only=True,
    )
]

SERVICE_LIST = [OpenApiExample("Near, in Thai", value=SEARCH_EXAMPLE, response_only=True)]
SERVICE_CREATE = [
    OpenApiExample(
        "Walk-in testing",
        value={
            "name": "Walk-in STI testing",
            "taxonomy": ["sti-testing"],
            "languages": ["pt", "en", "th"],
            "cost": "free",
            "no_id_required": True,
            "walk_in": True,
            "locations": [
                {
                    "name": "Clinic",
                    "address_1": "Rua da Palma 1",
                    "city": "Lisboa",
                    "country": "PT",
                    "latitude": 38.7169,
                    "longitude": -9.1399,
                    "time_zone": "Europe/Lisbon",
                    "schedules": [{"weekday": 1, "opens_at": "10:00", "closes_at": "18:00"}],
                }
            ],
        },
        request_only=True,
    )
]
SERVICE_SEARCH = [
    OpenApiExample(
        "Abortion care in Thai near Lisbon",
        value={
            "taxonomy": ["abortion-reproductive-care"],
            "language": "th",
            "near": "38.7223,-9.1393",
            "radius_km": 10,
            "accepting": ["open", "limited"],
            "no_immigration_status_questions": True,
        },
        request_only=True,
    ),
    OpenApiExample("Results", value=SEARCH_EXAMPLE, response_only=True),
]
SERVICE_DETAIL = [
    OpenApiExample(
        "Seen by a non-partner",
        value={
            **SERVICE_EXAMPLE,
            "taxonomy": [{"code": "sti-testing", "name": "STI testing"}],
            "capacity": {
                **CAPACITY_EXAMPLE,
                "version": 3,
                "updated": "2026-11-28T09:40:00Z",
                "stale": False,
            },
            "locations": [{**LOCATION_EXAMPLE, "schedules": []}],
            "created": "2026-11-01T09:00:00Z",
            "updated": "2026-11-28T09:40:00Z",
        },
        response_only=True,
    )
]
SERVICE_UPDATE = [
    OpenApiExample(
        "Add a language", value={"languages": ["pt", "en", "th", "ru"]}, request_only=True
    )
]
SERVICE_DEACTIVATE = [
    OpenApiExample(
        "Deactivated",
        value={
            **SERVICE_EXAMPLE,
            "status": "inactive",
            "taxonomy": [{"code": "sti-testing", "name": "STI testing"}],
            "capacity": None,
            "locations": [],
            "created": "2026-11-01T09:00:00Z",
            "updated": "2026-11-28T09:40:00Z",
        },
        response_only=True,
    )
]

CAPACITY = [
    OpenApiExample(
        "Open",
        value={
            **CAPACITY_EXAMPLE,
            "version": 3,
            "updated": "2026-11-28T09:40:00Z",
            "stale": False,
        },
        response_only=True,
    )
]
CAPACITY_UPDATE = [OpenApiExample("Four slots", value=CAPACITY_EXAMPLE, request_only=True)]
CAPACITY_HISTORY = a_page(
    {
        "id": 42,
        "available": 4,
        "maximum": 12,
        "unit": "appointments",
        "accepting_referrals": "open",
        "estimated_wait_days": 0,
        "valid_until": "2026-11-28T20:00:00Z",
        "version": 3,
        "recorded": "2026-11-28T09:40:00Z",
    }
)
CAPACITY_BULK = [
    OpenApiExample(
        "Two services",
        value={
            "items": [
                {"service_id": "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa", **CAPACITY_EXAMPLE},
                {
                    "service_id": "8c6d1f0b-1e2a-4b3c-9d4e-5f6a7b8c9d0e",
                    "available": 0,
                    "unit": "beds",
                    "accepting_referrals": "waitlist",
                    "estimated_wait_days": 5,
                },
            ]
        },
        request_only=True,
    ),
    OpenApiExample(
        "Applied",
        value={
            "updated": [
                {"service_id": "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa", "version": 4},
                {"service_id": "8c6d1f0b-1e2a-4b3c-9d4e-5f6a7b8c9d0e", "version": 9},
            ]
        },
        response_only=True,
    ),
]

PARTNERSHIP_LIST = a_page(PARTNERSHIP_EXAMPLE)
PARTNERSHIP_PROPOSE = [
    OpenApiExample(
        "Proposal",
        value={
            "partner_id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
            "data_categories": ["contact", "health", "notes"],
            "purposes": ["Referral for sexual health care"],
        },
        request_only=True,
    ),
    OpenApiExample(
        "Proposed", value={**PARTNERSHIP_EXAMPLE, "status": "proposed"}, response_only=True
    ),
]
PARTNERSHIP = [OpenApiExample("Active", value=PARTNERSHIP_EXAMPLE, response_only=True)]
PARTNERSHIP_ACTION = [OpenApiExample("Result", value=PARTNERSHIP_EXAMPLE, response_only=True)]
