"""Validation of HSDS documents against the vendored schemas (partners/hsds/), every `$ref`
resolved from local files, formats checked: each HSDS route's response against the schema the
HSDS API reference (`openapi.json`) names for it, the compiled ones included."""

import gzip
import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HSDS = Path(__file__).resolve().parents[2] / "partners" / "hsds"
UPSTREAM = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
OPENAPI = "urn:hsds:openapi.json"
# The reference points this path at compiled/service.json while describing a nested
# service_at_location, which is what it returns (see partners/hsds/README.md).
OVERRIDES = {"/service_at_locations/{id}": {"$ref": f"{UPSTREAM}compiled/service_at_location.json"}}


def _load(path: Path):
    if path.suffix == ".gz":
        return json.loads(gzip.decompress(path.read_bytes()))
    return json.loads(path.read_text())


@cache
def registry() -> Registry:
    """Each vendored file under the URL upstream publishes it at, so relative `$ref`s
    (`"location.json"`) and the API's absolute ones resolve here, never on the network."""

    def resource(path: Path) -> Resource:
        return Resource.from_contents(_load(path), default_specification=DRAFT202012)

    pairs = [(UPSTREAM + path.name, resource(path)) for path in (HSDS / "schema").glob("*.json")]
    for path in (HSDS / "compiled").iterdir():
        name = path.name.removesuffix(".gz")
        pairs.append((f"{UPSTREAM}compiled/{name}", resource(path)))
    pairs.append((OPENAPI, resource(HSDS / "openapi.json")))
    return Registry().with_resources(pairs)


def response_schema(path: str) -> dict:
    """The HSDS API's own response schema for a path, with its `#/components` refs made
    absolute against the vendored openapi.json."""
    if path in OVERRIDES:
        return OVERRIDES[path]
    api = registry().contents(OPENAPI)
    schema = api["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return json.loads(json.dumps(schema).replace('"#/components/', f'"{OPENAPI}#/components/'))


@cache
def validator(path: str) -> Draft202012Validator:
    return Draft202012Validator(
        response_schema(path),
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def validate(path: str, document: dict) -> None:
    errors = sorted(validator(path).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
