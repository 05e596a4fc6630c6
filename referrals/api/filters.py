"""Query parameters of the referral lists, validated by a strict serializer (an unknown
parameter is a 400 naming it, not silently ignored) and documented once for OpenAPI."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from referrals.api.serializers import TAXONOMY_FILTER_MAX, ReferralListQuerySerializer
from referrals.models import Status, Urgency


def list_filters(request) -> dict:
    serializer = ReferralListQuerySerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    filters = dict(serializer.validated_data)
    filters.pop("cursor", None)
    filters.pop("limit", None)
    for name in ("status", "urgency"):
        if name in filters:
            filters[name] = sorted(set(filters[name]))
    return filters


def choice_list(values) -> dict:
    """A repeatable filter of choices, bounded by their number (more would repeat one)."""
    return {
        "type": "array",
        "items": {"type": "string", "enum": sorted(values)},
        "maxItems": len(values),
    }


LIST_PARAMETERS = [
    OpenApiParameter(
        "box",
        OpenApiTypes.STR,
        enum=["inbox", "outbox"],
        description="inbox: referrals you received (default); outbox: referrals you sent.",
    ),
    OpenApiParameter(
        "status", choice_list(Status.values), explode=True, description="Repeat for several."
    ),
    OpenApiParameter("urgency", choice_list(Urgency.values), explode=True),
    OpenApiParameter("service", OpenApiTypes.UUID, description="One of the receiver's services."),
    OpenApiParameter(
        "taxonomy",
        {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 60},
            "maxItems": TAXONOMY_FILTER_MAX,
        },
        explode=True,
        description="Referrals whose needs include any of these taxonomy codes.",
    ),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Inclusive."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Exclusive."),
    OpenApiParameter("updated_after", OpenApiTypes.DATETIME, description="Inclusive."),
    OpenApiParameter("updated_before", OpenApiTypes.DATETIME, description="Exclusive."),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
        description="How many results a page holds.",
    ),
]
