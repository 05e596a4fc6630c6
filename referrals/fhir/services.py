"""Writes of the FHIR facade. A Task update is one of the REST API's transitions
(referrals.services.referral_transition), chosen from the status the Task asks for; a
Subscription is a webhook endpoint (api.webhooks.services) with the backport's topic, filters,
handshake and heartbeat. The rules stay in those services; here are only the translations."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from api.webhooks import services as webhooks
from api.webhooks.models import DeliveryStatus, WebhookEndpoint
from partners.models import Organisation
from referrals import services
from referrals.fhir import codes
from referrals.fhir.errors import Refused
from referrals.fhir.models import FhirSubscription
from referrals.fhir.updates import TaskChange
from referrals.models import Referral

# What changes a Task: its creation (for the receiver), a status change, and the destruction of
# its personal data (a new version: the Consent goes inactive).
TOPIC_EVENTS = ("referral.received", "referral.status_changed", "referral.consent_revoked")
PAYLOAD_FORMAT = "fhir-r4-backport-id-only"
HANDSHAKE = "fhir.handshake"
HEARTBEAT = "fhir.heartbeat"


def transition_for(current: str, target: str) -> str:
    """The REST action that takes a referral from `current` to `target`. Where two lead there
    (accept and resume), the one allowed from `current`; whether it is allowed, and for whom,
    referral_transition decides."""
    actions = [name for name, t in services.TRANSITIONS.items() if t.target == target]
    if not actions:
        raise Refused(
            f"No party sets a referral to {target}: the network does that itself.",
            errors=[{"expression": "Task.status", "detail": "Not a status a party sets."}],
        )
    allowed = [name for name in actions if current in services.TRANSITIONS[name].sources]
    return (allowed or actions)[0]


def task_update(
    *,
    organisation: Organisation,
    referral_id: uuid.UUID,
    current_status: str,
    change: TaskChange,
    if_match: str | None,
) -> Referral:
    """The transition a changed Task asks for, as the action endpoints take it (If-Match,
    side, lifecycle, the decline note's consent gate)."""
    return services.referral_transition(
        organisation=organisation,
        referral_id=referral_id,
        action=transition_for(current_status, change.status),
        if_match=if_match,
        reason=change.reason,
        note=change.note,
        outcome=change.outcome,
    )


# --- Subscriptions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionRequest:
    """A Subscription read from its resource (see subscriptions.read)."""

    url: str
    reason: str
    filters: list[str]
    data_filter: dict
    heartbeat_period: int | None
    end: datetime | None


@transaction.atomic
def subscription_create(
    *, organisation: Organisation, request: SubscriptionRequest, base_url: str
) -> FhirSubscription:
    """A webhook endpoint of the caller's (same address checks, signing secret, retries) that
    gets the Task topic's events in FHIR notification Bundles, and its handshake."""
    endpoint = webhooks.endpoint_create(
        organisation=organisation,
        url=request.url,
        event_types=list(TOPIC_EVENTS),
        description=request.reason,
        payload_format=PAYLOAD_FORMAT,
        data_filter=request.data_filter,
    )
    subscription = FhirSubscription.objects.create(
        endpoint=endpoint,
        topic=codes.TASK_TOPIC,
        filters=request.filters,
        heartbeat_period=request.heartbeat_period,
        end=request.end,
        base_url=base_url,
    )
    subscription.handshake = _message(subscription, HANDSHAKE)
    subscription.save(update_fields=["handshake"])
    return subscription


def _message(subscription: FhirSubscription, kind: str):
    """A handshake or heartbeat, through the outbox like any event. The backport counts events
    only, so these are numbered below zero and leave the endpoint's sequence, which numbers
    the events, alone; each carries the count of events so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {FhirSubscription._meta.db_table} SET messages = messages + 1 "  # noqa: S608
            "WHERE endpoint_id = %s RETURNING messages",
            [subscription.pk],
        )
        (number,) = cursor.fetchone()
    endpoint = WebhookEndpoint.objects.get(pk=subscription.pk)
    return webhooks.endpoint_send(
        endpoint=endpoint,
        event_type=kind,
        data={"subscription": str(subscription.pk), "events": endpoint.sequence},
        sequence=-number,
    )


def subscription_delete(*, subscription: FhirSubscription) -> None:
    webhooks.endpoint_delete(endpoint=subscription.endpoint)


def subscription_status(subscription: FhirSubscription) -> tuple[str, str]:
    """The backport's status (requested, active, error, off) and the error, read from the
    endpoint and its handshake: the delivery machinery is the one record of what happened."""
    endpoint = subscription.endpoint
    if not endpoint.active:
        return "off", endpoint.disabled_reason
    handshake = subscription.handshake
    if handshake is not None and handshake.status != DeliveryStatus.SUCCEEDED:
        if handshake.status == DeliveryStatus.FAILED or handshake.attempts > 0:
            return "error", "The handshake did not reach the endpoint; see its deliveries."
        return "requested", ""
    if endpoint.failing_since is not None:
        return "error", f"Notifications have failed since {endpoint.failing_since.isoformat()}."
    return "active", ""


def subscriptions_maintain(*, now: datetime | None = None) -> dict:
    """Turn off subscriptions whose end has passed, and send a heartbeat on every active one
    that has sent nothing for its heartbeat period (the backport's keep-alive)."""
    now = now or timezone.now()
    ended = list(
        FhirSubscription.objects.filter(end__lte=now, endpoint__active=True).values_list(
            "pk", flat=True
        )
    )
    for pk in ended:
        webhooks.endpoint_disable(endpoint_id=pk, reason="The Subscription's end has passed.")
    due = (
        FhirSubscription.objects.filter(heartbeat_period__isnull=False, endpoint__active=True)
        .select_related("endpoint", "handshake")
        .annotate(last=Max("endpoint__deliveries__created"))
    )
    sent = 0
    for subscription in due:
        quiet = (now - (subscription.last or subscription.created)).total_seconds()
        if (
            quiet >= subscription.heartbeat_period
            and subscription_status(subscription)[0] == "active"
        ):
            with transaction.atomic():
                _message(subscription, HEARTBEAT)
            sent += 1
    return {"ended": len(ended), "heartbeats": sent}
