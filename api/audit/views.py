from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit.models import Disclosure
from api.audit.selectors import audit_head, disclosures_for_sender
from api.audit.serializers import (
    AuditHeadSerializer,
    DisclosureSerializer,
    ReferralStatsSerializer,
    StatsQuerySerializer,
)
from api.audit.stats import referral_stats


class AuditHeadView(APIView):
    # Any valid token: the head reveals only how many entries exist, and every partner should
    # be able to keep copies of it to prove later that the history was not rewritten.
    required_scopes: list[str] = []

    @extend_schema(
        tags=["audit"],
        operation_id="audit_head_retrieve",
        summary="Latest audit trail hash",
        description="The sequence number and hash of the newest audit trail entry. Each entry's "
        "hash covers the previous one, so a copy of this pair kept today lets anyone check "
        "later (with the operators' `verify_audit --head`) that no earlier entry was changed, "
        "removed or reordered. Any valid token may call it; no scope is needed.",
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
        head = audit_head()
        return Response(AuditHeadSerializer({"sequence": head.sequence, "hash": head.hash}).data)


class ReferralDisclosureListView(GenericAPIView):
    queryset = Disclosure.objects.none()
    required_scopes = ["referrals:read"]

    @extend_schema(
        tags=["referrals"],
        operation_id="referrals_disclosures_list",
        summary="Who saw this referral's personal data",
        description="Every response that carried personal fields of this referral: which "
        "organisation and client received which field groups, by which operation, when; newest "
        "first, cursor paginated. The sender only (the receiver gets 403), so the sending "
        "organisation can tell the person exactly who saw what. Kept after the personal data "
        "is destroyed, until the referral's metadata is deleted.",
        responses={200: DisclosureSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Disclosures",
                value={
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            "id": 812,
                            "organisation": {
                                "id": "9d2f1e0c-7b6a-4c5d-8e9f-0a1b2c3d4e5f",
                                "name": "Clínica Aberta",
                            },
                            "client_id": "demo-clinic",
                            "categories": ["contact", "person", "reason", "safe_contact"],
                            "operation": "referrals:detail",
                            "request_id": "1f0e2d3c4b5a69788796a5b4c3d2e1f0",
                            "created": "2026-11-28T10:05:00Z",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, pk):
        queryset = disclosures_for_sender(organisation=request.organisation, referral_id=pk)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DisclosureSerializer(page, many=True).data)


class ReferralStatsView(APIView):
    # Any partner may read network statistics; they hold no personal data and no cell small
    # enough to point at a person.
    required_scopes = ["referrals:read"]

    @extend_schema(
        tags=["stats"],
        operation_id="stats_referrals",
        summary="Network referral statistics",
        description="Counts of referrals created in a period (whole UTC days; default the last "
        "90) across the whole network: by need, urgency, outcome and decline reason, and the "
        "median time to a first response (accept or decline). Any count from 1 to 4 is "
        'reported as "<5", and a second cell is suppressed where one alone could be recovered '
        "by subtraction. Organisations appear by name only if they opted in. Computed from "
        "metadata, so the figures survive the deletion of personal data.",
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATE, description="First day, inclusive."),
            OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive."),
        ],
        responses={200: ReferralStatsSerializer},
        examples=[
            OpenApiExample(
                "A quarter",
                value={
                    "start": "2026-09-01",
                    "end": "2026-11-29",
                    "total": 214,
                    "by_taxonomy": {"legal-advice": 61, "sti-testing": 97, "shelter": "<5"},
                    "by_urgency": {"routine": 120, "soon": 71, "urgent": 23},
                    "by_outcome": {
                        "service_provided": 88,
                        "could_not_contact": "<5",
                        "person_withdrew": "<5",
                    },
                    "by_decline_reason": {"no_capacity": 19, "out_of_area": 6},
                    "responded": 180,
                    "median_hours_to_first_response": 20.5,
                    "by_organisation": [
                        {
                            "id": "0b7a3c2e-5f4d-4e8a-9c1b-2d3e4f5a6b7c",
                            "name": "Red Umbrella Collective",
                            "sent": 57,
                            "received": "<5",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(ReferralStatsSerializer(referral_stats(**query.validated_data)).data)
