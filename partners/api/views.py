from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from partners.api.serializers import MeSerializer


class MeView(APIView):
    required_scopes: list[str] = []

    @extend_schema(
        tags=["me"],
        operation_id="me_retrieve",
        summary="Who am I",
        description="The organisation this token acts for, the client and the token's scopes. "
        "Any valid token may call it; use it to check your credentials.",
        responses={200: MeSerializer},
        examples=[
            OpenApiExample(
                "A clinic's token",
                value={
                    "organisation": {
                        "id": "0b7a3c2e-5f4d-4e8a-9c1b-2d3e4f5a6b7c",
                        "name": "Clínica Comunitaria",
                        "kind": "clinic",
                        "community_led": True,
                        "region": "Lisboa",
                        "verified": True,
                    },
                    "client_id": "demo-clinic",
                    "scopes": ["directory:read", "referrals:read"],
                    "token_expires": "2026-11-28T10:15:00Z",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        token = request.auth
        data = {
            "organisation": request.organisation,
            "client_id": token.application.client_id,
            "scopes": sorted(token.scope.split()),
            "token_expires": token.expires,
        }
        return Response(MeSerializer(data).data)
