"""Celery tasks of the directory: thin wrappers over partners/imports/services.py, taking ids."""

from celery import shared_task
from celery.signals import worker_ready

from partners.imports import services


@shared_task(name="directory.import", ignore_result=True, acks_late=True)
def run_import(job_id: str) -> str | None:
    return services.import_run(job_id)


@shared_task(name="directory.imports_resume", ignore_result=True)
def imports_resume() -> int:
    return services.imports_resume()


@worker_ready.connect
def resume_on_start(**kwargs) -> None:
    """A worker that starts (again) picks up the imports a killed one left, without waiting
    for beat."""
    imports_resume.apply_async(retry=False)
