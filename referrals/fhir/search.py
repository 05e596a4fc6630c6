"""FHIR search parameters over the selectors' querysets, and searchset paging.

Strict by default, as the REST API's filters are: an unknown parameter, a modifier or a value
that cannot be read is a 400 naming it, unless the client sends `Prefer: handling=lenient`
(FHIR's way to ask for unknown parameters to be ignored). Pages follow the REST lists' cursor
pagination (api.pagination), with FHIR's `_count` for the page size."""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from api.pagination import CursorPagination
from referrals.fhir.errors import Malformed
from referrals.fhir.reading import UUID

CONTROL = frozenset({"_count", "_cursor", "_format"})


def bad(name: str, detail: str) -> Malformed:
    return Malformed(
        f"The search parameter {name} cannot be used as sent.",
        errors=[{"expression": name, "detail": detail}],
    )


@dataclass(frozen=True)
class Parameter:
    """One search parameter: its FHIR type, what it searches, and how (values are every
    occurrence of it, each possibly comma-separated; occurrences AND, commas OR)."""

    name: str
    type: str
    documentation: str
    apply: Callable[[str, list[str]], Q]


def _split(values: list[str]) -> list[list[str]]:
    return [[part.strip() for part in value.split(",") if part.strip()] for value in values]


def _any_of(lookup: str, values_of: Callable[[str, str], list]) -> Callable[[str, list[str]], Q]:
    """Each occurrence's comma-separated values OR into one `lookup` (`field__in`, say), and the
    occurrences AND. `values_of(name, value)` gives the field values one value stands for."""

    def apply(name: str, values: list[str]) -> Q:
        q = Q()
        for group in _split(values):
            q &= Q(**{lookup: [found for value in group for found in values_of(name, value)]})
        return q

    return apply


def _code(name: str, value: str, system: str | None) -> str:
    """The code of a token value, `code` or `system|code` (an empty system allowed)."""
    given_system, _, code = value.rpartition("|")
    if "|" in value and given_system not in ("", system):
        raise bad(name, f"Codes here are of {system}.")
    return code


def ids(field: str) -> Callable[[str, list[str]], Q]:
    def values_of(name: str, value: str) -> list:
        try:
            return [uuid.UUID(value)]
        except ValueError:
            raise bad(name, "Ids here are UUIDs.") from None

    return _any_of(f"{field}__in", values_of)


def references(field: str, resource_type: str) -> Callable[[str, list[str]], Q]:
    """`Type/id`, an absolute URL ending in it, or the bare id."""

    def values_of(name: str, value: str) -> list:
        match = re.fullmatch(rf"(?:(?:.*/)?{resource_type}/)?({UUID})", value)
        if match is None:
            raise bad(name, f"Give {resource_type}/<id>.")
        return [uuid.UUID(match.group(1))]

    return _any_of(f"{field}__in", values_of)


def tokens(field: str, mapping: Callable[[str], list], system: str | None = None):
    """Token values (optionally `system|code`) through `mapping` to the field's values; an
    unknown code is a 400 (a misspelt status must not read as 'no matches')."""

    def values_of(name: str, value: str) -> list:
        code = _code(name, value, system)
        mapped = mapping(code)
        if not mapped:
            raise bad(name, f"Unknown code {code!r}.")
        return mapped

    return _any_of(f"{field}__in", values_of)


def overlapping(field: str, system: str) -> Callable[[str, list[str]], Q]:
    """Token values matched against an array field: any of them."""
    return _any_of(f"{field}__overlap", lambda name, value: [_code(name, value, system)])


def starts_with(field: str) -> Callable[[str, list[str]], Q]:
    def apply(name: str, values: list[str]) -> Q:
        q = Q()
        for group in _split(values):
            alternatives = Q()
            for value in group:
                alternatives |= Q(**{f"{field}__istartswith": value})
            q &= alternatives
        return q

    return apply


PREFIXES = ("eq", "gt", "lt", "ge", "le")
PRECISION = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def _date_range(name: str, text: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date value covers: [start, end) at its precision."""
    if PRECISION.match(text):
        parts = [int(part) for part in text.split("-")]
        year, month, day = parts + [1] * (3 - len(parts))
        try:
            start = datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            raise bad(name, "Not a date.") from None
        if len(parts) == 1:
            end = start.replace(year=year + 1)
        elif len(parts) == 2:
            end = (start + timedelta(days=32)).replace(day=1)
        else:
            end = start + timedelta(days=1)
        return start, end
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        day = parse_date(text) if moment is None else None
        if day is None:
            raise bad(name, "A date (YYYY, YYYY-MM, YYYY-MM-DD) or a time with its zone.")
        moment = datetime.combine(day, time(), tzinfo=UTC)
    return moment, moment + timedelta(microseconds=1)


def dates(field: str) -> Callable[[str, list[str]], Q]:
    def apply(name: str, values: list[str]) -> Q:
        q = Q()
        for value in values:
            prefix = value[:2] if value[:2] in PREFIXES else "eq"
            start, end = _date_range(name, value[2:] if value[:2] in PREFIXES else value)
            q &= {
                "eq": Q(**{f"{field}__gte": start, f"{field}__lt": end}),
                "gt": Q(**{f"{field}__gte": end}),
                "ge": Q(**{f"{field}__gte": start}),
                "lt": Q(**{f"{field}__lt": start}),
                "le": Q(**{f"{field}__lt": end}),
            }[prefix]
        return q

    return apply


def narrowed(request, queryset: QuerySet, parameters: tuple[Parameter, ...]) -> QuerySet:
    """The queryset filtered by the request's search parameters."""
    known = {parameter.name: parameter for parameter in parameters}
    lenient = "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")
    q = Q()
    for name, values in request.query_params.lists():
        if name in CONTROL:
            continue
        parameter = known.get(name)
        if parameter is None:
            if lenient:
                continue
            supported = ", ".join(sorted(known)) or "none"
            raise bad(
                name, f"Not a search parameter of this resource here (supported: {supported})."
            )
        if any(value == "" for value in values):
            raise bad(name, "An empty value.")
        q &= parameter.apply(name, values)
    return queryset.filter(q)


class Pages(CursorPagination):
    """The REST lists' cursor pagination, named as FHIR names a page size."""

    cursor_query_param = "_cursor"
    page_size_query_param = "_count"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and (not raw.isdigit() or int(raw) < 1):
            raise bad("_count", "A positive integer.")
        return super().get_page_size(request)
