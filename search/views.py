"""`GET /api/search?q=`: every room the caller is a member of, newest first.

The per-room `GET /api/messages/{room_id}?q=` is the message core's endpoint; it reaches
search/selectors.py through messaging/room_search.py.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import request_user
from core.ratelimit import enforce_for_user
from messaging.serializers import MessagePageSerializer
from messaging.views import SEARCH_PARAMETERS, page_response
from search.selectors import search_messages


class SearchView(APIView):
    @extend_schema(parameters=SEARCH_PARAMETERS, responses={200: MessagePageSerializer})
    def get(self, request: Request) -> Response:
        params = request.query_params
        enforce_for_user(request_user(request).pk, "search", settings.SEARCH_RATE_LIMIT)
        found = search_messages(
            user=request_user(request), q=params.get("q"), cursor=params.get("cursor"), limit=params.get("limit")
        )
        return page_response(request, found)
