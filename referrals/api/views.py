"""HTTP layer of referrals: parse, call one service or selector, shape the answer.

Every look-up goes through the caller's organisation (from the token), so another
organisation's referral answers exactly like an unknown id: 404. Reads need referrals:read,
writes referrals:write. Transitions and safe-contact changes require If-Match (428 without it,
412 when stale); consent revocation and `do_not_contact: true` deliberately do not, because a
person's withdrawal or "do not contact me" must never bounce."""

import json
import uuid

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit.services import disclosure_record
from api.idempotency import KEY_PATTERN, idempotent
from api.pagination import OnePage, one_page
from api.preconditions import if_match_parameter
from api.schema import action_view
from api.throttling import ClaimCodeThrottle
from referrals import selectors, services
from referrals.api import examples
from referrals.api.filters import LIST_PARAMETERS, list_filters
from referrals.api.serializers import (
    ReferralCompleteSerializer,
    ReferralConsentRenewSerializer,
    ReferralConsentRevokeSerializer,
    ReferralCreateSerializer,
    ReferralDeclineSerializer,
    ReferralDetailSerializer,
    ReferralNoteCreateSerializer,
    ReferralNoteSerializer,
    ReferralSafeContactChangeSerializer,
    ReferralSummarySerializer,
    ReferralTimelineEntrySerializer,
    ReferralTransitionSerializer,
)
from referrals.models import Referral

READ = ["referrals:read"]
WRITE = ["referrals:write"]

IF_MATCH = if_match_parameter(
    'The ETag of the referral as you last read it, quoted (`"3"`). 428 without it, 412 if the '
    "referral changed since, 400 if it is not a quoted ETag."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    pattern=KEY_PATTERN.pattern,
    description="A unique key per new referral. A retry with the same key and body returns the "
    "original answer and creates nothing; the same key with another body is 422. Kept 24 hours.",
)
PERSONAL_GONE = OpenApiResponse(
    description="The personal data is gone, whether or not the scheduled job destroyed it yet: "
    "consent revoked (`consent-revoked`) or expired (`consent-expired`), or the retention period "
    "after closing ended (`retention-ended`). The problem carries the referral's status and ETag."
)
PERSONAL_REFUSED = OpenApiResponse(
    description="You are the receiver and the partnership the referral came through is "
    "suspended (`partnership-suspended`, naming the partnership)."
)
DETAIL_RESPONSES = {200: ReferralDetailSerializer, 409: PERSONAL_REFUSED, 410: PERSONAL_GONE}
NOTES_REFUSED = OpenApiResponse(
    description="The consent does not include the notes category (`not-consented`), or you are "
    "the receiver and the partnership the referral came through is suspended "
    "(`partnership-suspended`)."
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
        parameters=LIST_PARAMETERS,
        responses={200: ReferralSummarySerializer(many=True)},
        examples=examples.REFERRAL_LIST,
    )
    def get(self, request):
        """List your inbox or outbox

        Referrals you received (`box=inbox`, default) or sent (`box=outbox`), newest first, cursor
        paginated. Metadata only: open one to see its personal data.
        """
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
        parameters=[IDEMPOTENCY_KEY],
        request=ReferralCreateSerializer,
        responses={201: ReferralSummarySerializer, 409: OpenApiResponse(), 422: OpenApiResponse()},
        examples=examples.REFERRAL_CREATE,
    )
    @idempotent
    def post(self, request):
        """Send a referral

        Refer a person to a service of a partner organisation, with their consent. Needs an active
        partnership, whose data categories must include every consented one; fields of categories
        not consented (contact, health, legal) are refused. Personal data is encrypted before it is
        stored. The answer carries metadata only (and the claim code for the person), never the
        personal data you sent.
        """
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
        responses=DETAIL_RESPONSES,
        examples=examples.REFERRAL_DETAIL,
    )
    def get(self, request, pk):
        """Open a referral

        The referral with the personal data the person consented to share, safe contact first.
        Categories not consented are absent. 410 from the moment consent is revoked or expires, or
        the retention period after closing ends (the problem carries the status and ETag, so the
        lifecycle can go on); 409 for the receiver while the partnership is suspended. Opening does
        not mark it received: use the receive action.
        """
        return detail_response(request, pk)


def detail_response(request, referral_id: uuid.UUID) -> Response:
    """The referral as its detail shows it to the caller: through the personal-data gate
    (410, 409), decrypted, and recorded as a disclosure."""
    referral, personal = selectors.referral_detail(
        organisation=request.organisation, referral_id=referral_id
    )
    side = services.side_of(referral, request.organisation)
    data = {
        **personal,
        "referral": referral,
        # The decrypted `consent` group is already set on it (selectors.personal_data_of).
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
    return response


class ReferralClaimView(APIView):
    required_scopes = READ
    throttle_classes = [*APIView.throttle_classes, ClaimCodeThrottle]

    @extend_schema(
        operation_id="referrals_claim",
        responses=DETAIL_RESPONSES,
        examples=examples.REFERRAL_CLAIM,
    )
    def get(self, request, code):
        """Find a referral by claim code

        The person carries a short claim code instead of a name. Only the receiving organisation can
        look it up; for anyone else the code does not exist (404). A code stops working (404) once
        its referral is closed or its personal data destroyed. Look-ups have their own rate limit
        per client (the `claim` policy in the RateLimit headers), beside the general one.
        """
        referral_id = selectors.referral_by_claim_code(organisation=request.organisation, code=code)
        return detail_response(request, referral_id)


TRANSITION_DOCS = {
    "receive": ("Mark received", "The receiver has opened the referral (requested → received)."),
    "accept": ("Accept", "The receiver will serve the person (received → accepted)."),
    "decline": (
        "Decline",
        "The receiver cannot take the referral (received → declined), with a reason code and "
        "an optional note (encrypted). A note is personal data: 410 once that is gone, 409 "
        "while the partnership is suspended; decline without one then.",
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
TRANSITION_SERIALIZERS = {
    "decline": ReferralDeclineSerializer,
    "complete": ReferralCompleteSerializer,
}


class ReferralTransitionView(APIView):
    """One action endpoint per transition (FHIR Task business status changes)."""

    required_scopes = WRITE
    action_name = ""

    def post(self, request, pk):
        serializer_class = TRANSITION_SERIALIZERS.get(
            self.action_name, ReferralTransitionSerializer
        )
        serializer = serializer_class(data=request.data)
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
    serializer_class = TRANSITION_SERIALIZERS.get(action, ReferralTransitionSerializer)
    side = services.SIDE_NAMES[transition.side]
    schema = extend_schema(
        operation_id=f"referrals_{action}",
        parameters=[IF_MATCH],
        request=serializer_class,
        responses={
            200: ReferralSummarySerializer,
            409: OpenApiResponse(
                description="The other side's action (`wrong-party`), or one the status does "
                "not allow (`illegal-transition`)"
                + (
                    "; a note while the partnership is suspended (`partnership-suspended`)."
                    if action == "decline"
                    else "."
                )
            ),
            412: OpenApiResponse(),
            428: OpenApiResponse(),
            # Only a decline's note touches personal data.
            **({410: PERSONAL_GONE} if action == "decline" else {}),
        },
        examples=examples.transition(action, summary, transition.target),
    )
    return action_view(
        ReferralTransitionView,
        f"Referral{action.capitalize()}View",
        schema,
        doc=f"{summary}\n\n{description} Only the {side} organisation may take it; the other "
        "side gets 409 `wrong-party`, an illegal transition 409 `illegal-transition`, both "
        "listing the allowed actions.",
        action_name=action,
        __doc__=description,
    )


TRANSITION_VIEWS = {action: transition_view(action) for action in services.TRANSITIONS}


class ReferralConsentRevokeView(APIView):
    required_scopes = WRITE

    @extend_schema(
        operation_id="referrals_consent_revoke",
        request=ReferralConsentRevokeSerializer,
        responses={200: ReferralSummarySerializer},
        examples=examples.CONSENT_REVOKE,
    )
    def post(self, request, pk):
        """Revoke consent

        The person withdrew their consent and told your organisation: either side records it, with
        how the person said it (`method`: in_person, phone or message). Their personal data on this
        referral is destroyed for both organisations (ciphertext and data key deleted, not hidden);
        reads of it answer 410 from now on; status and timeline stay (the timeline entry names the
        side, the method and when); the other side gets a `referral.consent_revoked` event. No
        If-Match, and never refused for a suspended partnership: a withdrawal must never bounce.
        Repeating it is harmless.
        """
        serializer = ReferralConsentRevokeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        referral = services.consent_revoke(
            organisation=request.organisation,
            referral_id=pk,
            method=serializer.validated_data.get("method", ""),
        )
        return summary_response(referral)


class ReferralConsentRenewView(APIView):
    required_scopes = WRITE

    @extend_schema(
        operation_id="referrals_consent_renew",
        request=ReferralConsentRenewSerializer,
        responses={
            200: ReferralSummarySerializer,
            409: OpenApiResponse(
                description="You are the receiver (`wrong-party`), or the referral is closed "
                "(`referral-closed`)."
            ),
            410: PERSONAL_GONE,
            422: OpenApiResponse(),
        },
        examples=examples.CONSENT_RENEW,
    )
    def post(self, request, pk):
        """Renew consent

        The sender asked the person again (for example after a `referral.consent_expiring` event)
        and they agreed: records the new consent's method, language, wording version and staff
        reference, with a new expiry (default 90 days after `given_at`, at most 365). Within the
        partnership's limits: it must still be active (422 `partnership-required`) and still allow
        every consented category (422 `category-not-allowed`). Before expiry only: once consent
        expired or was revoked the data is gone (410). Sender only (409 `wrong-party`); a closed
        referral is 409 `referral-closed`. The receiver gets `referral.consent_renewed`.
        """
        serializer = ReferralConsentRenewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        referral = services.consent_renew(
            organisation=request.organisation, referral_id=pk, **serializer.validated_data
        )
        return summary_response(referral)


class ReferralSafeContactView(APIView):
    required_scopes = WRITE

    @extend_schema(
        parameters=[
            if_match_parameter(
                'The referral\'s ETag, quoted (`"3"`). Required unless `do_not_contact` is true.',
                required=False,
            )
        ],
        request=ReferralSafeContactChangeSerializer,
        responses={
            200: ReferralSummarySerializer,
            409: PERSONAL_REFUSED,
            410: PERSONAL_GONE,
            412: OpenApiResponse(),
            428: OpenApiResponse(),
        },
        examples=examples.SAFE_CONTACT,
    )
    def patch(self, request, pk):
        """Change the safe-contact instructions

        The person told your organisation how it is safe to reach them now (their phone was taken,
        say): either side replaces the whole safe-contact block, encrypted like the rest, with how
        the person told it (`method`). Needs If-Match (428/412), except `do_not_contact: true`,
        which applies at once whatever the ETag: from this request on, both sides' reads show it
        first and leave the contact details out. Each change is a `safe_contact_changed` timeline
        entry with its version number (metadata only); the other side gets
        `referral.safe_contact_changed` and sees the new instructions first on its next read.
        410/409 like any use of the personal data.
        """
        serializer = ReferralSafeContactChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        safe_contact = dict(serializer.validated_data)
        method = safe_contact.pop("method", "")
        referral = services.safe_contact_replace(
            organisation=request.organisation,
            referral_id=pk,
            safe_contact=safe_contact,
            if_match=request.headers.get("If-Match"),
            method=method,
        )
        return summary_response(referral)


class ReferralNotesView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}
    pagination_class = OnePage

    @extend_schema(
        responses={
            200: ReferralNoteSerializer(many=True),
            409: NOTES_REFUSED,
            410: PERSONAL_GONE,
        },
        examples=examples.NOTES,
    )
    def get(self, request, pk):
        """Read the notes thread

        Notes between the two organisations, oldest first. Needs the notes category in the consent
        (409 `not-consented` otherwise); 410 when the personal data is gone, as for the referral
        itself.
        """
        referral, notes = selectors.referral_notes(
            organisation=request.organisation, referral_id=pk
        )
        response = Response(one_page(ReferralNoteSerializer(notes, many=True).data))
        disclosure_record(
            request=request,
            referral=referral,
            categories=["notes"] if notes else [],
            operation=request.resolver_match.view_name,
        )
        return response

    @extend_schema(
        request=ReferralNoteCreateSerializer,
        responses={201: ReferralNoteSerializer, 409: NOTES_REFUSED, 410: PERSONAL_GONE},
        examples=examples.NOTE_CREATE,
    )
    def post(self, request, pk):
        """Add a note

        Encrypted like the rest of the personal data; the other organisation gets a
        `referral.note_added` event (without the text). Needs the notes category in the consent (409
        `not-consented` otherwise); 410 when the personal data is gone, as for the referral itself.
        """
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
    pagination_class = OnePage

    @extend_schema(
        operation_id="referrals_timeline",
        responses={200: ReferralTimelineEntrySerializer(many=True)},
        examples=examples.TIMELINE,
    )
    def get(self, request, pk):
        """Read the timeline

        Status changes, notes added, consent revoked, renewed or expired and safe-contact changes,
        oldest first, with which side acted and how the person told it, without any personal data:
        it outlives revocation and expiry.
        """
        entries = selectors.referral_timeline(organisation=request.organisation, referral_id=pk)
        return Response(one_page(ReferralTimelineEntrySerializer(entries, many=True).data))
