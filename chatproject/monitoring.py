"""`GET /metrics` in Prometheus' text format (docs/api.md), and the middleware that times requests.

Each server process exports its own figures (scrape every process, or put them behind the load
balancer's per-target scraping). METRICS_TOKEN, when set, is required as a bearer token.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.crypto import constant_time_compare
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.metrics import HTTP_REQUESTS, HTTP_SECONDS


def _route(request: HttpRequest) -> str:
    # The URL pattern's name, never the raw path: ids must not become label values. Django has
    # resolved it already for any request that reached a view; only the others resolve here.
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "not_found"
    return match.url_name or "unnamed"


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(request.method or "", route, str(response.status_code)).inc()
        return response


LOOPBACK = frozenset({"127.0.0.1", "::1"})


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token and request.META.get("REMOTE_ADDR") not in LOOPBACK:
        # Without a token the figures are for this machine only (they name routes and volumes).
        return JsonResponse(
            {"code": "metrics_token_required", "detail": "Set METRICS_TOKEN to read metrics from elsewhere."},
            status=403,
        )
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not constant_time_compare(given, token):
            return JsonResponse({"code": "not_authenticated", "detail": "A metrics token is required."}, status=401)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
