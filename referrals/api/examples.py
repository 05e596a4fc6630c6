"""OpenAPI examples of the referral endpoints, kept apart so the views read as code.

The same referral throughout: the collective refers Mia to the clinic's walk-in service."""

from drf_spectacular.utils import OpenApiExample

from api.pagination import one_page
from referrals.models import TERMINAL_STATUSES

EXAMPLE_ID = "5f0c8a52-3a3e-4d51-9b8e-0d4f6f1a2b3c"
SUMMARY_EXAMPLE = {
    "id": EXAMPLE_ID,
    "claim_code": "7KQ4M2XH",
    "status": "requested",
    "urgency": "soon",
    "needs": ["sti-testing"],
    "sender": {"id": "5e2b7f4c-8a1d-4e3f-9b6c-7d8e9f0a1b2c", "name": "Red Umbrella Collective"},
    "receiver": {"id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f", "name": "Clínica Aberta"},
    "service": "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa",
    "respond_by": "2026-12-01T10:00:00Z",
    "decline_reason": "",
    "outcome": "",
    "personal_data": "present",
    "self_service": True,
    "version": 1,
    "created": "2026-11-28T10:00:00Z",
    "updated": "2026-11-28T10:00:00Z",
    "closed": None,
}
CREATE_EXAMPLE = {
    "receiver": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
    "service": "3f0e8b8a-31c1-4a0e-9a77-51f2c1d1b0aa",
    "urgency": "soon",
    "needs": ["sti-testing"],
    "person": {
        "name": "Mia",
        "pronouns": "she/her",
        "age_band": "25_34",
        "languages": ["pt-BR", "es"],
        "interpreter_needed": False,
    },
    "safe_contact": {
        "do_not_contact": False,
        "channels": ["signal"],
        "safe_times": "weekdays 10:00-12:00",
        "voicemail_ok": False,
        "may_name_organisation": False,
        "neutral_name": "Ana from the studio",
        "code_word": "sunflower",
        "instructions": "Never call; Signal text only. If someone else answers, hang up.",
    },
    "contact": {"handle": "mia.signal.42"},
    "reason": "Wants PrEP and an STI test this week.",
    "consent": {
        "consented": True,
        "method": "verbal",
        "language": "pt-BR",
        "given_at": "2026-11-28T09:45:00Z",
        "recorded_by": "staff-17",
        "purpose": "sexual-health",
        "purpose_note": "PrEP start",
        "recipient": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
        "data_categories": ["contact", "notes"],
        "by_representative": False,
        "wording_version": "2026-10",
    },
    "self_service_pin": "480391",
}

REFERRAL_LIST = [
    OpenApiExample(
        "An inbox page",
        value=one_page([SUMMARY_EXAMPLE]),
        response_only=True,
    )
]
REFERRAL_CREATE = [
    OpenApiExample("A referral to a clinic", value=CREATE_EXAMPLE, request_only=True)
]
REFERRAL_DETAIL = [
    OpenApiExample(
        "A referral",
        value={
            "safe_contact": CREATE_EXAMPLE["safe_contact"],
            "referral": SUMMARY_EXAMPLE,
            "person": CREATE_EXAMPLE["person"],
            "reason": CREATE_EXAMPLE["reason"],
            "contact": CREATE_EXAMPLE["contact"],
            "consent": {
                **{k: v for k, v in CREATE_EXAMPLE["consent"].items() if k not in ("consented",)},
                "expires_at": "2027-02-26T09:45:00Z",
                "revoked_at": None,
            },
            "allowed_actions": ["receive"],
        },
        response_only=True,
    )
]
REFERRAL_CLAIM = [
    OpenApiExample(
        "Found",
        value={
            "safe_contact": CREATE_EXAMPLE["safe_contact"],
            "referral": SUMMARY_EXAMPLE,
            "person": CREATE_EXAMPLE["person"],
            "reason": CREATE_EXAMPLE["reason"],
            "consent": {
                **{k: v for k, v in CREATE_EXAMPLE["consent"].items() if k != "consented"},
                "expires_at": "2027-02-26T09:45:00Z",
                "revoked_at": None,
            },
            "allowed_actions": ["receive"],
        },
        response_only=True,
    )
]

TRANSITION_REQUESTS = {
    "decline": {"reason": "no_capacity", "note": "Full until March."},
    "complete": {"outcome": "service_provided"},
}


def closed_example(status: str) -> dict:
    """A closed referral's summary has its closing time and no claim code."""
    if status not in TERMINAL_STATUSES:
        return {}
    return {"claim_code": None, "closed": "2026-11-29T10:00:00Z"}


def exchange(requests: dict[str, dict], answer: str, **changed) -> list[OpenApiExample]:
    """Requests, by name, and the summary answered: the example referral as they leave it."""
    return [
        *(OpenApiExample(name, value=value, request_only=True) for name, value in requests.items()),
        OpenApiExample(answer, value={**SUMMARY_EXAMPLE, **changed}, response_only=True),
    ]


def transition(action: str, summary: str, target: str) -> list[OpenApiExample]:
    """The request and the answer of one transition, named after its summary."""
    return exchange(
        {f"{summary} request": TRANSITION_REQUESTS.get(action, {})},
        f"{summary} answer",
        status=target,
        version=2,
        **closed_example(target),
    )


CONSENT_REVOKE = exchange(
    {"Told by phone": {"method": "phone"}},
    "Revoked",
    claim_code=None,
    personal_data="revoked",
    self_service=False,
    version=2,
)
CONSENT_RENEW = exchange(
    {
        "Renewed for 90 days": {
            "method": "verbal",
            "language": "pt-BR",
            "wording_version": "2026-10",
            "recorded_by": "staff-17",
            "expires_at": "2027-05-27T10:00:00Z",
        }
    },
    "Renewed",
    version=3,
)
SAFE_CONTACT = exchange(
    {
        "Stop all contact": {"do_not_contact": True, "method": "in_person"},
        "Signal only now": {
            "do_not_contact": False,
            "channels": ["signal"],
            "instructions": "New Signal number; the old phone was taken.",
            "method": "phone",
        },
    },
    "Changed",
    version=2,
)
NOTES = [
    OpenApiExample(
        "A thread",
        value=one_page(
            [
                {
                    "id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "author": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
                    "created": "2026-11-28T11:00:00Z",
                    "text": "Appointment Thursday 10:00; she can bring a friend.",
                }
            ]
        ),
        response_only=True,
    )
]
NOTE_CREATE = [
    OpenApiExample("A note", value={"text": "Appointment Thursday 10:00."}, request_only=True)
]
TIMELINE = [
    OpenApiExample(
        "Created and received",
        value=one_page(
            [
                {
                    "kind": "created",
                    "actor": "5e2b7f4c-8a1d-4e3f-9b6c-7d8e9f0a1b2c",
                    "side": "sender",
                    "method": "",
                    "from_status": "",
                    "to_status": "requested",
                    "code": "",
                    "version": None,
                    "at": "2026-11-28T10:00:00Z",
                },
                {
                    "kind": "safe_contact_changed",
                    "actor": None,
                    "side": "person",
                    "method": "self_service",
                    "from_status": "",
                    "to_status": "",
                    "code": "",
                    "version": 2,
                    "at": "2026-11-29T08:12:00Z",
                },
            ]
        ),
        response_only=True,
    )
]


# The person's own routes (self_views): the same referral, as Mia sees it in Spanish.
SELF_STATUS_EXAMPLE = {
    "language": "es",
    "state": "waiting",
    "status": "Tu solicitud fue enviada. Todavía no han respondido.",
    "next_step": "Te van a contactar solo de la forma que elegiste.",
    "contact_stopped": False,
    "can_withdraw": True,
    "can_change_contact": True,
    "updated": "2026-11-28T10:00:00Z",
}
SELF_TOKEN = [
    OpenApiExample("Code and PIN", value={"code": "7KQ4 M2XH", "pin": "480391"}, request_only=True),
    OpenApiExample(
        "A token",
        value={
            "token": "srn_self_4q0Jx9m2…",
            "token_type": "Bearer",
            "expires_in": 600,
            "expires_at": "2026-11-29T08:22:00Z",
        },
        response_only=True,
    ),
]
SELF_STATUS = [OpenApiExample("Waiting, in Spanish", value=SELF_STATUS_EXAMPLE, response_only=True)]
SELF_DISCLOSURES = [
    OpenApiExample(
        "Opened twice",
        value=one_page(
            [
                {"organisation": "Clínica Aberta", "at": "2026-11-28T11:02:00Z"},
                {"organisation": "Red Umbrella Collective", "at": "2026-11-28T10:01:00Z"},
            ]
        ),
        response_only=True,
    )
]
SELF_WITHDRAW = [
    OpenApiExample(
        "Withdrawn",
        value={
            **SELF_STATUS_EXAMPLE,
            "state": "withdrawn",
            "status": "Retiraste tu permiso. Tus datos fueron borrados.",
            "next_step": "No tienes que hacer nada más. Puedes pedir ayuda otra vez cuando quieras.",
            "contact_stopped": None,
            "can_withdraw": False,
            "can_change_contact": False,
            "updated": "2026-11-29T08:12:00Z",
        },
        response_only=True,
    )
]
SELF_SAFE_CONTACT = [
    OpenApiExample("Stop all contact", value={"do_not_contact": True}, request_only=True),
    OpenApiExample("Signal only", value={"channels": ["signal"]}, request_only=True),
    OpenApiExample(
        "Contact stopped",
        value={
            **SELF_STATUS_EXAMPLE,
            "next_step": "No te van a contactar. Si quieres ayuda, ve con ellos y muestra tu "
            "código.",
            "contact_stopped": True,
        },
        response_only=True,
    ),
]
