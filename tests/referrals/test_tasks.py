"""The scheduled referral jobs are registered and on the beat schedule."""

from django.conf import settings

from api.celery import app


def test_beat_schedules_the_referral_jobs():
    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in (
        "referrals.expire_overdue",
        "referrals.destroy_expired_consents",
        "referrals.rotate_key_epochs",
    ):
        assert name in tasks
        assert name in app.tasks
