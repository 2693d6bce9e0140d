"""Liveness and readiness, each backing service checked for real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from messaging import store


def _postgres() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def _redis() -> str | None:
    if not settings.REDIS_URL:
        return "not_configured"  # embedded mode: in-memory channel layer and local cache
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return None


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # One event loop for all three steps: the pub/sub layer's subscriptions belong to a loop.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.check"})
    await asyncio.wait_for(layer.receive(channel), timeout=2)


def _channel_layer() -> str | None:
    async_to_sync(_layer_round_trip)()
    return None


def _cache() -> str | None:
    cache.set("health-check", "ok", 5)
    return None


def _mongodb() -> str | None:
    store.ping()
    return None


# Each check raises when its service does not answer, or names why it was skipped.
CHECKS: dict[str, Callable[[], str | None]] = {
    "database": _postgres,
    "mongodb": _mongodb,
    "redis": _redis,
    "channel_layer": _channel_layer,
    "cache": _cache,
}


@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readiness(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            skipped = check()
            checks[name] = (
                {"status": skipped}
                if skipped
                else {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}
            )
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency is "not ready"
            healthy = False
            checks[name] = {"status": "error", "error": type(exc).__name__}
    failing = [name for name, result in checks.items() if result["status"] == "error"]
    body: dict[str, object] = {"status": "ok" if healthy else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=200 if healthy else 503)
