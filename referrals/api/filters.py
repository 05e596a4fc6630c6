"""Query parameters of the referral lists, validated by a strict serializer (an unknown
parameter is a 400 naming it, not silently ignored) and documented once for OpenAPI."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from referrals.api.serializers import ReferralListQuerySerializer
from referrals.models import Status, Urgency


def list_filters(request) -> dict:
    serializer = ReferralListQuerySerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    filters = dict(serializer.validated_data)
    filters.pop("cursor", None)
    filters.pop("limit", None)
    for name in ("status", "urgency"):
        if name in filters:
            filters[name] = sorted(filters[name])
    return filters


LIST_PARAMETERS = [
    OpenApiParameter(
        "box",
        OpenApiTypes.STR,
        enum=["inbox", "outbox"],
        description="inbox: referrals you received (default); outbox: referrals you sent.",
    ),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=Status.values,
        many=True,
        explode=True,
        description="Repeat for several.",
    ),
    OpenApiParameter("urgency", OpenApiTypes.STR, enum=Urgency.values, many=True, explode=True),
    OpenApiParameter("service", OpenApiTypes.UUID, description="One of the receiver's services."),
    OpenApiParameter(
        "taxonomy",
        OpenApiTypes.STR,
        many=True,
        explode=True,
        description="Referrals whose needs include any of these taxonomy codes.",
    ),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Inclusive."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Exclusive."),
    OpenApiParameter("updated_after", OpenApiTypes.DATETIME, description="Inclusive."),
    OpenApiParameter("updated_before", OpenApiTypes.DATETIME, description="Exclusive."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1 to 100 (default 25)."),
]
