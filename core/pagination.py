from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.pagination import CursorPagination
from rest_framework.response import Response


class ResultsCursorPagination(CursorPagination):
    """DRF's opaque cursor, in the contract's list shape `{"results", "next"}`."""

    page_size = 100
    max_page_size = 200
    page_size_query_param = "limit"
    ordering: str | tuple[str, ...] = "id"

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {"results": schema, "next": {"type": "string", "nullable": True, "format": "uri"}},
        }


class NewestFirstPagination(ResultsCursorPagination):
    """Moderation lists (bans, mutes, reports, the audit log): newest first, 50 a page."""

    page_size = 50
    ordering = ("-created_at", "-id")


def newest_first_page(view: Any, request: Any, rows: Any, payload: Callable[[Any], Any]) -> Response:
    """One page of `rows` (a queryset with created_at), each turned into its payload."""
    paginator = NewestFirstPagination()
    page: list[Any] = paginator.paginate_queryset(rows, request, view=view) or []
    return paginator.get_paginated_response([payload(row) for row in page])
