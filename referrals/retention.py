"""The referrals app's retention jobs, registered with api.retention when the app is ready.
Periods: RETENTION_PERSONAL_DATA_DAYS (30) and RETENTION_METADATA_DAYS (365) after a referral
closes; expired self-service tokens, and self-service locks idle for 30 days."""

import functools
from datetime import datetime

from django.db.models import QuerySet

from api.retention import Job, days, deleting, in_locked_batches
from referrals.models import TERMINAL_STATUSES, Referral
from referrals.selectors import (
    referrals_past_retention,
    self_service_locks_idle,
    self_service_tokens_expired,
)
from referrals.services import personal_data_expire


def closed_metadata(now: datetime) -> QuerySet[Referral]:
    cutoff = now - days("RETENTION_METADATA_DAYS", 365)
    return Referral.objects.filter(status__in=TERMINAL_STATUSES, closed__lte=cutoff)


def shred_closed_referrals(now: datetime, batch: int) -> int:
    """Crypto-shred the personal data of closed referrals, through the same path as consent
    expiry (ciphertexts and the data key deleted; metadata and timeline kept). Reads stopped
    at the same cut-off, at request time (selectors.ensure_personal_data)."""
    act = functools.partial(personal_data_expire, now=now)
    return in_locked_batches(referrals_past_retention(now), act, batch)


JOBS = (
    Job("referral_personal_data", referrals_past_retention, shred_closed_referrals),
    deleting("referral_metadata", closed_metadata),
    deleting("self_service_tokens", self_service_tokens_expired),
    deleting("self_service_locks", self_service_locks_idle),
)
