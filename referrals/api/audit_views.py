"""A referral's account of who saw its personal data, and the network's referral statistics:
both read the audit app's records (api/audit) and answer about referrals."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit.models import Disclosure
from api.audit.serializers import (
    MONTH_HELP,
    DisclosureSerializer,
    ReferralStatsSerializer,
    StatsQuerySerializer,
)
from referrals.selectors import disclosures_for_sender
from referrals.stats import referral_stats


class ReferralDisclosureListView(GenericAPIView):
    queryset = Disclosure.objects.none()
    required_scopes = ["referrals:read"]

    @extend_schema(
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
        """Who saw this referral's personal data

        Every response that carried personal fields of this referral: which organisation and client
        received which field groups, by which operation, when; newest first, cursor paginated. The
        sender only (the receiver gets the same 404 as for an unknown id), so the sending
        organisation can tell the person exactly who saw what. Kept after the personal data is
        destroyed, until the referral's metadata is deleted.
        """
        queryset = disclosures_for_sender(organisation=request.organisation, referral_id=pk)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DisclosureSerializer(page, many=True).data)


class ReferralStatsView(APIView):
    # Any partner may read network statistics; they hold no personal data and no cell small
    # enough to point at a person.
    required_scopes = ["referrals:read"]

    @extend_schema(
        operation_id="referral_stats",
        parameters=[
            OpenApiParameter(
                "month",
                OpenApiTypes.STR,
                pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                description=MONTH_HELP,
            ),
        ],
        responses={200: ReferralStatsSerializer},
        examples=[
            OpenApiExample(
                "A month",
                value={
                    "month": "2026-10",
                    "computed": "2026-11-01T08:12:31Z",
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
                            "id": "5e2b7f4c-8a1d-4e3f-9b6c-7d8e9f0a1b2c",
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
        """Network referral statistics

        Counts of referrals created in one calendar month (UTC) across the whole network: by need,
        urgency, outcome and decline reason, and the median time to a first response (accept or
        decline). Any count from 1 to 4 is reported as "<5", and a second cell is suppressed where
        one alone could be recovered by subtraction. Organisations appear by name only if they opted
        in. Only months that have ended are published, and each is computed once, when first asked
        for, and never changes afterwards (also when referrals in it are later deleted), so no two
        answers can be subtracted to single anyone out. A month older than the metadata retention (a
        year) is answered only if it was published before. `start` and `end` are no longer accepted
        (400).
        """
        query = StatsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(ReferralStatsSerializer(referral_stats(**query.validated_data)).data)
