"""Reading an uploaded HSDS document as a stream of records, never whole.

JSON: a service, an organization with its `services`, an array of either, or an HSDS `Page` of
either (what `/api/v1/hsds/services?full=true` returns). Arrays and a page's `contents` are read
an item at a time; a single top-level object is read whole.

Tabular: a zip of an HSDS Data Package (CSV files with `datapackage.json`). frictionless reads
and validates each table against the HSDS table schemas (partners/hsds/datapackage.json); the
rows go to an SQLite file beside the upload, indexed by the keys that join them, and each
service is assembled from it into the same nested shape as the JSON, so one reader validates
both. Foreign keys and unique ids are checked here rather than by frictionless, which would
hold whole tables in memory to do it."""

import io
import json
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path, PurePosixPath

HSDS = Path(__file__).resolve().parents[1] / "hsds"
CHUNK = 1 << 20
WHITESPACE = re.compile(r"[ \t\n\r]*")
# Uncompressed bytes a zip may expand to, per uploaded byte: more is a zip bomb, not a directory.
ZIP_RATIO = 50


class DocumentError(Exception):
    """The upload is not a readable document of its format."""


@dataclass
class Item:
    """A record as read: its kind, where it is in the file, the HSDS object, and (for a
    service) the organization it came with."""

    kind: str  # "service" or "organization"
    where: dict  # {"pointer": ...} or {"file": ..., "row": ...}
    doc: object
    organization: dict | None = None
    # Problems the reader found in the rows the record was assembled from (tabular only).
    issues: list[dict] = field(default_factory=list)


# --- JSON --------------------------------------------------------------------------------------


class _Stream:
    """A JSON text read a megabyte at a time, parsed a value at a time (json.raw_decode)."""

    def __init__(self, binary):
        self.text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict")
        self.buffer = ""
        self.position = 0
        self.consumed = 0
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _fill(self) -> None:
        try:
            data = self.text.read(CHUNK)
        except UnicodeDecodeError:
            raise DocumentError("The document is not UTF-8 text.") from None
        self.consumed += self.position
        self.buffer = self.buffer[self.position :] + data
        self.position = 0
        self.eof = not data

    def at(self) -> str:
        return f"at character {self.consumed + self.position + 1}"

    def peek(self) -> str:
        while True:
            self.position = WHITESPACE.match(self.buffer, self.position).end()
            if self.position < len(self.buffer) or self.eof:
                return self.buffer[self.position : self.position + 1]
            self._fill()

    def take(self, expected: str) -> str:
        char = self.peek()
        if char not in expected:
            found = repr(char) if char else "the end"
            raise DocumentError(f"The document is not valid JSON {self.at()}: found {found}.")
        self.position += 1
        return char

    def value(self):
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.buffer) - 1 or exc.msg.startswith("Unterminated")
                if self.eof or not incomplete:
                    raise DocumentError(
                        f"The document is not valid JSON {self.at()}: {exc.msg}."
                    ) from None
                self._fill()
                continue
            if end == len(self.buffer) and not self.eof and not isinstance(value, dict | list):
                self._fill()  # a number may go on in the next chunk
                continue
            self.position = end
            return value

    def end(self) -> None:
        if self.peek():
            raise DocumentError(f"The document goes on after its end {self.at()}.")


def _items(value, pointer: str) -> Iterator[Item]:
    if isinstance(value, dict) and isinstance(value.get("services"), list):
        services = value["services"]
        organization = {key: v for key, v in value.items() if key != "services"}
        yield Item("organization", {"pointer": pointer}, organization)
        for index, service in enumerate(services):
            yield Item("service", {"pointer": f"{pointer}/services/{index}"}, service, organization)
        return
    organization = value.get("organization") if isinstance(value, dict) else None
    yield Item(
        "service",
        {"pointer": pointer},
        value,
        organization if isinstance(organization, dict) else None,
    )


def _array(stream: _Stream, prefix: str) -> Iterator[Item]:
    stream.take("[")
    if stream.peek() == "]":
        stream.take("]")
        return
    index = 0
    while True:
        yield from _items(stream.value(), f"{prefix}/{index}")
        index += 1
        if stream.take(",]") == "]":
            return


def json_items(binary) -> Iterator[Item]:
    stream = _Stream(binary)
    try:
        yield from _document(stream)
    finally:
        stream.text.detach()  # the caller closes the file


def _document(stream: _Stream) -> Iterator[Item]:
    first = stream.peek()
    if first == "[":
        yield from _array(stream, "")
    elif first == "{":
        stream.take("{")
        rest, paged = {}, False
        if stream.peek() != "}":
            while True:
                key = stream.value()
                if not isinstance(key, str):
                    raise DocumentError(f"The document is not valid JSON {stream.at()}.")
                stream.take(":")
                if key == "contents" and stream.peek() == "[":
                    yield from _array(stream, "/contents")
                    paged = True
                else:
                    rest[key] = stream.value()
                if stream.take(",}") == "}":
                    break
        else:
            stream.take("}")
        if not paged:
            yield from _items(rest, "")
    else:
        raise DocumentError("An HSDS JSON document is an object or an array.")
    stream.end()


def sniff_json(head: bytes) -> None:
    """Cheap check at upload: the file starts like a JSON object or array."""
    text = head.decode("utf-8-sig", errors="ignore").lstrip()
    if not text or text[0] not in "[{":
        raise DocumentError("The file is not an HSDS JSON document: it must start with { or [.")


# --- Tabular -----------------------------------------------------------------------------------

# The tables the import reads, with the columns each is joined on.
TABLES = {
    "organization": ("id", None, None),
    "service": ("id", "organization_id", None),
    "service_at_location": ("id", "service_id", "location_id"),
    "location": ("id", None, None),
    "address": ("id", "location_id", None),
    "schedule": ("id", "service_at_location_id", "location_id"),
    "language": ("id", "service_id", None),
    "attribute": ("id", "link_id", "taxonomy_term_id"),
    "taxonomy_term": ("id", "taxonomy_id", None),
    "taxonomy": ("id", None, None),
    "service_capacity": ("id", "service_id", "unit_id"),
    "unit": ("id", None, None),
    "phone": ("id", "organization_id", "service_id"),
}
# A child row whose parent is not in the package links to nothing: left out, with a warning.
PARENTS = {
    "service_at_location": ("service_id", "service"),
    "attribute": ("link_id", "service"),
    "address": ("location_id", "location"),
    "language": ("service_id", "service"),
    "service_capacity": ("service_id", "service"),
}


@cache
def table_schemas() -> dict[str, dict]:
    """HSDS's table schemas, made readable by frictionless: upstream's `service_capacity` and
    `unit` list fewer fields than their JSON schemas and a primary key neither has, so their
    fields come from schema/*.json; foreign keys and unique constraints are dropped (checked
    by the import itself, which can do it without holding tables in memory)."""
    package = json.loads((HSDS / "datapackage.json").read_text())
    schemas = {}
    for resource in package["resources"]:
        if resource["name"] not in TABLES:
            continue
        schema = resource["schema"]
        fields = schema["fields"]
        if resource["name"] in ("service_capacity", "unit"):
            source = json.loads((HSDS / "schema" / f"{resource['name']}.json").read_text())
            kinds = {"string": "string", "number": "number"}
            fields = [
                {
                    "name": name,
                    "type": kinds[spec["type"]],
                    **({"format": spec["format"]} if spec.get("format") in ("uuid", "uri") else {}),
                }
                for name, spec in source["properties"].items()
                if spec.get("type") in kinds
            ]
            fields[0]["constraints"] = {"required": True}
        cleaned = []
        for spec in fields:
            spec = {**spec, "constraints": dict(spec.get("constraints", {}))}
            spec["constraints"].pop("unique", None)
            cleaned.append(spec)
        # Columns are matched by name; the import itself says which it needs.
        schemas[resource["name"]] = {"fields": cleaned, "fieldsMatch": "partial"}
    return schemas


def _detail(error) -> str:
    cell = getattr(error, "cell", None)
    return f"{error.title}: {error.note}" + (f" (got {cell!r})." if cell else ".")


def _plain(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def open_package(source, size: int) -> tuple[zipfile.ZipFile, dict, str]:
    """The zip (a path or a seekable file of `size` bytes), its datapackage.json and the
    folder it is in. DocumentError when the file is not a zipped Data Package."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise DocumentError("The file is not a zip archive of an HSDS Data Package.") from None
    names = [n for n in archive.namelist() if PurePosixPath(n).name == "datapackage.json"]
    if not names:
        raise DocumentError("The zip holds no datapackage.json.")
    name = min(names, key=len)
    try:
        descriptor = json.loads(archive.read(name))
    except (ValueError, UnicodeDecodeError):
        raise DocumentError("datapackage.json is not valid JSON.") from None
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("resources"), list):
        raise DocumentError("datapackage.json names no resources.")
    expanded = sum(info.file_size for info in archive.infolist())
    if expanded > ZIP_RATIO * max(size, 1):
        raise DocumentError("The zip expands far beyond its size; it is refused.")
    return archive, descriptor, str(PurePosixPath(name).parent)


class Tabular:
    """A zipped HSDS Data Package, its tables staged in an SQLite file in `workdir`."""

    def __init__(self, path: Path, workdir: Path):
        self.archive, self.descriptor, self.folder = open_package(path, path.stat().st_size)
        self.workdir = workdir
        self.db = sqlite3.connect(workdir / "tables.sqlite3")
        self.db.execute(
            "CREATE TABLE rows (resource TEXT, file TEXT, row INTEGER, id TEXT, k1 TEXT, k2 TEXT,"
            " data TEXT, invalid TEXT)"
        )
        self.warnings: list[dict] = []

    def close(self) -> None:
        self.db.close()
        self.archive.close()

    def _member(self, resource: dict) -> str | None:
        relative = resource.get("path")
        if not isinstance(relative, str) or ".." in PurePosixPath(relative).parts:
            return None
        name = str(PurePosixPath(self.folder, relative)) if self.folder != "." else relative
        return name if name in self.archive.namelist() else None

    def stage(self) -> None:
        """Read every table the import uses into SQLite, through frictionless."""
        from frictionless import FrictionlessException, Resource, Schema

        schemas = table_schemas()
        for resource in self.descriptor["resources"]:
            name = resource.get("name") if isinstance(resource, dict) else None
            if name not in schemas:
                continue
            member = self._member(resource)
            if member is None:
                raise DocumentError(
                    f"datapackage.json names {resource.get('path')!r}, which the zip lacks."
                )
            target = self.workdir / f"{name}.csv"
            with self.archive.open(member) as source, open(target, "wb") as out:
                while block := source.read(CHUNK):
                    out.write(block)
            file = PurePosixPath(member).name
            table = Resource(
                path=target.name,
                basepath=str(self.workdir),
                schema=Schema.from_descriptor(schemas[name]),
            )
            key, first, second = TABLES[name]
            batch = []
            try:
                with table:
                    for row in table.row_stream:
                        values = {k: _plain(v) for k, v in row.to_dict().items() if v is not None}
                        invalid = [
                            {"column": getattr(error, "field_name", None), "detail": _detail(error)}
                            for error in row.errors
                        ]
                        batch.append(
                            (
                                name,
                                file,
                                row.row_number,
                                str(values.get(key, "")),
                                str(values.get(first, "")) if first else "",
                                str(values.get(second, "")) if second else "",
                                json.dumps(values),
                                json.dumps(invalid),
                            )
                        )
                        if len(batch) >= 1000:
                            self._insert(batch)
            except (FrictionlessException, UnicodeDecodeError) as exc:
                raise DocumentError(f"{file} cannot be read as CSV: {exc}") from None
            self._insert(batch)
        self.db.execute("CREATE INDEX by_id ON rows (resource, id)")
        self.db.execute("CREATE INDEX by_first ON rows (resource, k1)")
        self.db.execute("CREATE INDEX by_second ON rows (resource, k2)")
        self._orphans()

    def _insert(self, batch: list) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
        batch.clear()

    def _orphans(self) -> None:
        for resource, (column, parent) in PARENTS.items():
            query = (
                "SELECT file, row, k1 FROM rows c WHERE resource = ? AND NOT EXISTS "
                "(SELECT 1 FROM rows p WHERE p.resource = ? AND p.id = c.k1) ORDER BY row"
            )
            for file, row, value in self.db.execute(query, (resource, parent)):
                self.warnings.append(
                    {
                        "file": file,
                        "row": row,
                        "column": column,
                        "detail": f"{value!r} names no {parent} in the package: row left out.",
                    }
                )

    def _rows(self, resource: str, column: str, value: str) -> list[tuple]:
        query = f"SELECT file, row, data, invalid FROM rows WHERE resource = ? AND {column} = ? ORDER BY row"  # noqa: S608 - column is one of three names
        return self.db.execute(query, (resource, value)).fetchall()

    def _one(self, resource: str, value: str, issues: list, source: tuple | None):
        rows = self._rows(resource, "id", value) if value else []
        if not rows:
            if source is not None:
                file, row, column = source
                issues.append(
                    {
                        "file": file,
                        "row": row,
                        "column": column,
                        "detail": f"{value!r} names no {resource} in the package.",
                    }
                )
            return None
        return self._doc(rows[0], issues)

    @staticmethod
    def _doc(row: tuple, issues: list) -> dict:
        file, number, data, invalid = row
        for problem in json.loads(invalid):
            issues.append({"file": file, "row": number, **problem})
        return {**json.loads(data), "_source": {"file": file, "row": number}}

    def items(self) -> Iterator[Item]:
        for row in self.db.execute(
            "SELECT file, row, data, invalid FROM rows WHERE resource = 'organization' ORDER BY row"
        ).fetchall():
            issues: list = []
            organization = self._organization(row, issues)
            yield Item("organization", organization["_source"], organization, issues=issues)
        cursor = self.db.cursor()
        cursor.execute(
            "SELECT file, row, data, invalid FROM rows WHERE resource = 'service' ORDER BY row"
        )
        while batch := cursor.fetchmany(100):
            for row in batch:
                issues = []
                service = self._service(row, issues)
                yield Item(
                    "service", service["_source"], service, service.get("organization"), issues
                )

    def _organization(self, row: tuple, issues: list) -> dict:
        organization = self._doc(row, issues)
        phones = [
            self._doc(phone, issues)
            for phone in self._rows("phone", "k1", organization.get("id", ""))
        ]
        if phones:
            organization["phones"] = phones
        return organization

    def _service(self, row: tuple, issues: list) -> dict:
        service = self._doc(row, issues)
        ident = service.get("id", "")
        organization = self._rows("organization", "id", service.get("organization_id", ""))
        if organization:
            service["organization"] = self._organization(organization[0], [])
        service["languages"] = [self._doc(r, issues) for r in self._rows("language", "k1", ident)]
        pairs = []
        for pair_row in self._rows("service_at_location", "k1", ident):
            pair = self._doc(pair_row, issues)
            source = (pair["_source"]["file"], pair["_source"]["row"], "location_id")
            location = self._one("location", pair.get("location_id", ""), issues, source)
            if location is not None:
                location["addresses"] = [
                    self._doc(r, issues) for r in self._rows("address", "k1", location["id"])
                ]
            pair["location"] = location
            pair["schedules"] = [
                self._doc(r, issues) for r in self._rows("schedule", "k1", pair.get("id", ""))
            ]
            pairs.append(pair)
        service["service_at_locations"] = pairs
        attributes = []
        for attribute_row in self._rows("attribute", "k1", ident):
            attribute = self._doc(attribute_row, issues)
            if attribute.get("link_entity", "service") != "service":
                continue
            term = self._one("taxonomy_term", attribute.get("taxonomy_term_id", ""), [], None)
            if term is not None:
                taxonomy = self._one("taxonomy", term.get("taxonomy_id", ""), [], None)
                if taxonomy is not None:
                    term["taxonomy_detail"] = taxonomy
                attribute["taxonomy_term"] = term
            attributes.append(attribute)
        service["attributes"] = attributes
        capacities = []
        for capacity_row in self._rows("service_capacity", "k1", ident):
            capacity = self._doc(capacity_row, issues)
            source = (capacity["_source"]["file"], capacity["_source"]["row"], "unit_id")
            capacity["unit"] = self._one("unit", capacity.get("unit_id", ""), issues, source)
            capacities.append(capacity)
        service["capacities"] = capacities
        return service


def locate(doc, path: tuple) -> dict:
    """Where a field at `path` inside an assembled tabular record came from: the CSV file, row
    and column of the innermost object on the path that came from a row."""
    where = doc.get("_source", {}) if isinstance(doc, dict) else {}
    column = None
    node = doc
    for part in path:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            column = part
            break
        if isinstance(node, dict) and "_source" in node:
            where, column = node["_source"], None
        elif not isinstance(node, dict | list):
            column = part
    located = {"file": where.get("file"), "row": where.get("row")}
    if isinstance(column, str):
        located["column"] = column
    return located
