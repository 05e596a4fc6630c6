from django.core.management.base import BaseCommand, CommandError

from api.retention import JOBS, retention_counts, retention_run


class Command(BaseCommand):
    help = (
        "Run the retention jobs now (the same ones Celery beat runs). --dry-run prints, per "
        "job, how many rows it would remove, and removes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count.")
        parser.add_argument("--job", action="append", choices=sorted(JOBS), help="Only this job.")

    def handle(self, *args, dry_run=False, job=None, **options):
        names = job or list(JOBS)
        if dry_run:
            counts = retention_counts()
            for name in names:
                self.stdout.write(f"{name}: {counts[name]}")
            return
        for name in names:
            try:
                removed = retention_run(name)
            except Exception as exc:
                raise CommandError(f"{name} failed: {type(exc).__name__}") from exc
            self.stdout.write(f"{name}: removed {removed}")
