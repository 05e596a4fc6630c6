from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit.selectors import audit_head
from api.audit.serializers import AuditHeadSerializer


class AuditHeadView(APIView):
    # Any valid token: the head reveals only how many entries exist, and every partner should
    # be able to keep copies of it to prove later that the history was not rewritten.
    required_scopes: list[str] = []

    @extend_schema(
        responses={200: AuditHeadSerializer},
        examples=[
            OpenApiExample(
                "Head",
                value={
                    "sequence": 48213,
                    "hash": "9f2c1d0be4a7c35f0c8e6b1a2d3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        """Latest audit trail hash

        The sequence number and hash of the newest audit trail entry. Each entry's hash covers
        the previous one, so a copy of this pair kept today lets anyone check later (with the
        operators' `verify_audit --head`) that no earlier entry was changed, removed or
        reordered. Any valid token may call it; no scope is needed.
        """
        head = audit_head()
        return Response(AuditHeadSerializer({"sequence": head.sequence, "hash": head.hash}).data)
