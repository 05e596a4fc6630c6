"""Celery task of the FHIR facade: a thin wrapper over services (see CELERY_BEAT_SCHEDULE). On
the webhooks queue: it only writes outbox rows for the webhook workers to send."""

from celery import shared_task

from referrals.fhir.services import subscriptions_maintain


@shared_task(name="fhir.subscriptions", queue="webhooks", ignore_result=True)
def maintain_subscriptions() -> dict:
    """Heartbeats for quiet subscriptions; ended ones turned off."""
    return subscriptions_maintain()
