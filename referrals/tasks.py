"""Scheduled referral jobs: thin wrappers over services (see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from referrals.services import consents_destroy_expired, referrals_expire_overdue


@shared_task(name="referrals.expire_overdue")
def expire_overdue() -> int:
    """Mark expired what is still requested or received after respond_by."""
    return referrals_expire_overdue()


@shared_task(name="referrals.destroy_expired_consents")
def destroy_expired_consents() -> int:
    """Crypto-shred the personal data of referrals whose consent expired."""
    return consents_destroy_expired()
