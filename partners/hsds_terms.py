"""The HSDS identities the export publishes and the import recognises: stable ids for objects
that have no UUID here, and this network's two published taxonomies (service types, and access
safeguards) with their terms.

HSDS wants a UUID for every object; objects that have no UUID here (taxonomy terms, units,
capacities, schedules) get a stable name-based UUID (RFC 9562 v5), so they do not change between
exports and a second directory can recognise them."""

import uuid
from dataclasses import dataclass

from partners.models import SAFEGUARDS

HSDS_VERSION = "3.1"
HSDS_NAMESPACE = uuid.UUID("5b1c2f0e-3d4a-4c6b-8e9f-0a1b2c3d4e5f")


def stable_id(*parts) -> str:
    return str(uuid.uuid5(HSDS_NAMESPACE, ":".join(str(part) for part in parts)))


@dataclass(frozen=True)
class Taxonomy:
    key: str
    name: str
    description: str
    version: str = "1"

    @property
    def id(self) -> str:
        return stable_id("taxonomy", self.key)


# `srn` is the name the export has always given the service types in `taxonomy_term.taxonomy`.
SERVICE_TYPES = Taxonomy(
    key="srn",
    name="Solidarity Referral Network service types",
    description="What a service offers (STI testing, legal advice, shelter...), with stable "
    "codes; names in nine languages at /api/v1/taxonomy-terms/.",
)
SAFEGUARD_TAXONOMY = Taxonomy(
    key="srn-safeguards",
    name="Solidarity Referral Network access safeguards",
    description="What a person can count on when using a service: no ID asked, no questions "
    "about immigration status, anonymous access, walk-in, sex-worker and trans friendly. An "
    "attribute with one of these terms means the service offers it.",
)
TAXONOMIES = (SERVICE_TYPES, SAFEGUARD_TAXONOMY)

# link_type of the attributes each taxonomy's terms are attached with.
SERVICE_TYPE_LINK = "service_type"
SAFEGUARD_LINK = "access_safeguard"

SAFEGUARD_TERMS = {
    "no_id_required": ("No ID required", "No identity document is asked for."),
    "no_immigration_status_questions": (
        "No immigration status questions",
        "Nobody asks about immigration or residence status.",
    ),
    "anonymous_access": ("Anonymous access", "Can be used without giving a name."),
    "walk_in": ("Walk-in", "No appointment needed."),
    "sex_worker_friendly": (
        "Sex-worker friendly",
        "Staff are trained to serve sex workers without judgement.",
    ),
    "trans_friendly": ("Trans friendly", "Staff are trained to serve trans people with respect."),
}
assert tuple(SAFEGUARD_TERMS) == SAFEGUARDS


def taxonomy_term_id(code: str) -> str:
    """A service type's term id (the export's ids since its first version)."""
    return stable_id("taxonomy_term", code)


def safeguard_term_id(name: str) -> str:
    return stable_id("taxonomy_term", SAFEGUARD_TAXONOMY.key, name)
