"""The Celery app. Tasks take ids and are thin wrappers over services (see docs/ARCHITECTURE.md).

`celery -A api` finds the app here. Django processes load it from `ApiConfig.ready()` instead of
from `api/__init__.py`, so importing the `api` package never sets DJANGO_SETTINGS_MODULE: the
default below is only for a Celery command line started without one, and `make test`'s
`api.settings.test` is not overridden by the dev default (devstack imports `api`)."""

import logging
import os
import socket
from datetime import datetime

from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import schedstate
from celery.schedules import schedule as every
from celery.signals import celeryd_init, setup_logging
from django.db import DatabaseError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.settings.dev")

app = Celery("api")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
@setup_logging.connect
def log_like_the_api(**_):
    """Workers and beat log with settings.LOGGING, one JSON object a line like the API, instead
    of Celery's own format: Celery configures nothing when `setup_logging` has a receiver.
    Python's warnings become log lines too; a worker warns (running as root) after
    `celeryd_init` but before `setup_logging`, hence both signals."""
    import logging

    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    logging.captureWarnings(True)


logger = logging.getLogger(__name__)


class Slotted(every):
    """An interval whose runs fall in fixed slots counted from the epoch: due once in each slot,
    at its start, the same instants for every beat whenever it started."""

    def is_due(self, last_run_at: datetime) -> schedstate:
        length = max(1.0, self.seconds)
        now = self.now().timestamp()
        start = now - now % length
        return schedstate(
            self.maybe_make_aware(last_run_at).timestamp() < start, start + length - now
        )


def period_of(entry, now: datetime) -> int:
    """The period an entry's run belongs to, as the start of that period in seconds since the
    epoch: interval jobs by their slot (Slotted), others (crontab) by the minute they fire in."""
    seconds = int(now.timestamp())
    if isinstance(entry.schedule, every):
        length = max(1, int(entry.schedule.run_every.total_seconds()))
    else:
        length = 60
    return seconds - seconds % length


def claim_run(job: str, period: int, claimed_by: str) -> bool:
    """True for the one beat that claims this job's period first (a unique row; a plain
    INSERT, so it works through a pooler in transaction mode). Periods older than a day go,
    found through the same index."""
    import django
    from django.apps import apps
    from django.db import close_old_connections, connection

    if not apps.ready:
        django.setup()
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO api_scheduledrun (job, period, claimed_at, claimed_by)"
            " VALUES (%s, %s, now(), %s) ON CONFLICT (job, period) DO NOTHING RETURNING id",
            [job, period, claimed_by],
        )
        claimed = cursor.fetchone() is not None
        if claimed:
            cursor.execute(
                "DELETE FROM api_scheduledrun WHERE job = %s AND period < %s",
                [job, period - 86400],
            )
    return claimed


class OncePerPeriodScheduler(PersistentScheduler):
    """Beat that sends each job once per period however many beats run: two nodes' beats, or an
    old one still stopping while its replacement starts. Each due entry is claimed in the
    database first; without the claim (taken, or the database unreachable) nothing is sent,
    since a job skipped for one period runs in the next while one sent twice cannot be undone."""

    def setup_schedule(self):
        super().setup_schedule()
        for entry in self.schedule.values():
            if type(entry.schedule) is every:
                entry.schedule = Slotted(entry.schedule.run_every, app=self.app)

    def apply_entry(self, entry, producer=None):
        period = period_of(entry, self.app.now())
        name = f"{socket.gethostname()}:{os.getpid()}"
        try:
            claimed = claim_run(entry.name, period, name)
        except DatabaseError as error:
            logger.warning("%s not sent: its run could not be claimed (%r)", entry.name, error)
            return
        if claimed:
            super().apply_entry(entry, producer)
        else:
            logger.debug("%s for period %s was sent by another beat", entry.name, period)
