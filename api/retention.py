"""Retention: what is deleted, when, and how. Each job works in batches it locks with
FOR UPDATE SKIP LOCKED, so two copies of a job (a beat tick overlapping a slow run, or an
operator's `manage.py purge` beside the worker) share the work instead of colliding, and a
second run finds nothing left to do. Every run that removes something is audited.

Periods are settings (days): RETENTION_PERSONAL_DATA_DAYS (30) after a referral closes,
RETENTION_METADATA_DAYS (365) after it closes, RETENTION_WEBHOOK_ATTEMPTS_DAYS (30, also for delivered outbox events),
RETENTION_AUDIT_DAYS (730). Idempotency keys follow api.idempotency.RETENTION (24 h); expired
admin sessions go daily."""

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

CLOSED_STATUSES = ("completed", "declined", "cancelled", "expired")


def days(name: str, default: int) -> timedelta:
    return timedelta(days=getattr(settings, name, default))


def _referral_model():
    from referrals.models import Referral

    return Referral


def closed_with_personal_data(now: datetime) -> QuerySet:
    cutoff = now - days("RETENTION_PERSONAL_DATA_DAYS", 30)
    return _referral_model().objects.filter(
        status__in=CLOSED_STATUSES, closed__lte=cutoff, personal_data="present"
    )


def closed_metadata(now: datetime) -> QuerySet:
    cutoff = now - days("RETENTION_METADATA_DAYS", 365)
    return _referral_model().objects.filter(status__in=CLOSED_STATUSES, closed__lte=cutoff)


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


def _in_locked_batches(queryset: QuerySet, act: Callable[[list[Model]], None], batch: int) -> int:
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


def shred_closed_referrals(now: datetime, batch: int) -> int:
    """Crypto-shred the personal data of closed referrals, through the same path as consent
    expiry (ciphertexts and the data key deleted; metadata and timeline kept)."""
    from referrals.models import PersonalDataState
    from referrals.services import _destroy_personal_data

    def act(referrals):
        for referral in referrals:
            _destroy_personal_data(referral, PersonalDataState.EXPIRED, actor=None, now=now)

    return _in_locked_batches(closed_with_personal_data(now), act, batch)


def prune_audit_trail(now: datetime, batch: int) -> int:
    """Remove the prefix of the chain older than the retention period; the anchor keeps the
    remaining entries verifiable. The audit lock serialises concurrent runs."""
    last = old_audit_entries(now).order_by("-sequence").values_list("sequence", flat=True).first()
    return audit_prune_through(last) if last is not None else 0


@dataclass(frozen=True)
class Job:
    name: str
    candidates: Callable[[datetime], QuerySet]
    run: Callable[[datetime, int], int]


def _deleting(candidates: Callable[[datetime], QuerySet]) -> Callable[[datetime, int], int]:
    return lambda now, batch: _in_locked_batches(candidates(now), _delete, batch)


JOBS = {
    job.name: job
    for job in (
        Job("referral_personal_data", closed_with_personal_data, shred_closed_referrals),
        Job("referral_metadata", closed_metadata, _deleting(closed_metadata)),
        Job("webhook_attempts", old_webhook_attempts, _deleting(old_webhook_attempts)),
        Job("outbox_events", old_events, _deleting(old_events)),
        Job("oauth_access_tokens", expired_tokens, _deleting(expired_tokens)),
        Job("oauth_grants", expired_grants, _deleting(expired_grants)),
        Job("oauth_id_tokens", expired_id_tokens, _deleting(expired_id_tokens)),
        Job("idempotency_keys", old_idempotency_keys, _deleting(old_idempotency_keys)),
        Job("admin_sessions", expired_sessions, _deleting(expired_sessions)),
        Job("rate_limit_windows", old_rate_limit_windows, _deleting(old_rate_limit_windows)),
        Job("audit_trail", old_audit_entries, prune_audit_trail),
    )
}


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
