"""HSDS imports: the job's rules. A job is created with the uploaded file stored in its chunks
and is run by a Celery worker (partners/tasks.py) or by `manage.py import_hsds`, in two phases:

1. Reading streams the file back, reads each record (records.py) and stages it with its issues.
   It has no side effects outside the job, so an interrupted reading simply starts again.
2. Writing takes the staged records one organisation at a time, each organisation in one
   transaction that also records the records' outcomes and the job's counts. Any error in an
   organisation's records refuses all of them. A worker killed mid-write loses only the open
   transaction; the next run writes the organisations that have no outcome yet, so nothing is
   written twice.

Records are matched by their HSDS `id`, kept as the service's `external_id`, within the owning
organisation only: an import never writes into another organisation's records. Who may run a
job at a time is a PostgreSQL advisory lock held by the running session, released the moment
a killed worker's connection drops, which is how the resume sweep tells a dead run from a live
one."""

import csv
import io
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Count, Q
from django.utils import timezone

from api.errors import PayloadTooLarge, Unprocessable, escape_pointer
from api.events import emit
from partners.hsds_terms import SAFEGUARD_TERMS
from partners.imports.documents import (
    DocumentError,
    Item,
    Tabular,
    json_items,
    locate,
    open_package,
    sniff_json,
)
from partners.imports.records import Issue, Mapping, Record, ServiceReader, is_uuid
from partners.models import (
    FINISHED_IMPORT_STATUSES,
    LOCATION_PLACE_FIELDS,
    SAFEGUARDS,
    Capacity,
    DirectoryImport,
    DirectoryImportChunk,
    DirectoryImportRecord,
    ImportFormat,
    ImportStatus,
    Location,
    Organisation,
    OrganisationKind,
    Schedule,
    Service,
)
from partners.selectors import known_taxonomy_codes
from partners.services import capacity_history_record, locations_replace

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
BATCH = 500
REPORT_LIMIT = 1000  # errors and warnings kept on the job; the counts say how many in all
LOCK_CLASS = 0x5352_4449  # "SRDI": this module's advisory locks, apart from other keys
SERVICE_FIELDS = (
    "name",
    "description",
    "status",
    "interpretation_services",
    "eligibility_description",
    "fees_description",
    "minimum_age",
    "maximum_age",
    "languages",
    *SAFEGUARDS,
)


def max_bytes() -> int:
    return settings.DIRECTORY_IMPORT_MAX_BYTES


# --- Creating a job ----------------------------------------------------------------------------


def mapping_parse(raw: bytes) -> dict[str, dict[str, str]]:
    """The taxonomy mapping file: CSV with the header `taxonomy,code,srn_code`, or JSON
    `{"<taxonomy>": {"<code>": "<srn code>"}}`. Every target must be a code of this network's
    taxonomy or a safeguard; anything else is refused, row by row."""
    targets = known_taxonomy_codes() | set(SAFEGUARD_TERMS)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unprocessable(
            "The taxonomy mapping is not UTF-8 text.",
            errors=[{"pointer": "/taxonomy_mapping", "detail": "Not UTF-8."}],
        ) from None
    entries: dict[str, dict[str, str]] = {}
    errors = []
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not all(
            isinstance(codes, dict) and all(isinstance(v, str) for v in codes.values())
            for codes in document.values()
        ):
            raise Unprocessable(
                "The taxonomy mapping is not a JSON object of taxonomies to {code: srn_code}.",
                errors=[{"pointer": "/taxonomy_mapping", "detail": "Not a mapping."}],
            )
        for taxonomy, codes in document.items():
            for code, target in codes.items():
                if target not in targets:
                    errors.append(
                        {
                            "pointer": f"/taxonomy_mapping/{escape_pointer(taxonomy)}/{escape_pointer(code)}",
                            "detail": f"{target!r} is not a code of this network's taxonomy.",
                        }
                    )
        entries = document
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"taxonomy", "code", "srn_code"} <= set(
            reader.fieldnames
        ):
            raise Unprocessable(
                "The taxonomy mapping CSV needs the columns taxonomy, code and srn_code.",
                errors=[{"pointer": "/taxonomy_mapping", "detail": "Missing columns."}],
            )
        for row in reader:
            target = (row.get("srn_code") or "").strip()
            if target not in targets:
                errors.append(
                    {
                        "pointer": "/taxonomy_mapping",
                        "row": reader.line_num,
                        "column": "srn_code",
                        "detail": f"{target!r} is not a code of this network's taxonomy.",
                    }
                )
                continue
            entries.setdefault((row.get("taxonomy") or "").strip(), {})[
                (row.get("code") or "").strip()
            ] = target
    if errors:
        raise Unprocessable(
            "The taxonomy mapping names codes this network does not have; nothing was imported.",
            errors=errors[:REPORT_LIMIT],
        )
    return entries


def sniff(file, import_format: str, size: int) -> None:
    """Refuse at upload what is not a document of the declared format (a 400), before a job
    exists; everything else is the job's report."""
    file.seek(0)
    try:
        if import_format == ImportFormat.JSON:
            sniff_json(file.read(4096))
        else:
            open_package(file, size)[0].close()
    except DocumentError as exc:
        raise Unprocessable(str(exc), errors=[{"pointer": "/file", "detail": str(exc)}]) from None
    finally:
        file.seek(0)


@transaction.atomic
def directory_import_create(
    *,
    organisation: Organisation | None,
    file,
    size: int,
    import_format: str,
    dry_run: bool = False,
    on_conflict: str = "skip",
    taxonomy_mapping: dict | None = None,
    client_id: str = "",
    enqueue: bool = True,
) -> DirectoryImport:
    """Store the upload and queue its job. `organisation` owns every record the job imports;
    only a steward's command-line import may leave it empty, to import for the organisations
    the file names."""
    if size > max_bytes():
        raise PayloadTooLarge(
            f"The file is {size} bytes; an import takes at most {max_bytes()}.",
            errors=[{"pointer": "/file", "detail": f"At most {max_bytes()} bytes."}],
        )
    sniff(file, import_format, size)
    job = DirectoryImport.objects.create(
        organisation=organisation,
        client_id=client_id,
        format=import_format,
        dry_run=dry_run,
        on_conflict=on_conflict,
        taxonomy_mapping=taxonomy_mapping or {},
        size=size,
    )
    sequence = 0
    chunks = []
    while block := file.read(CHUNK_BYTES):
        chunks.append(DirectoryImportChunk(job=job, sequence=sequence, data=block))
        sequence += 1
        if len(chunks) >= 8:
            DirectoryImportChunk.objects.bulk_create(chunks)
            chunks = []
    DirectoryImportChunk.objects.bulk_create(chunks)
    if enqueue:
        transaction.on_commit(lambda: publish([job.pk]))
    return job


def publish(job_ids: Iterable) -> int:
    """Queue a run per job, on a connection of its own (imports are rare; the broker's URL is
    read when they happen). A broker that is down loses nothing: the resume sweep queues
    unfinished jobs again."""
    from partners.tasks import run_import

    job_ids = [str(job_id) for job_id in job_ids]
    if not job_ids:
        return 0
    try:
        with run_import.app.connection_for_write() as broker:
            for job_id in job_ids:
                run_import.apply_async((job_id,), retry=False, connection=broker)
    except Exception as exc:
        log.warning("broker unavailable, leaving imports to the resume sweep: %s", exc)
        return 0
    return len(job_ids)


# --- Running a job -----------------------------------------------------------------------------


def _lock_key(job_id) -> int:
    return int.from_bytes(uuid.UUID(str(job_id)).bytes[:4], "big", signed=True)


def _lock_connection():
    """The session holding import locks: a direct one when settings name it (a pooler in
    transaction mode would hand this session's lock to whichever client gets it next)."""
    return connections["direct"] if "direct" in settings.DATABASES else connection


def _try_lock(job_id) -> bool:
    with _lock_connection().cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, _lock_key(job_id)])
        return cursor.fetchone()[0]


def _unlock(job_id) -> None:
    with _lock_connection().cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, _lock_key(job_id)])


Progress = Callable[[str, int, int | None], None]


class _Published:
    """Progress inside an organisation's transaction is invisible until it commits; a second
    connection publishes it as it goes, so a 20,000-service organisation does not sit at 0."""

    def __init__(self, job_id, callback: Progress | None):
        self.job_id = job_id
        self.callback = callback
        self.side = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if self.callback is not None:
            self.callback(phase, done, total)
        if phase != "writing":
            return
        if self.side is None:
            self.side = connections.create_connection("default")
        with self.side.cursor() as cursor:
            cursor.execute(
                "UPDATE partners_directoryimport SET done = %s, total = %s WHERE id = %s",
                [done, total, self.job_id],
            )

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def import_run(job_id, *, progress: Progress | None = None) -> str | None:
    """Run (or resume) a job unless another session runs it. Returns its status after."""
    if not _try_lock(job_id):
        return None
    published = _Published(job_id, progress)
    try:
        job = DirectoryImport.objects.filter(pk=job_id).first()
        if job is None or job.status in FINISHED_IMPORT_STATUSES:
            return job.status if job else None
        job.status = ImportStatus.RUNNING
        job.attempts += 1
        job.started = job.started or timezone.now()
        job.save(update_fields=["status", "attempts", "started"])
        try:
            if not job.read:
                _read(job, published)
            _write(job, published)
        except DocumentError as exc:
            _finish(job, ImportStatus.FAILED, failure=str(exc))
        except DatabaseError:
            # The database went away mid-run: leave the job running for the resume sweep.
            raise
        except Exception:
            log.exception("import failed", extra={"import": str(job.pk)})
            _finish(
                job,
                ImportStatus.FAILED,
                failure="An unexpected error stopped the import. Organisations already "
                "written are kept whole; the one being written was rolled back.",
            )
        else:
            _finish(job, ImportStatus.SUCCEEDED)
        return DirectoryImport.objects.values_list("status", flat=True).get(pk=job_id)
    finally:
        published.close()
        _unlock(job_id)


def imports_resume(*, grace: float = 30.0) -> int:
    """Queue every unfinished job no session is running: those a killed worker left running,
    and queued ones whose task was lost. Queued jobs younger than `grace` are still in the
    queue."""
    cutoff = timezone.now() - timezone.timedelta(seconds=grace)
    candidates = DirectoryImport.objects.filter(
        Q(status=ImportStatus.RUNNING) | Q(status=ImportStatus.QUEUED, created__lte=cutoff)
    ).values_list("pk", flat=True)
    idle = []
    for job_id in candidates:
        if _try_lock(job_id):
            _unlock(job_id)
            idle.append(job_id)
    return publish(idle)


# --- Reading -----------------------------------------------------------------------------------


def _spool(job: DirectoryImport, workdir: Path) -> Path:
    path = workdir / "upload"
    with open(path, "wb") as out:
        chunks = DirectoryImportChunk.objects.filter(job=job).order_by("sequence")
        for data in chunks.values_list("data", flat=True).iterator(chunk_size=2):
            out.write(data)
    return path


def _issue(item: Item, path: tuple, detail: str, prefix: tuple = ()) -> dict:
    if "pointer" in item.where:
        pointer = item.where["pointer"] + "".join(
            f"/{escape_pointer(str(part))}" for part in (*prefix, *path)
        )
        return {"pointer": pointer, "detail": detail}
    return {**locate(item.doc, path), "detail": detail}


def _report(item: Item, record: Record, prefix: tuple = ()) -> tuple[list, list]:
    errors = [_issue(item, issue.path, issue.detail, prefix) for issue in record.errors]
    if item.issues and not prefix:
        # The rows' own problems (frictionless) come first and stand for the same cell.
        cells = {(i["file"], i["row"], i.get("column")) for i in item.issues}
        errors = [*item.issues] + [
            e for e in errors if (e.get("file"), e.get("row"), e.get("column")) not in cells
        ]
    warnings = [_issue(item, issue.path, issue.detail, prefix) for issue in record.warnings]
    return errors, warnings


def _items(job: DirectoryImport, path: Path, workdir: Path, extra_warnings: list):
    if job.format == ImportFormat.JSON:
        with open(path, "rb") as binary:
            yield from json_items(binary)
        return
    tabular = Tabular(path, workdir)
    try:
        tabular.stage()
        extra_warnings.extend(tabular.warnings)
        yield from tabular.items()
    finally:
        tabular.close()


def _read(job: DirectoryImport, progress: Progress) -> None:
    DirectoryImportRecord.objects.filter(job=job).delete()
    reader = ServiceReader(
        mapping=Mapping(job.taxonomy_mapping), known_codes=known_taxonomy_codes()
    )
    forced = str(job.organisation_id) if job.organisation_id else None
    workdir = Path(tempfile.mkdtemp(prefix="srn-import-"))
    batch: list[DirectoryImportRecord] = []
    organisations: set[str] = set()
    services = sequence = 0
    warnings: list[dict] = []

    def stage(kind, group, record, item, prefix=()):
        nonlocal sequence
        errors, notes = _report(item, record, prefix)
        batch.append(
            DirectoryImportRecord(
                job=job,
                sequence=sequence,
                kind=kind,
                group=group,
                external_id=record.external_id,
                values=record.values,
                errors=errors,
                warnings=notes,
                unmapped=record.unmapped,
            )
        )
        sequence += 1

    try:
        path = _spool(job, workdir)
        for item in _items(job, path, workdir, warnings):
            if item.kind == "organization":
                if forced is None:
                    record = reader.organization(item.doc)
                    if record.external_id not in organisations:
                        organisations.add(record.external_id)
                        stage("organization", record.external_id, record, item)
                continue
            record = reader.service(item.doc)
            if forced is not None:
                group = forced
            else:
                group = _organization_of(item, record)
                if (
                    group
                    and group not in organisations
                    and item.organization is not None
                    and "pointer" in item.where
                    and not item.where["pointer"].count("/services/")
                ):
                    organisations.add(group)
                    stage(
                        "organization",
                        group,
                        reader.organization(item.organization),
                        item,
                        ("organization",),
                    )
            stage("service", group, record, item)
            services += 1
            if len(batch) >= BATCH:
                DirectoryImportRecord.objects.bulk_create(batch)
                batch = []
                progress("reading", services, None)
        DirectoryImportRecord.objects.bulk_create(batch)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with connection.cursor() as cursor:
        # Written a moment ago and read group by group next: without statistics the planner
        # would scan the whole table for each group.
        cursor.execute("ANALYZE partners_directoryimportrecord")
    _mark_repeats(job)
    _summarise(job, services, warnings)


def _organization_of(item: Item, record: Record) -> str:
    """A steward's import groups services by the HSDS organization they name."""
    doc = item.doc if isinstance(item.doc, dict) else {}
    named = doc.get("organization_id")
    if not named and item.organization is not None:
        named = item.organization.get("id")
    if not isinstance(named, str) or not named:
        record.errors.append(
            Issue(("organization_id",), "Missing required field: which organization provides it.")
        )
        return ""
    return named


_REPEAT = """
WITH repeats AS (
    SELECT id FROM (
        SELECT id, row_number() OVER (
            PARTITION BY "group", kind, external_id ORDER BY sequence
        ) AS n
        FROM partners_directoryimportrecord
        WHERE job_id = %s AND external_id <> ''
    ) numbered
    WHERE n > 1
)
UPDATE partners_directoryimportrecord r
SET errors = r.errors || jsonb_build_array(jsonb_build_object(
    'detail', 'The same id as an earlier record of this organisation: ' || r.external_id || '.',
    'pointer', '', 'record', r.external_id))
FROM repeats
WHERE r.id = repeats.id
"""


def _mark_repeats(job: DirectoryImport) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_REPEAT, [job.pk])


_UNMAPPED = """
SELECT t->>'taxonomy', t->>'code', min(t->>'name'), count(*)
FROM partners_directoryimportrecord r, jsonb_array_elements(r.unmapped) t
WHERE r.job_id = %s
GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT %s
"""
_ISSUES = """
SELECT i.value || jsonb_build_object('record', r.external_id)
FROM partners_directoryimportrecord r, jsonb_array_elements(r.{column}) WITH ORDINALITY i
WHERE r.job_id = %s ORDER BY r.sequence, i.ordinality LIMIT %s
"""
_COUNT = "SELECT coalesce(sum(jsonb_array_length({column})), 0) FROM partners_directoryimportrecord WHERE job_id = %s"


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _summarise(job: DirectoryImport, services: int, warnings: list[dict]) -> None:
    """The report the job resource shows, in one place: the first errors and warnings in file
    order, their counts, and the unmapped terms counted."""
    with connection.cursor() as cursor:
        report = {}
        for column in ("errors", "warnings"):
            cursor.execute(_ISSUES.format(column=column), [job.pk, REPORT_LIMIT])
            report[column] = [_json(row[0]) for row in cursor.fetchall()]
            cursor.execute(_COUNT.format(column=column), [job.pk])
            report[f"{column}_count"] = int(cursor.fetchone()[0])
        cursor.execute(_UNMAPPED, [job.pk, REPORT_LIMIT])
        unmapped = [
            {"taxonomy": taxonomy, "code": code, "name": name, "count": count}
            for taxonomy, code, name, count in cursor.fetchall()
        ]
    job.errors = report["errors"]
    job.error_count = report["errors_count"]
    job.warnings = (warnings + report["warnings"])[:REPORT_LIMIT]
    job.warning_count = len(warnings) + report["warnings_count"]
    job.unmapped_terms = unmapped
    job.total = services
    job.read = True
    job.save(
        update_fields=[
            "errors",
            "error_count",
            "warnings",
            "warning_count",
            "unmapped_terms",
            "total",
            "read",
        ]
    )


# --- Writing -----------------------------------------------------------------------------------


def _write(job: DirectoryImport, progress: Progress) -> None:
    groups = list(
        DirectoryImportRecord.objects.filter(job=job, outcome="")
        .order_by("group")
        .values_list("group", flat=True)
        .distinct()
    )
    for group in groups:
        # No row lock on the job: progress is published on it from a second connection while
        # the group's transaction is open. This session's advisory lock makes it the only writer.
        with transaction.atomic():
            _write_group(DirectoryImport.objects.get(pk=job.pk), group, progress)


def _refuse(job: DirectoryImport, records, errors: list[dict]) -> None:
    refused = records.filter(kind="service").count()
    records.update(outcome="refused")
    job.refused_count += refused
    job.done += refused
    if errors:
        job.errors = (job.errors + errors)[:REPORT_LIMIT]
        job.error_count += len(errors)


def _save_counts(job: DirectoryImport) -> None:
    job.save(
        update_fields=[
            "created_count",
            "updated_count",
            "skipped_count",
            "refused_count",
            "done",
            "errors",
            "error_count",
        ]
    )


def _write_group(job: DirectoryImport, group: str, progress: Progress) -> None:
    records = DirectoryImportRecord.objects.filter(job=job, group=group)
    if not group or records.exclude(errors=[]).exists():
        _refuse(job, records, [])
        return _save_counts(job)
    organisation, errors = _owner(job, group, records)
    if errors:
        _refuse(job, records, errors)
        return _save_counts(job)
    services = records.filter(kind="service").order_by("sequence")
    foreign = _foreign_ids(organisation, services)
    if foreign:
        _refuse(
            job,
            records,
            [
                {
                    "record": external_id,
                    "pointer": "",
                    "detail": f"{external_id} is a service of another organisation; an import "
                    "never writes into another organisation's records.",
                }
                for external_id in foreign
            ],
        )
        return _save_counts(job)
    last = -1
    while True:
        chunk = list(services.filter(sequence__gt=last)[:BATCH])
        if not chunk:
            break
        last = chunk[-1].sequence
        _write_chunk(job, organisation, chunk)
        progress("writing", job.done, job.total)
    records.filter(kind="organization").update(outcome="written")
    _save_counts(job)


def _owner(job: DirectoryImport, group: str, records) -> tuple[Organisation | None, list[dict]]:
    """The organisation a group's records go to: the job's, or (a steward's import) the one
    the file names, found by its HSDS id (or our own id, re-importing our own export), made or
    updated from the file."""
    if job.organisation_id is not None:
        return job.organisation, []
    match = Q(external_id=group)
    if is_uuid(group):
        match |= Q(pk=group)
    existing = Organisation.objects.filter(match).first()
    described = records.filter(kind="organization").order_by("sequence").first()
    if existing is None and described is None:
        return None, [
            {
                "record": group,
                "pointer": "",
                "detail": f"The services name organization {group}, which is neither in the "
                "file nor in this directory.",
            }
        ]
    if job.dry_run:
        return existing, []
    if existing is None:
        values = described.values
        return (
            Organisation.objects.create(
                kind=OrganisationKind.OTHER, external_id=group, **_organisation_fields(values)
            ),
            [],
        )
    if described is not None and job.on_conflict == "update":
        for name, value in _organisation_fields(described.values).items():
            setattr(existing, name, value)
        existing.save()
    return existing, []


def _organisation_fields(values: dict) -> dict:
    return {
        name: values.get(name, "") for name in ("name", "description", "email", "website", "phone")
    }


def _foreign_ids(organisation: Organisation | None, services) -> list[str]:
    """HSDS ids that are our own ids of another organisation's services (its export, imported
    by someone else): refused, never matched."""
    ids = [i for i in services.values_list("external_id", flat=True) if is_uuid(i)]
    if not ids:
        return []
    theirs = Service.objects.filter(pk__in=ids)
    if organisation is not None:
        theirs = theirs.exclude(organisation=organisation)
    return sorted(str(pk) for pk in theirs.values_list("pk", flat=True))


def _existing(organisation: Organisation | None, chunk) -> dict[str, Service]:
    if organisation is None:
        return {}
    ids = [record.external_id for record in chunk]
    match = Q(external_id__in=ids) | Q(pk__in=[i for i in ids if is_uuid(i)])
    found = {}
    for service in Service.objects.filter(match, organisation=organisation):
        found[service.external_id or str(service.pk)] = service
        found[str(service.pk)] = service
    return found


def _write_chunk(job: DirectoryImport, organisation, chunk: list[DirectoryImportRecord]) -> None:
    existing = _existing(organisation, chunk)
    outcomes: dict[str, list[int]] = {"created": [], "updated": [], "skipped": []}
    creates, updates = [], []
    for record in chunk:
        service = existing.get(record.external_id)
        if service is None:
            outcomes["created"].append(record.pk)
            creates.append(record)
        elif job.on_conflict == "update":
            outcomes["updated"].append(record.pk)
            updates.append((service, record))
        else:
            outcomes["skipped"].append(record.pk)
    if not job.dry_run:
        _create(organisation, creates)
        _update(updates)
    for outcome, pks in outcomes.items():
        if pks:
            DirectoryImportRecord.objects.filter(pk__in=pks).update(outcome=outcome)
            setattr(job, f"{outcome}_count", getattr(job, f"{outcome}_count") + len(pks))
            job.done += len(pks)


def _locations(service_id, values: dict) -> tuple[list[Location], list[Schedule]]:
    locations, schedules = [], []
    for spec in values["locations"]:
        location = Location(
            id=uuid.uuid4(),
            service_id=service_id,
            **{name: spec[name] for name in LOCATION_PLACE_FIELDS},
        )
        locations.append(location)
        schedules.extend(Schedule(location=location, **hours) for hours in spec["schedules"])
    return locations, schedules


def _create(organisation: Organisation, records: list[DirectoryImportRecord]) -> None:
    if not records:
        return
    link = Service.taxonomy_terms.through
    services, links, locations, schedules, capacities = [], [], [], [], []
    for record in records:
        values = record.values
        service = Service(
            id=uuid.uuid4(),
            organisation=organisation,
            external_id=record.external_id,
            taxonomy_codes=values["taxonomy"],
            **{name: values[name] for name in SERVICE_FIELDS},
        )
        services.append(service)
        links.extend(
            link(service_id=service.id, taxonomyterm_id=code) for code in values["taxonomy"]
        )
        places, hours = _locations(service.id, values)
        locations.extend(places)
        schedules.extend(hours)
        capacities.append(Capacity(service=service, **(values["capacity"] or {})))
    Service.objects.bulk_create(services)
    link.objects.bulk_create(links)
    Location.objects.bulk_create(locations)
    Schedule.objects.bulk_create(schedules)
    Capacity.objects.bulk_create(capacities)
    capacity_history_record(capacities)


def _update(pairs: list[tuple[Service, DirectoryImportRecord]]) -> None:
    """Replace what the file describes, as `service_update` does, locations included (through
    the same `locations_replace`, which keeps a location sent again at the same coordinates)."""
    if not pairs:
        return
    link = Service.taxonomy_terms.through
    ids = [service.pk for service, _ in pairs]
    link.objects.filter(service_id__in=ids).delete()
    links, capacities = [], []
    locations_by_service = {}
    current = {
        c.service_id: c for c in Capacity.objects.select_for_update().filter(service_id__in=ids)
    }
    for service, record in pairs:
        values = record.values
        for name in SERVICE_FIELDS:
            setattr(service, name, values[name])
        service.taxonomy_codes = values["taxonomy"]
        service.save()
        links.extend(
            link(service_id=service.pk, taxonomyterm_id=code) for code in values["taxonomy"]
        )
        locations_by_service[service.pk] = [
            {**{name: spec[name] for name in LOCATION_PLACE_FIELDS}, "schedules": spec["schedules"]}
            for spec in values["locations"]
        ]
        capacity = current.get(service.pk)
        if values["capacity"] is not None and capacity is not None:
            for name, value in values["capacity"].items():
                setattr(capacity, name, value)
            capacity.version += 1
            capacity.save()
            capacities.append(capacity)
    link.objects.bulk_create(links)
    locations_replace(locations_by_service=locations_by_service)
    capacity_history_record(capacities)


# --- Finishing ---------------------------------------------------------------------------------


@transaction.atomic
def _finish(job: DirectoryImport, status: str, *, failure: str = "") -> None:
    job = DirectoryImport.objects.select_for_update().get(pk=job.pk)
    counts = DirectoryImportRecord.objects.filter(job=job, kind="service").aggregate(
        total=Count("pk")
    )
    job.status = status
    job.failure = failure
    job.finished = timezone.now()
    if job.total is None:
        job.total = counts["total"]
    job.save(update_fields=["status", "failure", "finished", "total"])
    DirectoryImportChunk.objects.filter(job=job).delete()
    DirectoryImportRecord.objects.filter(job=job).delete()
    if job.organisation_id is not None:
        emit(
            "directory.import.finished",
            organisations=[job.organisation],
            data={
                "import_id": str(job.pk),
                "status": job.status,
                "dry_run": job.dry_run,
                "counts": counts_of(job),
                "links": {"self": f"/api/v1/directory/imports/{job.pk}"},
            },
        )


def counts_of(job: DirectoryImport) -> dict[str, int]:
    return {
        "created": job.created_count,
        "updated": job.updated_count,
        "skipped": job.skipped_count,
        "refused": job.refused_count,
    }
