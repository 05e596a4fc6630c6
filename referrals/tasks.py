"""Scheduled referral jobs: thin wrappers over services (see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from referrals.services import (
    consents_destroy_expired,
    consents_warn_expiring,
    key_epochs_rotate,
    referrals_expire_overdue,
)


@shared_task(name="referrals.expire_overdue")
def expire_overdue() -> int:
    """Mark expired what is still requested or received after respond_by."""
    return referrals_expire_overdue()


@shared_task(name="referrals.destroy_expired_consents")
def destroy_expired_consents() -> int:
    """Crypto-shred the personal data of referrals whose consent expired."""
    return consents_destroy_expired()


@shared_task(name="referrals.rotate_key_epochs")
def rotate_key_epochs() -> list[int]:
    """Start a new key epoch when due; destroy the epoch keys no live data key needs."""
    return key_epochs_rotate().destroyed


@shared_task(name="referrals.warn_expiring_consents")
def warn_expiring_consents() -> int:
    """Tell senders, once each, of consents that lapse within seven days."""
    return consents_warn_expiring()
