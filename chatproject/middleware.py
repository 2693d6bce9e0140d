from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import ServiceUnavailable, as_api_error
from core.request_id import HEADER, request_id


class RequestIdMiddleware:
    """Echo the caller's X-Request-ID (when it is sane) or mint one; map outages to 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        this_id = request_id(request.headers.get(HEADER))
        request.request_id = this_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[HEADER] = this_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        err = as_api_error(exception)
        if isinstance(err, ServiceUnavailable):
            return JsonResponse(err.payload(), status=err.status)
        return None
