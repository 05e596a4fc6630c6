"""Celery tasks: thin wrappers over services, taking ids. On their own queue, so a backlog of
webhook attempts never delays the project's other tasks; each attempt is its own task, so one
slow receiver holds one worker slot for at most the HTTP timeout and never the others' turn."""

from celery import shared_task

from api.webhooks import services

QUEUE = "webhooks"


@shared_task(name="webhooks.deliver", queue=QUEUE, ignore_result=True, acks_late=True)
def deliver(delivery_id: str) -> None:
    services.delivery_attempt(delivery_id)


@shared_task(name="webhooks.sweep", queue=QUEUE, ignore_result=True)
def sweep(grace: float = 15.0) -> dict:
    return services.sweep(grace=grace)
