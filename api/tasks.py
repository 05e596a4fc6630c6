"""Periodic retention tasks (Celery beat; schedule in settings.CELERY_BEAT_SCHEDULE). Thin
wrappers over api.retention; each job is safe to run twice at once."""

from celery import shared_task

from api.retention import retention_run


@shared_task(name="retention.run", ignore_result=True)
def retention(job: str) -> int:
    return retention_run(job)
