"""R4 Subscriptions backport: the Subscription resource read and written, and the notification
Bundles the webhook outbox sends (registered as a payload format in apps.py).

Only what the network can honour is accepted: the SDOH Clinical Care Task topic, a rest-hook
channel, `id-only` payloads (personal data never travels in a notification: the receiver reads
the Task with its own token), and the topic's filters owner, requester, status and code.
Custom headers are refused: a notification is authenticated by its Standard Webhooks signature,
and the signing secret is shown once, in the answer to the create."""

import json
import re

from django.utils.dateparse import parse_datetime

from api.webhooks.models import WebhookDelivery
from referrals.fhir import codes
from referrals.fhir.errors import Problems
from referrals.fhir.models import FhirSubscription
from referrals.fhir.reading import UUID, refuse_unknown
from referrals.fhir.resources import compact, instant
from referrals.fhir.services import (
    HANDSHAKE,
    HEARTBEAT,
    SubscriptionRequest,
    subscription_status,
)
from referrals.fhir.structure import structure_errors

HEARTBEAT_MIN = 60
HEARTBEAT_MAX = 86400
# A notification is one attempt of the outbox: its whole budget (api.webhooks.transport).
TIMEOUT_SECONDS = 15
FILTERS = {
    "owner": ("receiver_id", "Organization"),
    "requester": ("sender_id", "Organization"),
}


def _filter(criteria: str, index: int, problems: Problems, data_filter: dict) -> None:
    """One `Task?name=value[,value]&...` filter into data_filter (AND across filters)."""
    where = f"Subscription.criteria.extension[{index}]"
    resource_type, _, query = criteria.partition("?")
    if resource_type != "Task" or not query:
        problems.refuse(where, "Filters of the Task topic read Task?name=value.")
        return
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        values = [part for part in value.split(",") if part]
        if not values:
            problems.bad(where, f"{name} has no value.")
        elif name in FILTERS:
            key, resource_type = FILTERS[name]
            ids = []
            for one in values:
                match = re.fullmatch(rf"(?:(?:.*/)?{resource_type}/)?({UUID})", one)
                if match is None:
                    problems.bad(where, f"{name} takes {resource_type}/<id>.")
                    return
                ids.append(match.group(1).lower())
            _narrow(data_filter, key, ids)
        elif name == "status":
            statuses = [ours for one in values for ours in codes.statuses_for_task_status(one)]
            if len(statuses) < 1 or any(not codes.statuses_for_task_status(one) for one in values):
                problems.bad(where, "status takes Task status codes.")
                return
            _narrow(data_filter, "status", statuses)
        elif name == "code":
            if any(one.rpartition("|")[2] != "fulfill" for one in values):
                problems.refuse(where, "Every Task of this topic has the code fulfill.")
        else:
            problems.refuse(
                where, f"The Task topic filters by owner, requester, status and code, not {name}."
            )


def _narrow(data_filter: dict, key: str, values: list[str]) -> None:
    """Filters AND: a second filter on the same key keeps what both allow."""
    data_filter[key] = sorted(set(data_filter.get(key, values)) & set(values))


def read(body) -> SubscriptionRequest:
    problems = Problems()
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        problems.bad("Subscription", "Expected a Subscription resource.")
        problems.raise_any()
    errors = structure_errors(body)
    if errors:
        problems.malformed.extend(errors)
        problems.raise_any()
    refuse_unknown(
        body,
        {"status", "reason", "criteria", "_criteria", "channel", "end"},
        "Subscription",
        problems,
    )
    if body.get("status") not in ("requested", "active"):
        problems.refuse("Subscription.status", "A new Subscription is requested.")
    topic = body.get("criteria", "").partition("|")[0]
    if topic != codes.TASK_TOPIC:
        problems.refuse("Subscription.criteria", f"The one topic offered is {codes.TASK_TOPIC}.")
    filters = []
    data_filter: dict = {}
    for index, extension in enumerate((body.get("_criteria") or {}).get("extension", [])):
        if extension.get("url") != codes.BACKPORT_FILTER or not extension.get("valueString"):
            problems.refuse(f"Subscription.criteria.extension[{index}]", "Only filter criteria.")
            continue
        filters.append(extension["valueString"])
        _filter(extension["valueString"], index, problems, data_filter)
    channel = body.get("channel") or {}
    refuse_unknown(
        channel,
        {"extension", "type", "endpoint", "payload", "_payload"},
        "Subscription.channel",
        problems,
    )
    if channel.get("type") != "rest-hook":
        problems.refuse("Subscription.channel.type", "Notifications are sent by rest-hook only.")
    if not channel.get("endpoint"):
        problems.bad("Subscription.channel.endpoint", "The URL to send notifications to.")
    if channel.get("payload", codes.JSON) != codes.JSON:
        problems.refuse("Subscription.channel.payload", f"Notifications are {codes.JSON}.")
    contents = [
        extension.get("valueCode")
        for extension in (channel.get("_payload") or {}).get("extension", [])
        if extension.get("url") == codes.BACKPORT_CONTENT
    ]
    if contents not in ([], ["id-only"]):
        problems.refuse(
            "Subscription.channel.payload",
            "Notifications carry ids only (id-only): personal data never travels in one; the "
            "receiver reads the Task with its own token.",
        )
    heartbeat = None
    for index, extension in enumerate(channel.get("extension", [])):
        where = f"Subscription.channel.extension[{index}]"
        url = extension.get("url")
        if url == codes.BACKPORT_HEARTBEAT:
            heartbeat = extension.get("valueUnsignedInt")
            if not isinstance(heartbeat, int) or not HEARTBEAT_MIN <= heartbeat <= HEARTBEAT_MAX:
                problems.refuse(
                    where, f"A heartbeat period of {HEARTBEAT_MIN} to {HEARTBEAT_MAX} seconds."
                )
        elif url == codes.BACKPORT_TIMEOUT:
            if extension.get("valueUnsignedInt") != TIMEOUT_SECONDS:
                problems.refuse(where, f"Each attempt has {TIMEOUT_SECONDS} seconds, no other.")
        elif url == codes.BACKPORT_MAX_COUNT:
            if not isinstance(extension.get("valuePositiveInt"), int):
                problems.bad(where, "A positive integer.")
        else:
            problems.refuse(where, f"The extension {url} is not accepted here.")
    end = None
    if body.get("end"):
        end = parse_datetime(body["end"])
        if end is None or end.tzinfo is None:
            problems.bad("Subscription.end", "A time with its zone.")
    reason = body.get("reason") or ""
    if len(reason) > 200:
        problems.refuse("Subscription.reason", "At most 200 characters.")
    problems.raise_any()
    return SubscriptionRequest(
        url=channel["endpoint"],
        reason=reason,
        filters=filters,
        data_filter=data_filter,
        heartbeat_period=heartbeat,
        end=end,
    )


def resource(subscription: FhirSubscription, *, secret: str | None = None) -> dict:
    """The Subscription as the backport profiles it. `secret`: only in the answer to the
    create, the one time it is shown (as the REST API shows a webhook secret)."""
    endpoint = subscription.endpoint
    status, error = subscription_status(subscription)
    extensions = [{"url": codes.WEBHOOK_ENDPOINT, "valueString": str(endpoint.pk)}]
    if secret is not None:
        extensions.append({"url": codes.SIGNING_SECRET, "valueString": secret})
    channel_extensions = [{"url": codes.BACKPORT_TIMEOUT, "valueUnsignedInt": TIMEOUT_SECONDS}]
    channel_extensions.append({"url": codes.BACKPORT_MAX_COUNT, "valuePositiveInt": 1})
    if subscription.heartbeat_period:
        channel_extensions.append(
            {"url": codes.BACKPORT_HEARTBEAT, "valueUnsignedInt": subscription.heartbeat_period}
        )
    criteria_extensions = [
        {"url": codes.BACKPORT_FILTER, "valueString": one} for one in subscription.filters
    ]
    return compact(
        {
            "resourceType": "Subscription",
            "id": str(endpoint.pk),
            "meta": {
                "lastUpdated": instant(endpoint.updated),
                "profile": [codes.BACKPORT_SUBSCRIPTION_PROFILE],
            },
            "extension": extensions,
            "status": status,
            "end": instant(subscription.end),
            "reason": endpoint.description or "Task topic notifications",
            "criteria": subscription.topic,
            "_criteria": {"extension": criteria_extensions} if criteria_extensions else None,
            "error": error or None,
            "channel": {
                "extension": channel_extensions,
                "type": "rest-hook",
                "endpoint": endpoint.url,
                "payload": codes.JSON,
                "_payload": {
                    "extension": [{"url": codes.BACKPORT_CONTENT, "valueCode": "id-only"}]
                },
            },
        }
    )


def notification(delivery: WebhookDelivery) -> tuple[bytes, str]:
    """The backport's R4 notification Bundle for one delivery: a handshake, a heartbeat (also
    for a REST ping) or a Task event, with ids and codes only."""
    event = delivery.event
    subscription = FhirSubscription.objects.select_related("endpoint", "handshake").get(
        pk=delivery.endpoint.pk
    )
    base = subscription.base_url
    kind = {HANDSHAKE: "handshake", HEARTBEAT: "heartbeat", "ping": "heartbeat"}.get(
        event.type, "event-notification"
    )
    status = "requested" if kind == "handshake" else subscription_status(subscription)[0]
    events = delivery.sequence if kind == "event-notification" else event.data.get("events")
    if events is None:
        events = subscription.endpoint.sequence
    parameters = [
        {
            "name": "subscription",
            "valueReference": {"reference": f"{base}/Subscription/{subscription.pk}"},
        },
        {"name": "topic", "valueCanonical": subscription.topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events)},
    ]
    entries = []
    if kind == "event-notification":
        task = f"Task/{event.data['referral_id']}"
        parameters.append(
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": str(delivery.sequence)},
                    {"name": "timestamp", "valueInstant": instant(event.created)},
                    {"name": "focus", "valueReference": {"reference": f"{base}/{task}"}},
                ],
            }
        )
        created = event.type == "referral.received"
        entries.append(
            {
                "fullUrl": f"{base}/{task}",
                "request": {"method": "POST" if created else "PUT", "url": task},
                "response": {"status": "201" if created else "200"},
            }
        )
    status_entry = {
        "fullUrl": f"urn:uuid:{delivery.pk}",
        "resource": {
            "resourceType": "Parameters",
            "id": str(delivery.pk),
            "meta": {"profile": [codes.BACKPORT_STATUS_PROFILE]},
            "parameter": parameters,
        },
        "request": {"method": "GET", "url": f"Subscription/{subscription.pk}/$status"},
        "response": {"status": "200"},
    }
    bundle = {
        "resourceType": "Bundle",
        "id": str(delivery.pk),
        "meta": {"profile": [codes.BACKPORT_NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": instant(event.created),
        "entry": [status_entry, *entries],
    }
    return json.dumps(bundle, separators=(",", ":")).encode(), codes.JSON
