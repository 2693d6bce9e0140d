"""Rate limits on django-ratelimit's counters (a Redis-backed cache when REDIS_URL is set)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage

from core.errors import RateLimited

logger = logging.getLogger(__name__)


def enforce(
    request: Any,
    group: str,
    rate: str,
    key: str | Callable[[str, Any], str] = "user_or_ip",
    increment: bool = True,
) -> None:
    """Count one hit in `group` (unless `increment` is false) and raise 429 once over `rate`.

    `request` is a Django HttpRequest or a DRF Request (which proxies to it and knows the JWT user).
    """
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, increment=increment)
    except Exception:
        logger.warning("rate-limit counter unavailable; failing open", exc_info=logger.isEnabledFor(logging.DEBUG))
        return
    if usage is None:  # RATELIMIT_ENABLE=false
        return
    over = usage["should_limit"] if increment else usage["count"] >= usage["limit"]
    if over:
        raise RateLimited("Too many requests; slow down.", retry_after=max(1, int(usage["time_left"])))


def message_rate() -> str:
    return f"{settings.RATE_LIMIT_REQUESTS}/{settings.RATE_LIMIT_WINDOW}s"


def enforce_for_user(user_id: int, group: str, rate: str) -> None:
    """The same counters, keyed by user: services call this so REST and WebSocket share one limit."""
    enforce(None, group, rate, key=lambda _group, _request: f"user:{user_id}")
