"""The facade's refusals. Each carries FHIRPath expressions instead of JSON pointers, so the
OperationOutcome can name the element (see http.operation_outcome)."""

from api.errors import DomainError


class Malformed(DomainError):
    """Not valid FHIR, or not the shape this facade reads (FHIR: 400)."""

    status = 400
    code = "fhir-invalid"


class Refused(DomainError):
    """Valid FHIR that the network will not take (FHIR: 422, a business rule)."""

    status = 422
    code = "fhir-refused"


class Problems:
    """Collects every issue of a body before answering, so a client fixes them all at once."""

    def __init__(self):
        self.malformed: list[dict] = []
        self.refused: list[dict] = []

    def bad(self, expression: str, detail: str) -> None:
        self.malformed.append({"expression": expression, "detail": detail})

    def refuse(self, expression: str, detail: str) -> None:
        self.refused.append({"expression": expression, "detail": detail})

    def raise_any(self) -> None:
        if self.malformed:
            raise Malformed(
                "The body is not a FHIR resource this server can read; see the issues.",
                errors=self.malformed + self.refused,
            )
        if self.refused:
            raise Refused(
                "The network does not accept parts of this body; see the issues.",
                errors=self.refused,
            )
