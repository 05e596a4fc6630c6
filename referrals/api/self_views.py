"""The person's own routes, with a self-service token instead of an OAuth client. Thin like
the others: the rules are referrals.services.self_* and referrals.selectors.self_*, which the
/me page calls too."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import OnePage, one_page
from api.schema_operations import docstring_with
from api.throttling import client_address
from referrals import selectors, services
from referrals.api import examples
from referrals.api.authentication import HasSelfGrant, SelfTokenAuthentication
from referrals.api.self_serializers import (
    SelfDisclosureSerializer,
    SelfLanguageQuerySerializer,
    SelfSafeContactSerializer,
    SelfStatusSerializer,
    SelfTokenRequestSerializer,
    SelfTokenSerializer,
)

TOKEN_REFUSED = OpenApiResponse(
    description="`self-service-refused`: the code and PIN open nothing. An unknown code, a wrong "
    "PIN, a code without a PIN and a code no longer in use (the referral closed, or consent was "
    "withdrawn) all get exactly this answer."
)
THROTTLED = OpenApiResponse(
    description="`self-service-throttled`, with Retry-After: too many tries from this address "
    "or for this code, or the code is locked (five failures lock it for 15 minutes, each later "
    "lock twice as long). Unknown codes lock alike."
)
NO_TOKEN = OpenApiResponse(
    description="No self-service token, or an expired or ended one (they last 10 minutes)."
)
MALFORMED = OpenApiResponse(description="A malformed Authorization header was sent.")
CLOSED = OpenApiResponse(description="`referral-closed`")
GONE = OpenApiResponse(
    description="The details are gone (`consent-revoked`, `consent-expired`, `retention-ended`)."
)
LANG_PARAMETERS = [SelfLanguageQuerySerializer]


@extend_schema(tags=["self-service"])
class SelfView(APIView):
    """Self-service token only; throttled by the services themselves (per code and address)."""

    authentication_classes = [SelfTokenAuthentication]
    permission_classes = [HasSelfGrant]
    throttle_classes: list = []

    def initial(self, request, *args, **kwargs):
        # A method no route here serves is 405 whatever the credentials, as on the partner
        # routes; authenticating first would call it a bad token. (OPTIONS too: no metadata.)
        if request.method == "OPTIONS" or request.method not in self.allowed_methods:
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def language(self, request) -> str | None:
        """The `lang` asked for. A change reads it before changing anything: a `lang` the
        schema refuses is a 400 that leaves the referral as it was."""
        query = SelfLanguageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data.get("lang")

    def status_response(self, request, language: str | None) -> Response:
        person = selectors.self_status(grant=request.auth, language=language)
        return Response(SelfStatusSerializer(person).data)


class SelfTokenView(SelfView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        # Anonymous, said explicitly: it is how the person gets a token at all.
        auth=[{}],
        request=SelfTokenRequestSerializer,
        responses={201: SelfTokenSerializer, 422: TOKEN_REFUSED, 401: MALFORMED, 429: THROTTLED},
        examples=examples.SELF_TOKEN,
    )
    def post(self, request):
        """Exchange claim code and PIN for a token

        For the person referred, with no account: the claim code and PIN from their slip give a
        token that opens that one referral's self-service routes for 10 minutes. Every failure
        answers the same 422, whatever failed; tries are limited per address and per code, and five
        failures lock the code (429). Nothing about the person is ever answered.
        """
        serializer = SelfTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, grant = services.self_sign_in(
            code=serializer.validated_data["code"],
            pin=serializer.validated_data["pin"],
            address=client_address(request),
        )
        body = {
            "token": token,
            "token_type": "Bearer",
            "expires_in": int(services.SELF_TOKEN_LIFETIME.total_seconds()),
            "expires_at": grant.expires,
        }
        return Response(SelfTokenSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={204: None, 401: NO_TOKEN},
    )
    def delete(self, request):
        """End the token now

        For a shared phone, or a quick exit: the token stops working at once.
        """
        services.self_sign_out(grant=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SelfStatusView(SelfView):
    @extend_schema(
        parameters=LANG_PARAMETERS,
        responses={200: SelfStatusSerializer, 401: NO_TOKEN},
        examples=examples.SELF_STATUS,
    )
    def get(self, request):
        """Where my referral stands

        One short sentence and the next step in plain words, in the person's language (`lang`, else
        the language consent was explained in). No names, no service, nothing about the person: a
        slip found by someone else reveals only this. After a withdrawal it shows the final state
        until the token expires, although the claim code no longer works.
        """
        return self.status_response(request, self.language(request))


class SelfDisclosuresView(SelfView):
    pagination_class = OnePage

    @extend_schema(
        operation_id="self_disclosures",
        responses={200: SelfDisclosureSerializer(many=True), 401: NO_TOKEN},
        examples=examples.SELF_DISCLOSURES,
    )
    @docstring_with(shown=selectors.SELF_DISCLOSURES_SHOWN)
    def get(self, request):
        """Who opened my details

        Every time an organisation received the person's details: its name and when, newest
        first (the latest {shown}). Not what was opened, nor by which system. Kept after the
        details are deleted.
        """
        rows = selectors.self_disclosures(grant=request.auth)
        return Response(one_page(SelfDisclosureSerializer(rows, many=True).data))


class SelfWithdrawView(SelfView):
    @extend_schema(
        operation_id="self_consent_withdraw",
        parameters=LANG_PARAMETERS,
        request=None,
        responses={200: SelfStatusSerializer, 401: NO_TOKEN},
        examples=examples.SELF_WITHDRAW,
    )
    def post(self, request):
        """Withdraw my consent

        Deletes the person's details for both organisations, as a revocation does (timeline: side
        `person`, method `self_service`); both organisations get `referral.consent_revoked`, their
        reads answer 410, and the claim code stops working. Answers the final status. Repeating it
        is harmless.
        """
        language = self.language(request)
        services.self_withdraw(grant=request.auth)
        return self.status_response(request, language)


class SelfSafeContactView(SelfView):
    @extend_schema(
        parameters=LANG_PARAMETERS,
        request=SelfSafeContactSerializer,
        responses={200: SelfStatusSerializer, 401: NO_TOKEN, 409: CLOSED, 410: GONE},
        examples=examples.SELF_SAFE_CONTACT,
    )
    def patch(self, request):
        """Stop contact, or change how to be contacted

        `do_not_contact: true` stops all contact at once; `channels` names the ways that are safe
        now. The rest of the instructions stay. Both organisations get
        `referral.safe_contact_changed` and see the change first on their next read. 410 once the
        details are gone, 409 `referral-closed` once the referral is finished.
        """
        language = self.language(request)
        serializer = SelfSafeContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.self_safe_contact_change(grant=request.auth, **serializer.validated_data)
        return self.status_response(request, language)
