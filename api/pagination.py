from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination as BaseCursorPagination

from api.errors import InvalidInput


class CursorPagination(BaseCursorPagination):
    """Cursor pagination on every list: stable under inserts, newest first by default.

    A cursor this list did not give out, or a `limit` that is not a positive integer, is a 400
    naming the parameter: DRF's own answers (404 for the cursor, a silent default for the limit)
    hide the caller's mistake. A limit above the maximum is capped, as documented."""

    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("-created", "-id")

    def get_paginated_response_schema(self, schema):
        """DRF's version says `nullable` (not OpenAPI 3.1) and its example URL ends in a stray
        quote, so validators reject both the document's examples and null links. Every link has
        an example so drf-spectacular can wrap an operation's example item into a page."""
        link = {"type": ["string", "null"], "format": "uri"}
        example = "https://srn.example.org/api/v1/referrals/?cursor=cD00ODY%3D"
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "example": example, "description": "The next page, if any."},
                "previous": {**link, "example": None, "description": "The previous page, if any."},
                "results": schema,
            },
        }

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidInput(
                "`limit` must be a positive integer.",
                errors=[{"pointer": "/limit", "detail": "Must be a positive integer."}],
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidInput(
                "`cursor` is not one this list gave out: start again without it.",
                errors=[{"pointer": "/cursor", "detail": "Invalid cursor."}],
            ) from None
