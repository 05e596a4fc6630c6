"""The OpenAPI 3.1 `webhooks:` section: one entry and one payload schema per event type, and the
guide a receiver needs (signature, retries, disabling, ordering, loopback in development), all
written from the constants the delivery code uses so the document cannot drift from them."""

from django.urls import reverse

from api.events import EVENT_TYPES
from api.webhooks import services

UUID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
REFERRAL_STATUS = {"type": "string", "description": "The referral's status after the event."}


def _referral(description: str, **extra) -> dict:
    properties = {
        "referral_id": {
            **UUID,
            "description": "The referral's id: `GET /api/v1/referrals/{id}`.",
        },
        "sender_id": {**UUID, "description": "The sending organisation's id."},
        "receiver_id": {**UUID, "description": "The receiving organisation's id."},
        "status": REFERRAL_STATUS,
        "at": {**TIME, "description": "When it happened (UTC)."},
    }
    required = [*properties]
    for name, (schema, is_required) in extra.items():
        properties[name] = schema
        if is_required:
            required.append(name)
    return {"description": description, "properties": properties, "required": required}


SIDE = {
    "type": "string",
    "enum": ["sender", "receiver", "person"],
    "description": "Who acted: one of the two organisations, or the person through self-service.",
}
EXPIRES = {**TIME, "description": "When the consent expires (UTC)."}

# What each event's `data` carries besides `id` (the event's id, also the `webhook-id`): ids,
# codes and times, never personal data; fetch the rest with your own token. Every other id is
# named for what it identifies, `<name>_id`, and means the same in every event
# (tests/api/webhooks/test_payload_ids.py).
EVENTS = {
    "referral.received": _referral("A referral was sent to your organisation."),
    "referral.status_changed": _referral(
        "A referral you sent or received changed status.",
        previous_status=({"type": "string", "description": "The status before."}, True),
    ),
    "referral.note_added": _referral(
        "The other organisation added a note to a referral.",
        note_id=(
            {**UUID, "description": "The note's id: `GET /api/v1/referrals/{id}/notes`."},
            True,
        ),
    ),
    "referral.consent_revoked": _referral(
        "The person's consent ended: revoked (by the person or an organisation on their word) or "
        "expired. Their personal data is destroyed; the referral's metadata stays.",
        reason=(
            {
                "type": "string",
                "enum": ["revoked", "expired"],
                "description": "Revoked, or expired.",
            },
            True,
        ),
        side=(SIDE, False),
        method=(
            {
                "type": "string",
                "enum": ["in_person", "phone", "message", "self_service"],
                "description": "How the person said it, when an organisation recorded it.",
            },
            False,
        ),
    ),
    "referral.consent_renewed": _referral(
        "The sender renewed the person's consent.", expires_at=(EXPIRES, True)
    ),
    "referral.consent_expiring": _referral(
        "A consent you recorded expires soon: ask the person whether to renew it.",
        expires_at=(EXPIRES, True),
    ),
    "referral.safe_contact_changed": _referral(
        "The safe-contact instructions changed: read them again before any contact.",
        side=(SIDE, True),
        safe_contact_version=(
            {"type": "integer", "description": "The new safe-contact version."},
            True,
        ),
    ),
    "capacity.updated": {
        "description": "An organisation you partner with (or yours) published capacity.",
        "properties": {
            "organisation_id": {**UUID, "description": "The publishing organisation's id."},
            "services": {
                "type": "array",
                "description": "The services whose capacity changed.",
                "items": {
                    "type": "object",
                    "properties": {
                        "service_id": {**UUID, "description": "The service's id."},
                        "version": {"type": "integer", "description": "The new capacity version."},
                    },
                    "required": ["service_id", "version"],
                },
            },
        },
        "required": ["organisation_id", "services"],
    },
    "partnership.changed": {
        "description": "A partnership of yours was proposed, accepted, declined, suspended, "
        "resumed or ended.",
        "properties": {
            "partnership_id": {**UUID, "description": "The partnership's id."},
            "status": {"type": "string", "description": "Its status after the change."},
        },
        "required": ["partnership_id", "status"],
    },
    "directory.import.finished": {
        "description": "A directory import you started finished.",
        "properties": {
            "import_id": {**UUID, "description": "The import job's id."},
            "status": {"type": "string", "description": "How it finished."},
            "dry_run": {"type": "boolean", "description": "Nothing was changed."},
            "counts": {
                "type": "object",
                "description": "Records created, updated, skipped and refused.",
                "additionalProperties": {"type": "integer"},
            },
            "links": {
                "type": "object",
                "description": "Where to read the report.",
                "properties": {"self": {"type": "string", "description": "The job's URL."}},
            },
        },
        "required": ["import_id", "status", "dry_run", "counts", "links"],
    },
    "ping": {
        "description": "A test event, sent only when you ask (the endpoint's `ping`); not "
        "subscribable.",
        "properties": {
            "webhook_endpoint_id": {**UUID, "description": "The endpoint pinged."},
        },
        "required": ["webhook_endpoint_id"],
    },
}

SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id; the same on every retry and redelivery. Use it to "
        "drop a delivery you already processed.",
        "schema": UUID,
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "When this attempt was signed, in Unix seconds. Refuse one more than "
        "five minutes from your clock (replays).",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "Space-separated `v1,<base64 HMAC-SHA256>` signatures of "
        "`{webhook-id}.{webhook-timestamp}.{body}`, one per live secret (two for 24 hours "
        "after a rotation). Accept the delivery if any one matches.",
        "schema": {"type": "string"},
    },
]


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _route(name: str, **kwargs) -> str:
    """A route as the document writes it: `{id}` where the object's id goes."""
    path = reverse(name, kwargs={key: "00000000-0000-0000-0000-000000000000" for key in kwargs})
    return path.replace("00000000-0000-0000-0000-000000000000", "{id}")


def guide() -> str:
    endpoints = reverse("webhook-endpoint-list")
    deliveries = _route("webhook-endpoint-deliveries", pk=True)
    redeliver = _route("delivery-redeliver", id=True)
    delays = ", ".join(_duration(delay) for delay in services.RETRY_DELAYS)
    days = services.FAILING_LIMIT.days
    overlap = int(services.SECRET_OVERLAP.total_seconds() // 3600)
    return f"""Webhooks follow [Standard Webhooks](https://www.standardwebhooks.com/). Create an \
endpoint with `POST {endpoints}` (scope `webhooks:manage`); the answer shows its \
signing secret (`whsec_…`) once. Each event below is a `POST` of JSON to your URL.

**Verifying the signature.** Every request carries `webhook-id`, `webhook-timestamp` and \
`webhook-signature`. The signature is `v1,` + base64(HMAC-SHA256(key, \
"{{webhook-id}}.{{webhook-timestamp}}.{{raw body}}")), where key is the base64-decoded part of the \
secret after `whsec_`. After a secret rotation the header holds two signatures for {overlap} h \
(old and new secret); accept if one matches. Refuse a timestamp more than five minutes off, and \
compare in constant time. Verify the raw body, before parsing it.

Python, with the `standardwebhooks` package:

```python
from standardwebhooks import Webhook

def verified(secret: str, body: bytes, headers: dict) -> dict:
    # Raises WebhookVerificationError on a bad signature or a stale timestamp.
    return Webhook(secret).verify(body, headers)
```

JavaScript (Node.js, no dependency):

```javascript
const crypto = require("node:crypto");

function verified(secret, body, headers) {{  // body: the raw request body, a string
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const id = headers["webhook-id"], timestamp = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) throw new Error("stale timestamp");
  const expected = Buffer.from(crypto.createHmac("sha256", key)
    .update(`${{id}}.${{timestamp}}.${{body}}`).digest("base64"));
  const ok = headers["webhook-signature"].split(" ").some((entry) => {{
    const [version, signature] = entry.split(",");
    const given = Buffer.from(signature || "");
    return version === "v1" && given.length === expected.length
      && crypto.timingSafeEqual(given, expected);
  }});
  if (!ok) throw new Error("bad signature");
  return JSON.parse(body);
}}
```

**Answering and retries.** Answer any 2xx quickly (within 15 s; connecting gets 5 s) and do the \
work afterwards. A timeout, a connection error, a 429 or a 5xx is retried: the first attempt is \
immediate, then after {delays} (each ±10 % jitter), {services.MAX_ATTEMPTS} attempts in all; a \
`Retry-After` on a 429 or 5xx is honoured up to {_duration(services.MAX_RETRY_AFTER)}. A \
redirect or any other status is not retried. The deliveries and every attempt are listed under \
`GET {deliveries}`; `POST {redeliver}` sends one again with the same `webhook-id` and a fresh schedule.

**When an endpoint is disabled.** An endpoint is disabled (`active: false`, with \
`disabled_at` and its reason) when it answers `410 Gone`, or when every delivery to it has \
failed for {days} days (`failing_since` shows the start). Events go on being recorded for it; \
`PATCH` it with `active: true` to re-enable it and receive what waited.

**Ordering.** Delivery is at least once, and retries mean deliveries can arrive out of order. \
Each delivery to an endpoint carries `sequence`, one more than the endpoint's previous one: \
process events in increasing `sequence`, and drop a `webhook-id` you have already processed. \
A gap means an earlier delivery is still being retried (or was given up: see the deliveries \
list).

**Which addresses.** URLs must be `https://` on a public address: private, link-local, \
loopback and cloud-metadata addresses are refused, also when the name resolves to one, and \
redirects are never followed. **Loopback in development:** `make run` and the test settings \
set `ALLOW_LOOPBACK_WEBHOOKS=1`, so a receiver on your own machine (`http://127.0.0.1:…`, \
`http://[::1]:…`, plain http allowed) works there; production refuses to start with it.

**Bodies are thin.** A body names the event's `type`, its `timestamp`, the endpoint's \
`sequence` and `data` with ids, codes and times: never personal data. In `data`, `id` is the \
event's own id and every other id is named for what it identifies, the same in every event: \
`referral_id`, `sender_id`, `receiver_id`, `note_id`, `organisation_id`, `service_id`, \
`partnership_id`, `import_id`, `webhook_endpoint_id`. Fetch the details with your own token; \
they answer 404 or 410 when you may no longer see them."""


def _name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))


def add_webhooks(result, generator, request, public):
    """Add the `webhooks:` section and the receiver's guide (in the `webhooks` tag)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    webhooks = {}
    for event_type in (*EVENT_TYPES, "ping"):
        event = EVENTS[event_type]
        name = f"{_name(event_type)}Event"
        data = {
            "type": "object",
            "description": event["description"],
            "properties": {
                "id": {**UUID, "description": "The event's id, also the `webhook-id` header."},
                **event["properties"],
            },
            "required": ["id", *event["required"]],
        }
        schemas[name] = {
            "type": "object",
            "description": f"The body of a `{event_type}` delivery.",
            "properties": {
                "type": {"type": "string", "const": event_type, "description": "The event type."},
                "timestamp": {**TIME, "description": "When the event happened (UTC)."},
                "sequence": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "This endpoint's delivery number: process in this order.",
                },
                "data": data,
            },
            "required": ["type", "timestamp", "sequence", "data"],
        }
        webhooks[event_type] = {
            "post": {
                "operationId": f"on_{event_type.replace('.', '_')}",
                "summary": event_type,
                "description": event["description"] + " See the `webhooks` tag for the "
                "signature, retries and ordering.",
                "tags": ["webhooks"],
                "security": [],
                "parameters": SIGNATURE_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                    },
                },
                "responses": {
                    "2XX": {"description": "Received; any 2xx acknowledges the delivery."},
                    "410": {"description": "Gone: disables the endpoint until re-enabled."},
                    "429": {"description": "Retried later (honouring Retry-After)."},
                    "5XX": {"description": "Retried later."},
                },
            }
        }
    result["webhooks"] = webhooks
    # The tags are the settings' own dicts: replace, never extend, or a second run adds twice.
    result["tags"] = [
        {**tag, "description": tag["description"] + "\n\n" + guide()}
        if tag["name"] == "webhooks"
        else tag
        for tag in result.get("tags", [])
    ]
    return result
