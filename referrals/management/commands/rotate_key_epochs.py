"""Run the epoch job now (Celery beat runs it every REFERRAL_SHRED_HOURS / 24).

With --now it starts a new epoch and destroys every older epoch key at once, instead of when
they are due: after it returns, no data key destroyed before it can be decrypted from any copy
of the database. Processes that cached a destroyed epoch key drop it within minutes
(docs/DATA.md)."""

from django.core.management.base import BaseCommand

from referrals.services import key_epochs_rotate


class Command(BaseCommand):
    help = "Start a new key epoch when due and destroy the epoch keys no live data key needs."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", action="store_true", help="Start a new epoch and retire the others now."
        )
        parser.add_argument("--batch", type=int, default=500, help="Data keys per transaction.")

    def handle(self, *args, now, batch, **options):
        result = key_epochs_rotate(force=now, batch=batch)
        started = f"started epoch {result.started}" if result.started else "no new epoch"
        destroyed = ", ".join(map(str, result.destroyed)) or "none"
        self.stdout.write(
            f"{started}; moved {result.moved} data keys; destroyed epoch keys: {destroyed}."
        )
