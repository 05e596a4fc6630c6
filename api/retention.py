"""Retention: what is deleted, when, and how. Each job works in batches it locks with
FOR UPDATE SKIP LOCKED, so two copies of a job (a beat tick overlapping a slow run, or an
operator's `manage.py purge` beside the worker) share the work instead of colliding, and a
second run finds nothing left to do. Every run that removes something is audited.

Periods are settings (days): RETENTION_PERSONAL_DATA_DAYS (30) after a referral closes,
RETENTION_METADATA_DAYS (365) after it closes, RETENTION_WEBHOOK_ATTEMPTS_DAYS (30, also for delivered outbox events),
RETENTION_AUDIT_DAYS (730), RETENTION_IMPORT_DAYS (90) after an HSDS import finishes.
Idempotency keys follow api.idempotency.RETENTION (24 h); expired sessions (the admin's, the
person page's) go daily. The jobs on the apps' own data (referrals/retention.py,
partners/retention.py) register here when their app is ready; the schedule is
settings.CELERY_BEAT_SCHEDULE."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model

from api.audit.models import AuditEntry
from api.audit.services import audit_prune_through, audit_record
from api.idempotency import RETENTION as IDEMPOTENCY_RETENTION
from api.models import Event, IdempotencyKey, RateLimitWindow
from api.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookDeliveryAttempt


def days(name: str, default: int) -> timedelta:
    return timedelta(days=getattr(settings, name, default))


@dataclass(frozen=True)
class Job:
    name: str
    candidates: Callable[[datetime], QuerySet]
    run: Callable[[datetime, int], int]


# Every job by name. Apps add theirs when they are ready (`register`), the way they register
# event subscribers, so this module knows no app.
JOBS: dict[str, Job] = {}


def register(*jobs: Job) -> None:
    for job in jobs:
        JOBS[job.name] = job


def in_locked_batches(queryset: QuerySet, act: Callable[[list[Model]], None], batch: int) -> int:
    """Lock up to `batch` rows nobody else holds, act on them, commit; repeat until none are
    left. Rows a concurrent run holds are skipped, and gone by the time they could be retaken."""
    done = 0
    while True:
        with transaction.atomic():
            rows = list(
                queryset.select_for_update(skip_locked=True, of=("self",)).order_by("pk")[:batch]
            )
            if rows:
                act(rows)
        done += len(rows)
        if len(rows) < batch:
            return done


def _delete(rows: list[Model]) -> None:
    type(rows[0]).objects.filter(pk__in=[row.pk for row in rows]).delete()


def deleting(name: str, candidates: Callable[[datetime], QuerySet]) -> Job:
    """A job that deletes its candidates in locked batches."""
    return Job(
        name, candidates, lambda now, batch: in_locked_batches(candidates(now), _delete, batch)
    )


def old_webhook_attempts(now: datetime) -> QuerySet:
    cutoff = now - days("RETENTION_WEBHOOK_ATTEMPTS_DAYS", 30)
    return WebhookDeliveryAttempt.objects.filter(created__lt=cutoff)


def old_events(now: datetime) -> QuerySet:
    """Outbox events past the attempts' period with nothing left to deliver. An event still
    pending for a disabled endpoint waits for it to be re-enabled."""
    cutoff = now - days("RETENTION_WEBHOOK_ATTEMPTS_DAYS", 30)
    pending = WebhookDelivery.objects.filter(event=OuterRef("pk"), status=DeliveryStatus.PENDING)
    return Event.objects.filter(created__lt=cutoff, dispatched_at__isnull=False).exclude(
        Exists(pending)
    )


def expired_tokens(now: datetime) -> QuerySet:
    return get_access_token_model().objects.filter(expires__lt=now)


def expired_grants(now: datetime) -> QuerySet:
    return get_grant_model().objects.filter(expires__lt=now)


def expired_id_tokens(now: datetime) -> QuerySet:
    return get_id_token_model().objects.filter(expires__lt=now)


def old_idempotency_keys(now: datetime) -> QuerySet:
    return IdempotencyKey.objects.filter(created__lt=now - IDEMPOTENCY_RETENTION)


def expired_sessions(now: datetime) -> QuerySet:
    return Session.objects.filter(expire_date__lt=now)


def old_rate_limit_windows(now: datetime) -> QuerySet:
    # Anyone can create windows by naming made-up client ids at the token endpoint.
    return RateLimitWindow.objects.filter(window_start__lt=int(now.timestamp()) - 86400)


def old_audit_entries(now: datetime) -> QuerySet:
    return AuditEntry.objects.filter(time__lt=now - days("RETENTION_AUDIT_DAYS", 730))


def prune_audit_trail(now: datetime, batch: int) -> int:
    """Remove the prefix of the chain older than the retention period; the anchor keeps the
    remaining entries verifiable. The audit lock serialises concurrent runs."""
    last = old_audit_entries(now).order_by("-sequence").values_list("sequence", flat=True).first()
    return audit_prune_through(last) if last is not None else 0


register(
    deleting("webhook_attempts", old_webhook_attempts),
    deleting("outbox_events", old_events),
    deleting("oauth_access_tokens", expired_tokens),
    deleting("oauth_grants", expired_grants),
    deleting("oauth_id_tokens", expired_id_tokens),
    deleting("idempotency_keys", old_idempotency_keys),
    deleting("admin_sessions", expired_sessions),
    deleting("rate_limit_windows", old_rate_limit_windows),
    Job("audit_trail", old_audit_entries, prune_audit_trail),
)


def retention_counts(*, now: datetime | None = None) -> dict[str, int]:
    """What each job would remove now (for `purge --dry-run`)."""
    now = now or timezone.now()
    return {name: job.candidates(now).count() for name, job in JOBS.items()}


def retention_run(name: str, *, now: datetime | None = None, batch: int = 500) -> int:
    """Run one job; record it in the audit trail when it removed anything."""
    now = now or timezone.now()
    removed = JOBS[name].run(now, batch)
    if removed:
        audit_record(action=f"purge {name}", result=f"removed {removed}", object_type=name)
    return removed
