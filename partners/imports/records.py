"""One HSDS record read into the fields this directory keeps, with what was wrong with it.

An *error* refuses the record and, since an import is all or nothing per organisation, every
record of its organisation: a missing required field, a wrong type, a coordinate out of range,
a term of an unknown taxonomy. A *warning* says what was left out and why, and refuses nothing
(a virtual location, a schedule that is not weekly hours, a capacity unit this network does not
count in). A term of another taxonomy that the import's mapping does not map is *unmapped*:
reported, counted, never guessed.

Issues carry the path to the field inside the record (`("service_at_locations", 0, "location",
"latitude")`); the reader of each format turns it into a JSON pointer or a CSV row and column."""

import re
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import time

import langcodes

from partners.hsds_terms import (
    SAFEGUARD_TAXONOMY,
    SAFEGUARD_TERMS,
    SERVICE_TYPES,
    safeguard_term_id,
    taxonomy_term_id,
)
from partners.models import CapacityUnit, ServiceStatus

WEEKDAYS = {"MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6, "SU": 7}
STATUSES = {
    "active": ServiceStatus.ACTIVE,
    "inactive": ServiceStatus.INACTIVE,
    "defunct": ServiceStatus.DEFUNCT,
    "temporarily closed": ServiceStatus.INACTIVE,
}
TIME_ZONES = frozenset(zoneinfo.available_timezones())
LOCAL_TIME = re.compile(r"^Local time, ([A-Za-z0-9_+\-/]+)\.$")
AGE_MAX = 150
EXTERNAL_ID_MAX = 200


@dataclass
class Issue:
    path: tuple
    detail: str


@dataclass
class Record:
    """What one HSDS record becomes: the values to write, and its issues."""

    external_id: str = ""
    values: dict = field(default_factory=dict)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    unmapped: list[dict] = field(default_factory=list)


class Mapping:
    """The import's taxonomy mapping: (source taxonomy, source code) → this network's code or
    safeguard. A source taxonomy is named by any of its name, id or URI."""

    def __init__(self, entries: dict[str, dict[str, str]]):
        self.entries: dict[str, dict[str, str]] = {}
        for taxonomy, codes in entries.items():
            merged = self.entries.setdefault(taxonomy.casefold(), {})
            merged.update({code.casefold(): target for code, target in codes.items()})

    def target(self, names: list[str], code: str) -> str | None:
        for name in names:
            codes = self.entries.get(name.casefold())
            if codes is not None and code.casefold() in codes:
                return codes[code.casefold()]
        return None


class ServiceReader:
    """Reads HSDS services (and their organizations) against this network's taxonomy."""

    def __init__(self, *, mapping: Mapping, known_codes: frozenset[str]):
        self.mapping = mapping
        self.known_codes = known_codes

    # --- the service ------------------------------------------------------------------------

    def service(self, doc) -> Record:
        record, check = _object_record(doc, "A service")
        if check is None:
            return record
        values = record.values
        values["name"] = check.text(doc, "name", filled=True, max_length=200)
        status = check.text(doc, "status", filled=True)
        if status and status not in STATUSES:
            check.error(("status",), f"Must be one of {', '.join(STATUSES)}.")
        values["status"] = STATUSES.get(status, ServiceStatus.ACTIVE)
        for name in (
            "description",
            "interpretation_services",
            "eligibility_description",
            "fees_description",
        ):
            values[name] = check.text(doc, name)
        for name in ("minimum_age", "maximum_age"):
            values[name] = check.whole(doc, name, maximum=AGE_MAX)
        values["languages"] = self._languages(check, doc)
        values["taxonomy"], safeguards = self._attributes(record, doc)
        values.update({name: name in safeguards for name in SAFEGUARD_TERMS})
        values["locations"] = self._locations(check, doc)
        values["capacity"] = self._capacity(check, doc)
        return record

    def organization(self, doc) -> Record:
        record, check = _object_record(doc, "An organization")
        if check is None:
            return record
        record.values = {
            "name": check.text(doc, "name", filled=True, max_length=200),
            "description": check.text(doc, "description", required=True),
            "email": check.text(doc, "email", max_length=254),
            "website": check.text(doc, "website", max_length=200),
            "phone": "",
        }
        phones = check.objects(doc, "phones")
        if phones:
            record.values["phone"] = Checker(record, ("phones", 0)).text(
                phones[0], "number", max_length=40
            )
        return record

    # --- parts ------------------------------------------------------------------------------

    def _languages(self, check: "Checker", doc: dict) -> list[str]:
        tags = []
        for index, language in enumerate(check.objects(doc, "languages")):
            inner = check.inside("languages", index)
            raw = inner.text(language, "code") or inner.text(language, "name")
            if raw and langcodes.tag_is_valid(raw):
                tag = language_tag(raw)
                if tag not in tags:
                    tags.append(tag)
            elif raw:
                inner.warn(("code",), f"{raw!r} is not a language code; the language was left out.")
        return tags

    def _term(self, check: "Checker", attribute: dict) -> dict | None:
        term = attribute.get("taxonomy_term")
        if isinstance(term, dict):
            return term
        if term is not None:
            check.error(("taxonomy_term",), "Must be an object.")
            return None
        term_id = check.text(attribute, "taxonomy_term_id")
        for code in self.known_codes:
            if term_id == taxonomy_term_id(code):
                return {"code": code, "taxonomy_id": SERVICE_TYPES.id}
        for name in SAFEGUARD_TERMS:
            if term_id == safeguard_term_id(name):
                return {"code": name, "taxonomy_id": SAFEGUARD_TAXONOMY.id}
        check.error(
            ("taxonomy_term_id",),
            "Unknown taxonomy term: it is neither given here nor one of this network's.",
        )
        return None

    def _attributes(self, record: Record, doc: dict) -> tuple[list[str], set[str]]:
        check = Checker(record, ())
        codes, safeguards = [], set()
        for index, attribute in enumerate(check.objects(doc, "attributes")):
            inner = check.inside("attributes", index)
            term = self._term(inner, attribute)
            if term is None:
                continue
            at = inner.inside("taxonomy_term") if "taxonomy_term" in attribute else inner
            code = at.text(term, "code") or at.text(term, "name")
            detail = (
                term.get("taxonomy_detail") if isinstance(term.get("taxonomy_detail"), dict) else {}
            )
            # How the term names its taxonomy, the most readable first.
            names = [
                value
                for value in (
                    term.get("taxonomy"),
                    detail.get("name"),
                    term.get("taxonomy_id"),
                    detail.get("id"),
                    detail.get("uri"),
                )
                if isinstance(value, str) and value
            ]
            if SERVICE_TYPES.id in names or SERVICE_TYPES.key in names:
                target = code
                if target not in self.known_codes:
                    at.error(("code",), f"Unknown taxonomy term {code!r} of {SERVICE_TYPES.name}.")
                    continue
            elif SAFEGUARD_TAXONOMY.id in names or SAFEGUARD_TAXONOMY.key in names:
                target = code
                if target not in SAFEGUARD_TERMS:
                    at.error(("code",), f"Unknown term {code!r} of {SAFEGUARD_TAXONOMY.name}.")
                    continue
            else:
                target = self.mapping.target(names, code or "")
                if target is None:
                    record.unmapped.append(
                        {
                            "taxonomy": names[0] if names else "",
                            "code": code or "",
                            "name": str(term.get("name") or ""),
                        }
                    )
                    continue
            if target in SAFEGUARD_TERMS:
                safeguards.add(target)
            elif target not in codes:
                codes.append(target)
        return sorted(codes), safeguards

    def _locations(self, check: "Checker", doc: dict) -> list[dict]:
        locations = []
        for index, pair in enumerate(check.objects(doc, "service_at_locations")):
            inner = check.inside("service_at_locations", index)
            place = inner.object(pair, "location")
            if place is None:
                inner.warn((), "No location is given: left out.")
                continue
            at = inner.inside("location")
            kind = at.text(place, "location_type", required=True)
            if kind and kind not in ("physical", "postal", "virtual"):
                at.error(("location_type",), "Must be physical, postal or virtual.")
            if kind == "virtual":
                at.warn(("location_type",), "Virtual locations are not kept: left out.")
                continue
            location = {
                "name": at.text(place, "name", max_length=200),
                "latitude": at.number(place, "latitude", -90, 90),
                "longitude": at.number(place, "longitude", -180, 180),
                "address_1": "",
                "city": "",
                "region": "",
                "postal_code": "",
                "country": "",
            }
            if (place.get("latitude") is None) != (place.get("longitude") is None):
                at.error(("latitude",), "Give both latitude and longitude, or neither.")
            addresses = at.objects(place, "addresses")
            if addresses:
                chosen = next(
                    (i for i, a in enumerate(addresses) if a.get("address_type") == "physical"), 0
                )
                address = at.inside("addresses", chosen)
                picked = addresses[chosen]
                location["address_1"] = address.text(
                    picked, "address_1", required=True, max_length=200
                )
                location["city"] = address.text(picked, "city", required=True, max_length=120)
                location["region"] = address.text(
                    picked, "state_province", required=True, max_length=120
                ) or address.text(picked, "region", max_length=120)
                location["postal_code"] = address.text(
                    picked, "postal_code", required=True, max_length=20
                )
                country = address.text(picked, "country", required=True)
                if country and not re.fullmatch(r"[A-Za-z]{2}", country):
                    address.error(("country",), "Must be an ISO 3166-1 alpha-2 code.")
                location["country"] = country.upper()[:2]
            schedules = [
                *((("schedules",), s) for s in inner.objects(pair, "schedules")),
                *((("location", "schedules"), s) for s in at.objects(place, "schedules")),
            ]
            location["time_zone"], location["schedules"] = self._hours(inner, schedules)
            locations.append(location)
        return locations

    def _hours(self, check: "Checker", schedules: list) -> tuple[str, list[dict]]:
        zone, hours = "UTC", []
        counters: dict[tuple, int] = {}
        for where, schedule in schedules:
            index = counters[where] = counters.get(where, -1) + 1
            at = check.inside(*where, index)
            match = LOCAL_TIME.match(str(schedule.get("description") or ""))
            if match and match.group(1) in TIME_ZONES:
                zone = match.group(1)
            freq = at.text(schedule, "freq")
            days = [day.strip() for day in at.text(schedule, "byday").split(",") if day.strip()]
            opens, closes = at.clock(schedule, "opens_at"), at.clock(schedule, "closes_at")
            if freq not in ("", "WEEKLY") or not days or opens is None or closes is None:
                at.warn(
                    (), "Only weekly opening hours (byday, opens_at, closes_at) are kept: left out."
                )
                continue
            unknown = [day for day in days if day not in WEEKDAYS]
            if unknown:
                at.error(("byday",), f"Unknown days {', '.join(unknown)}: use MO, TU ... SU.")
                continue
            for day in days:
                hours.append(
                    {
                        "weekday": WEEKDAYS[day],
                        "opens_at": opens.isoformat(),
                        "closes_at": closes.isoformat(),
                    }
                )
        return zone, hours

    def _capacity(self, check: "Checker", doc: dict) -> dict | None:
        capacities = check.objects(doc, "capacities")
        if not capacities:
            return None
        at = check.inside("capacities", 0)
        if len(capacities) > 1:
            check.warn(("capacities",), "Only the first capacity is kept.")
        entry = capacities[0]
        available = at.whole(entry, "available", required=True, maximum=2**31 - 1)
        maximum = at.whole(entry, "maximum", maximum=2**31 - 1)
        if available is not None and maximum is not None and available > maximum:
            at.error(("available",), f"Must not be above maximum ({maximum}).")
        unit = at.object(entry, "unit")
        name = at.inside("unit").text(unit, "name", required=True) if unit is not None else ""
        chosen = unit_of(name)
        if chosen is None:
            if unit is None:
                at.error(("unit",), "Missing required field.")
            else:
                at.warn(
                    ("unit", "name"),
                    f"{name!r} is not a unit this network counts in "
                    f"({', '.join(CapacityUnit.values)}): the capacity was left out.",
                )
            return None
        return {
            "available": available or 0,
            "maximum": maximum,
            "unit": chosen,
            "description": at.text(entry, "description"),
        }


def language_tag(raw: str) -> str:
    """A valid tag as the source wrote it, in BCP 47's case (`pt-br` → `pt-BR`), so `tl` stays
    `tl` as this network uses it; only a three-letter ISO 639-2/3 code, common in HSDS, becomes
    the two-letter one this network searches by (`eng` → `en`)."""
    standard = langcodes.standardize_tag(raw)
    parts = raw.split("-")
    if len(parts[0]) == 3 and len(standard.split("-")[0]) == 2:
        return standard
    cased = [parts[0].lower()]
    for part in parts[1:]:
        cased.append(
            part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part.lower()
        )
    return "-".join(cased)


def unit_of(name: str) -> str | None:
    plain = name.strip().casefold()
    for unit in CapacityUnit.values:
        if plain in (unit, unit.rstrip("s")):
            return unit
    return None


class Checker:
    """Reads typed fields of one object, recording issues at their path in the record."""

    def __init__(self, record: Record, path: tuple):
        self.record = record
        self.path = path

    def inside(self, *parts) -> "Checker":
        return Checker(self.record, self.path + parts)

    def error(self, where: tuple, detail: str) -> None:
        self.record.errors.append(Issue(self.path + where, detail))

    def warn(self, where: tuple, detail: str) -> None:
        self.record.warnings.append(Issue(self.path + where, detail))

    def text(self, doc: dict, name: str, *, required=False, filled=False, max_length=None) -> str:
        """`required`: HSDS requires the field (it may be empty); `filled`: it must not be."""
        value = doc.get(name)
        if value is None:
            if required or filled:
                self.error((name,), "Missing required field.")
            return ""
        if not isinstance(value, str):
            self.error((name,), "Must be a string.")
            return ""
        value = value.strip()
        if filled and not value:
            self.error((name,), "Must not be empty.")
        if max_length and len(value) > max_length:
            self.error((name,), f"At most {max_length} characters.")
            return value[:max_length]
        if "\x00" in value:
            self.error((name,), "Must not contain a NUL character.")
            return ""
        return value

    def external_id(self, doc: dict, name: str) -> str:
        return self.text(doc, name, filled=True, max_length=EXTERNAL_ID_MAX)

    def number(self, doc: dict, name: str, low: float, high: float) -> float | None:
        value = doc.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error((name,), "Must be a number.")
            return None
        if not low <= value <= high:
            self.error((name,), f"Out of range: must be between {low} and {high}.")
            return None
        return float(value)

    def whole(self, doc: dict, name: str, *, required=False, maximum: int) -> int | None:
        value = doc.get(name)
        if value is None:
            if required:
                self.error((name,), "Missing required field.")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            self.error((name,), "Must be a whole number.")
            return None
        if not 0 <= value <= maximum:
            self.error((name,), f"Out of range: must be between 0 and {maximum}.")
            return None
        return int(value)

    def clock(self, doc: dict, name: str) -> time | None:
        value = doc.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return time.fromisoformat(value).replace(tzinfo=None)
            except ValueError:
                pass
        self.error((name,), "Must be a time of day, HH:MM or HH:MM:SS.")
        return None

    def object(self, doc: dict, name: str) -> dict | None:
        value = doc.get(name)
        if value is not None and not isinstance(value, dict):
            self.error((name,), "Must be an object.")
            return None
        return value

    def objects(self, doc: dict, name: str) -> list[dict]:
        value = doc.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error((name,), "Must be an array.")
            return []
        bad = [index for index, item in enumerate(value) if not isinstance(item, dict)]
        for index in bad:
            self.error((name, index), "Must be an object.")
        return [item for item in value if isinstance(item, dict)] if not bad else []


def _object_record(doc, what: str) -> tuple[Record, Checker | None]:
    """A record of `doc` with its HSDS id read, and the checker of its fields; no checker when
    `doc` is not an object, which the record then holds as its error."""
    record = Record()
    if not isinstance(doc, dict):
        record.errors.append(Issue((), f"{what} must be an object."))
        return record, None
    check = Checker(record, ())
    record.external_id = check.external_id(doc, "id")
    return record, check


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
