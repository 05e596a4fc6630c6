"""FHIR structure checks with the `fhir.resources` R4B models (pydantic): the closest to R4 the
package ships (docs/FHIR.md lists where they differ for what this facade uses). Used on every
body the facade reads, before any of it is looked at, and by the tests on everything it writes."""

import functools

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


@functools.cache
def model(resource_type: str):
    return get_fhir_model_class(resource_type)


def expression(resource_type: str, location: tuple) -> str:
    """A pydantic error location as a FHIRPath expression: Bundle.entry[0].resource.status."""
    out = resource_type
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "model_")):
            out += f".{part}"
    return out


def _message(error: dict) -> str:
    """The validator's message, unless it quotes the input (which may be personal data)."""
    message = error.get("msg", "Invalid value.")
    value = error.get("input")
    if isinstance(value, (str, int, float)) and str(value) and str(value) in message:
        return "Invalid value."
    return message


def structure_errors(resource: dict) -> list[dict]:
    """Every structural error of a resource (unknown elements, wrong types, malformed dates,
    missing required elements) as {expression, detail}; empty when it is well formed."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [{"expression": "resourceType", "detail": "resourceType is required."}]
    try:
        cls = model(resource_type)
    except (KeyError, ValueError, AttributeError):
        return [
            {"expression": "resourceType", "detail": f"Unknown resource type {resource_type!r}."}
        ]
    try:
        cls.model_validate(resource)
    except ValidationError as error:
        return [
            {"expression": expression(resource_type, item["loc"]), "detail": _message(item)}
            for item in error.errors(include_url=False)
        ]
    return []
