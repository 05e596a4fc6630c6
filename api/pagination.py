from rest_framework.pagination import CursorPagination as BaseCursorPagination


class CursorPagination(BaseCursorPagination):
    """Cursor pagination on every list: stable under inserts, newest first by default."""

    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("-created", "-id")
