"""`manage.py import_hsds PATH [--organisation ID] [--dry-run]`: a steward imports an HSDS
directory from the command line, with a progress bar and a summary table. The same job as
`POST /api/v1/directory/imports`, run in this process. Without --organisation, each HSDS
organization in the file becomes (or updates) a member organisation, matched by its HSDS id."""

import tempfile
import zipfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.errors import DomainError
from partners.imports.records import is_uuid
from partners.imports.services import directory_import_create, import_run, mapping_parse
from partners.models import DirectoryImport, ImportFormat, OnConflict, Organisation

REPORT_ROWS = 20


def _where(issue: dict) -> str:
    if "pointer" in issue:
        return issue["pointer"] or "/"
    column = f", {issue['column']}" if issue.get("column") else ""
    return f"{issue.get('file')} row {issue.get('row')}{column}"


class Command(BaseCommand):
    help = "Import an HSDS 3.1 directory (JSON file, zipped Data Package, or its folder)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--organisation",
            help="Id of the organisation that owns every record; by default, the "
            "organizations the file names.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report; change nothing.")
        parser.add_argument("--on-conflict", choices=OnConflict.values, default=OnConflict.SKIP)
        parser.add_argument("--mapping", type=Path, help="Taxonomy mapping file (CSV or JSON).")
        parser.add_argument("--format", choices=ImportFormat.values)

    def handle(self, *args, **options):
        console = Console(file=self.stdout, force_terminal=False, width=120)
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        organisation = None
        if options["organisation"]:
            organisation = None
            if is_uuid(options["organisation"]):
                organisation = Organisation.objects.filter(pk=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"No organisation {options['organisation']}.")
        import_format = options["format"] or (
            ImportFormat.JSON if path.suffix.lower() == ".json" else ImportFormat.TABULAR
        )
        with tempfile.TemporaryDirectory() as tmp:
            if path.is_dir():
                path = self._zip(path, Path(tmp) / "package.zip")
            try:
                mapping = (
                    mapping_parse(options["mapping"].read_bytes()) if options["mapping"] else None
                )
                with open(path, "rb") as file:
                    job = directory_import_create(
                        organisation=organisation,
                        file=file,
                        size=path.stat().st_size,
                        import_format=import_format,
                        dry_run=options["dry_run"],
                        on_conflict=options["on_conflict"],
                        taxonomy_mapping=mapping,
                        enqueue=False,
                    )
            except DomainError as exc:
                raise CommandError(f"{exc.detail} {exc.extensions.get('errors', '')}") from None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("reading", total=None)

            def progress(phase: str, done: int, total: int | None) -> None:
                bar.update(task, description=phase, completed=done, total=total)

            import_run(job.pk, progress=progress)
        self._summary(console, DirectoryImport.objects.get(pk=job.pk))

    @staticmethod
    def _zip(folder: Path, target: Path) -> Path:
        """A Data Package folder, zipped as an upload would be."""
        if not (folder / "datapackage.json").is_file():
            raise CommandError(f"{folder} holds no datapackage.json.")
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.iterdir()):
                if file.is_file():
                    archive.write(file, file.name)
        return target

    def _summary(self, console: Console, job: DirectoryImport) -> None:
        table = Table(title=f"Import {job.pk}" + (" (dry run)" if job.dry_run else ""))
        for column in ("status", "records", "created", "updated", "skipped", "refused"):
            table.add_column(column, justify="right")
        table.add_row(
            job.status,
            str(job.total or 0),
            str(job.created_count),
            str(job.updated_count),
            str(job.skipped_count),
            str(job.refused_count),
        )
        console.print(table)
        if job.failure:
            console.print(f"Failed: {job.failure}")
        for title, issues, count in (
            ("Errors", job.errors, job.error_count),
            ("Warnings", job.warnings, job.warning_count),
        ):
            if not count:
                continue
            report = Table(title=f"{title} ({count}; the first {min(count, REPORT_ROWS)})")
            report.add_column("where")
            report.add_column("record")
            report.add_column("detail")
            for issue in issues[:REPORT_ROWS]:
                report.add_row(_where(issue), issue.get("record", ""), issue["detail"])
            console.print(report)
        if job.unmapped_terms:
            unmapped = Table(title="Unmapped taxonomy terms (give a --mapping)")
            for column in ("taxonomy", "code", "name", "records"):
                unmapped.add_column(column)
            for term in job.unmapped_terms[:REPORT_ROWS]:
                unmapped.add_row(term["taxonomy"], term["code"], term["name"], str(term["count"]))
            console.print(unmapped)
        if job.status == "failed":
            raise CommandError("The import failed.")
