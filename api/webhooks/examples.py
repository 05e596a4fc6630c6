"""OpenAPI examples of the webhook endpoints, kept apart so the views read as code."""

from drf_spectacular.utils import OpenApiExample

ENDPOINT_EXAMPLE = {
    "id": "6f1c2a4e-0d8b-4c1e-9a57-3b2f1e0c9d8a",
    "url": "https://partner.example.org/hooks/srn",
    "description": "Case system",
    "event_types": ["referral.received", "referral.status_changed"],
    "active": True,
    "disabled_reason": "",
    "disabled_at": None,
    "failing_since": None,
    "previous_secret_expires": None,
    "created": "2026-11-28T09:00:00Z",
    "updated": "2026-11-28T09:00:00Z",
}
SECRET_EXAMPLE = {**ENDPOINT_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
DELIVERY_EXAMPLE = {
    "id": "0e3f9b1c-7a2d-4f65-8c4b-1d2e3f4a5b6c",
    "endpoint": ENDPOINT_EXAMPLE["id"],
    "event": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    "event_type": "ping",
    "sequence": 12,
    "status": "pending",
    "next_attempt_at": "2026-11-28T09:00:00Z",
    "delivered_at": None,
    "created": "2026-11-28T09:00:00Z",
}
ATTEMPT_EXAMPLE = {
    "id": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    "delivery": DELIVERY_EXAMPLE["id"],
    "event": DELIVERY_EXAMPLE["event"],
    "event_type": "referral.received",
    "sequence": 12,
    "created": "2026-11-28T09:00:01Z",
    "status_code": 503,
    "latency_ms": 87,
    "succeeded": False,
    "error": "",
    "delivery_status": "pending",
}


def _example(name, value, *, request=False, status="200"):
    return OpenApiExample(
        name,
        value=value,
        request_only=request,
        response_only=not request,
        status_codes=None if request else [status],
    )


ENDPOINT_LIST = [_example("Endpoints", [ENDPOINT_EXAMPLE])]
ENDPOINT_CREATE = [
    _example(
        "Subscribe",
        {"url": ENDPOINT_EXAMPLE["url"], "event_types": ENDPOINT_EXAMPLE["event_types"]},
        request=True,
    ),
    _example("Created", SECRET_EXAMPLE, status="201"),
]
ENDPOINT = [_example("Endpoint", ENDPOINT_EXAMPLE)]
ENDPOINT_UPDATE = [
    _example("Re-enable", {"active": True}, request=True),
    _example("Endpoint", ENDPOINT_EXAMPLE),
]
SECRET_ROTATE = [_example("Rotated", SECRET_EXAMPLE)]
DELIVERY_QUEUED = [_example("Queued", DELIVERY_EXAMPLE, status="202")]
ATTEMPTS = [_example("Attempts", [ATTEMPT_EXAMPLE])]
