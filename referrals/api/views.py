"""HTTP layer of referrals: parse, call one service or selector, shape the answer.

Every look-up goes through the caller's organisation (from the token), so another
organisation's referral answers exactly like an unknown id: 404. Reads need referrals:read,
writes referrals:write. Transitions require If-Match (428 without it, 412 when stale); consent
revocation deliberately does not, because a person's withdrawal must never bounce."""

import json

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit.services import disclosure_record
from api.idempotency import idempotent
from referrals import selectors, services
from referrals.api.filters import LIST_PARAMETERS, list_filters
from referrals.api.serializers import (
    ReferralCompleteSerializer,
    ReferralCreateSerializer,
    ReferralDeclineSerializer,
    ReferralDetailSerializer,
    ReferralNoteCreateSerializer,
    ReferralNoteSerializer,
    ReferralSummarySerializer,
    ReferralTimelineEntrySerializer,
    ReferralTransitionSerializer,
)
from referrals.models import Referral

READ = ["referrals:read"]
WRITE = ["referrals:write"]
TAGS = ["referrals"]

EXAMPLE_ID = "5f0c8a52-3a3e-4d51-9b8e-0d4f6f1a2b3c"
SUMMARY_EXAMPLE = {
    "id": EXAMPLE_ID,
    "claim_code": "7KQ4M2XH",
    "status": "requested",
    "urgency": "soon",
    "needs": ["sti-testing"],
    "sender": {"id": "0b7a3c2e-5f4d-4e8a-9c1b-2d3e4f5a6b7c", "name": "Red Umbrella Collective"},
    "receiver": {"id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f", "name": "Clínica Aberta"},
    "service": "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f",
    "respond_by": "2026-12-01T10:00:00Z",
    "decline_reason": "",
    "outcome": "",
    "personal_data": "present",
    "version": 1,
    "created": "2026-11-28T10:00:00Z",
    "updated": "2026-11-28T10:00:00Z",
    "closed": None,
}
CREATE_EXAMPLE = {
    "receiver": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
    "service": "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f",
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
        "purpose": "Sexual health appointment",
        "recipient": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
        "data_categories": ["contact", "notes"],
        "by_representative": False,
        "wording_version": "2026-10",
    },
}
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    location=OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the referral as you last read it (e.g. `"3"`). 428 without it, '
    "412 if the referral changed since.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    description="A unique key per new referral. A retry with the same key and body returns the "
    "original answer and creates nothing; the same key with another body is 422. Kept 24 hours.",
)


def summary_response(referral: Referral, status_code: int = 200, **headers) -> Response:
    response = Response(ReferralSummarySerializer(referral).data, status=status_code)
    response["ETag"] = referral.etag
    for name, value in headers.items():
        response[name] = value
    return response


class ReferralListCreateView(GenericAPIView):
    queryset = Referral.objects.none()
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_list",
        summary="List your inbox or outbox",
        description="Referrals you received (`box=inbox`, default) or sent (`box=outbox`), "
        "newest first, cursor paginated. Metadata only: open one to see its personal data.",
        parameters=LIST_PARAMETERS,
        responses={200: ReferralSummarySerializer(many=True)},
        examples=[
            OpenApiExample(
                "An inbox page",
                value={"next": None, "previous": None, "results": [SUMMARY_EXAMPLE]},
                response_only=True,
            )
        ],
    )
    def get(self, request):
        filters = list_filters(request)
        queryset = selectors.referrals_list(organisation=request.organisation, **filters)
        page = self.paginate_queryset(selectors.referral_summaries(queryset))
        # Each summary is JSON PostgreSQL already shaped (documented by
        # ReferralSummarySerializer): written as is, never parsed and re-rendered.
        links = [self.paginator.get_next_link(), self.paginator.get_previous_link()]
        body = '{{"next":{},"previous":{},"results":[{}]}}'.format(
            *map(json.dumps, links), ",".join(row["summary"] for row in page)
        )
        return HttpResponse(body, content_type="application/json")

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_create",
        summary="Send a referral",
        description="Refer a person to a service of a partner organisation, with their consent. "
        "Needs an active partnership, whose data categories must include every consented one; "
        "fields of categories not consented (contact, health, legal) are refused. Personal data "
        "is encrypted before it is stored. The answer carries metadata only (and the claim code "
        "for the person), never the personal data you sent.",
        parameters=[IDEMPOTENCY_KEY],
        request=ReferralCreateSerializer,
        responses={201: ReferralSummarySerializer, 409: OpenApiResponse(), 422: OpenApiResponse()},
        examples=[
            OpenApiExample("A referral to a clinic", value=CREATE_EXAMPLE, request_only=True)
        ],
    )
    @idempotent
    def post(self, request):
        serializer = ReferralCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        referral = services.referral_create(
            sender=request.organisation, data=serializer.validated_data
        )
        location = reverse("referrals:detail", kwargs={"pk": referral.pk})
        return summary_response(referral, status.HTTP_201_CREATED, Location=location)


class ReferralDetailView(APIView):
    required_scopes = READ

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_retrieve",
        summary="Open a referral",
        description="The referral with the personal data the person consented to share, safe "
        "contact first. Categories not consented are absent. 410 once consent was revoked or "
        "expired (the problem carries the status and ETag, so the lifecycle can go on). "
        "Opening does not mark it received: use the receive action.",
        responses={200: ReferralDetailSerializer, 410: OpenApiResponse()},
        examples=[
            OpenApiExample(
                "A referral",
                value={
                    "safe_contact": CREATE_EXAMPLE["safe_contact"],
                    "referral": SUMMARY_EXAMPLE,
                    "person": CREATE_EXAMPLE["person"],
                    "reason": CREATE_EXAMPLE["reason"],
                    "contact": CREATE_EXAMPLE["contact"],
                    "consent": {
                        **{
                            k: v
                            for k, v in CREATE_EXAMPLE["consent"].items()
                            if k not in ("consented",)
                        },
                        "expires_at": "2027-02-26T09:45:00Z",
                        "revoked_at": None,
                    },
                    "allowed_actions": ["receive"],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, pk):
        referral, personal = selectors.referral_detail(
            organisation=request.organisation, referral_id=pk
        )
        return detail_response(request, referral, personal)


def detail_response(request, referral: Referral, personal: dict) -> Response:
    side = services.side_of(referral, request.organisation)
    data = {
        **personal,
        "referral": referral,
        "consent": referral.consent,
        "allowed_actions": services.allowed_actions(referral, side),
    }
    response = Response(ReferralDetailSerializer(data).data)
    disclosure_record(
        request=request,
        referral=referral,
        categories=personal,
        operation=request.resolver_match.view_name,
    )
    response["ETag"] = referral.etag
    # Personal data: never in a shared cache, never kept by the browser.
    response["Cache-Control"] = "no-store"
    return response


class ReferralClaimView(APIView):
    required_scopes = READ

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_claim",
        summary="Find a referral by claim code",
        description="The person carries a short claim code instead of a name. Only the receiving "
        "organisation can look it up; for anyone else the code does not exist (404).",
        responses={200: ReferralDetailSerializer, 410: OpenApiResponse()},
        examples=[
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
        ],
    )
    def get(self, request, code):
        referral_id = selectors.referral_by_claim_code(organisation=request.organisation, code=code)
        referral, personal = selectors.referral_detail(
            organisation=request.organisation, referral_id=referral_id
        )
        return detail_response(request, referral, personal)


TRANSITION_DOCS = {
    "receive": ("Mark received", "The receiver has opened the referral (requested → received)."),
    "accept": ("Accept", "The receiver will serve the person (received → accepted)."),
    "decline": (
        "Decline",
        "The receiver cannot take the referral (received → declined), with a reason code and "
        "an optional note (encrypted).",
    ),
    "hold": ("Put on hold", "Waitlisted (accepted → on_hold)."),
    "resume": ("Resume", "Off the waitlist (on_hold → accepted)."),
    "start": ("Start", "Service has begun (accepted → in_progress)."),
    "complete": ("Complete", "Closed with an outcome code (in_progress → completed)."),
    "cancel": (
        "Cancel",
        "The sender withdraws the referral before it is completed (any open status → cancelled).",
    ),
}
TRANSITION_BODIES = {
    "decline": (ReferralDeclineSerializer, {"reason": "no_capacity", "note": "Full until March."}),
    "complete": (ReferralCompleteSerializer, {"outcome": "service_provided"}),
}


class ReferralTransitionView(APIView):
    """One action endpoint per transition (FHIR Task business status changes)."""

    required_scopes = WRITE
    action_name = ""

    def post(self, request, pk):
        serializer_class, _ = TRANSITION_BODIES.get(
            self.action_name, (ReferralTransitionSerializer, {})
        )
        serializer = serializer_class(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        referral = services.referral_transition(
            organisation=request.organisation,
            referral_id=pk,
            action=self.action_name,
            if_match=request.headers.get("If-Match"),
            **serializer.validated_data,
        )
        return summary_response(referral)


def transition_view(action: str):
    summary, description = TRANSITION_DOCS[action]
    transition = services.TRANSITIONS[action]
    serializer_class, example = TRANSITION_BODIES.get(action, (ReferralTransitionSerializer, {}))
    side = services.SIDE_NAMES[transition.side]
    schema = extend_schema(
        tags=TAGS,
        operation_id=f"referrals_{action}",
        summary=summary,
        description=f"{description} Only the {side} organisation may take it; the other side "
        "gets 403, an illegal transition 409 listing the allowed actions.",
        parameters=[IF_MATCH],
        request=serializer_class,
        responses={
            200: ReferralSummarySerializer,
            409: OpenApiResponse(),
            412: OpenApiResponse(),
            428: OpenApiResponse(),
        },
        examples=[
            OpenApiExample(f"{summary} request", value=example, request_only=True),
            OpenApiExample(
                f"{summary} answer",
                value={**SUMMARY_EXAMPLE, "status": transition.target, "version": 2},
                response_only=True,
            ),
        ],
    )

    # A function of its own per action: extend_schema annotates the function it decorates.
    def post(self, request, pk):
        return ReferralTransitionView.post(self, request, pk)

    return type(
        f"Referral{action.capitalize()}View",
        (ReferralTransitionView,),
        {"action_name": action, "post": schema(post), "__doc__": description},
    )


TRANSITION_VIEWS = {action: transition_view(action) for action in services.TRANSITIONS}


class ReferralConsentRevokeView(APIView):
    required_scopes = WRITE

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_consent_revoke",
        summary="Revoke consent",
        description="The person withdrew their consent. Their personal data on this referral is "
        "destroyed for both organisations (ciphertext and data key deleted, not hidden); reads "
        "of it answer 410 from now on; status and timeline stay; the receiver gets a "
        "`referral.consent_revoked` event. Sender only. No If-Match: a withdrawal must never "
        "bounce. Repeating it is harmless.",
        request=ReferralTransitionSerializer,
        responses={200: ReferralSummarySerializer},
        examples=[
            OpenApiExample(
                "Revoked",
                value={**SUMMARY_EXAMPLE, "personal_data": "revoked", "version": 2},
                response_only=True,
            )
        ],
    )
    def post(self, request, pk):
        ReferralTransitionSerializer(data=request.data or {}).is_valid(raise_exception=True)
        referral = services.consent_revoke(organisation=request.organisation, referral_id=pk)
        return summary_response(referral)


class ReferralNotesView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_notes_list",
        summary="Read the notes thread",
        description="Notes between the two organisations, oldest first. Needs the notes "
        "category in the consent (403 otherwise); 410 once consent was revoked or expired.",
        responses={200: ReferralNoteSerializer(many=True), 410: OpenApiResponse()},
        examples=[
            OpenApiExample(
                "A thread",
                value=[
                    {
                        "id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                        "author": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
                        "created": "2026-11-28T11:00:00Z",
                        "text": "Appointment Thursday 10:00; she can bring a friend.",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, pk):
        referral, notes = selectors.referral_notes(
            organisation=request.organisation, referral_id=pk
        )
        response = Response(ReferralNoteSerializer(notes, many=True).data)
        disclosure_record(
            request=request,
            referral=referral,
            categories=["notes"] if notes else [],
            operation=request.resolver_match.view_name,
        )
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_notes_create",
        summary="Add a note",
        description="Encrypted like the rest of the personal data; the other organisation gets "
        "a `referral.note_added` event (without the text).",
        request=ReferralNoteCreateSerializer,
        responses={201: ReferralNoteSerializer, 410: OpenApiResponse()},
        examples=[
            OpenApiExample(
                "A note", value={"text": "Appointment Thursday 10:00."}, request_only=True
            )
        ],
    )
    def post(self, request, pk):
        serializer = ReferralNoteCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _, note = services.note_add(
            organisation=request.organisation,
            referral_id=pk,
            text=serializer.validated_data["text"],
        )
        data = {
            "id": note.id,
            "author": note.author_id,
            "created": note.created,
            "text": serializer.validated_data["text"],
        }
        return Response(ReferralNoteSerializer(data).data, status=status.HTTP_201_CREATED)


class ReferralTimelineView(APIView):
    required_scopes = READ

    @extend_schema(
        tags=TAGS,
        operation_id="referrals_timeline",
        summary="Read the timeline",
        description="Status changes, notes added and consent changes, oldest first, without "
        "any personal data: it outlives revocation and expiry.",
        responses={200: ReferralTimelineEntrySerializer(many=True)},
        examples=[
            OpenApiExample(
                "Created and received",
                value=[
                    {
                        "kind": "created",
                        "actor": "0b7a3c2e-5f4d-4e8a-9c1b-2d3e4f5a6b7c",
                        "from_status": "",
                        "to_status": "requested",
                        "code": "",
                        "at": "2026-11-28T10:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, pk):
        entries = selectors.referral_timeline(organisation=request.organisation, referral_id=pk)
        return Response(ReferralTimelineEntrySerializer(entries, many=True).data)
