"""The demo network `make run` seeds: a few organisations that partner with each other.
Idempotent: organisations are found by name, so a second run adds nothing."""

import json
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction

from partners.models import Application, Organisation
from partners.services import application_create, application_rotate_secret

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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials, indent=2))
    os.chmod(path, 0o600)
    return credentials
