"""Spam control on posts: the same text posted again and again (across rooms), and links from
accounts younger than NEW_ACCOUNT_SECONDS. Every limit is a setting; RATELIMIT_ENABLE=false turns
them all off (benchmarks). Counters live in the shared cache and fail open, as the rate limits do."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.models import User
from core.errors import ApiError, Forbidden
from messaging.rendering import RenderedBody

logger = logging.getLogger(__name__)


class RepeatedMessage(ApiError):
    status = 429
    code = "repeated_message"


def _links(rendered: RenderedBody) -> int:
    return rendered.html.count("<a ") if rendered.has_link else 0


def refuse_spam(user: User, text: str, rendered: RenderedBody) -> None:
    if not settings.RATELIMIT_ENABLE:
        return
    young = user.date_joined > timezone.now() - timedelta(seconds=settings.NEW_ACCOUNT_SECONDS)
    if young and _links(rendered) > settings.NEW_ACCOUNT_MAX_LINKS:
        raise Forbidden(
            f"New accounts may post at most {settings.NEW_ACCOUNT_MAX_LINKS} link(s) a message for now.",
            code="too_many_links",
        )
    words = " ".join(text.casefold().split())
    if len(words) < settings.SPAM_REPEAT_MIN_LENGTH:
        return  # "ok", "+1", "thanks" are said many times, and are no spam
    window = settings.SPAM_REPEAT_WINDOW_SECONDS
    key = f"spam-repeat:{user.pk}:{hashlib.blake2b(words.encode(), digest_size=12).hexdigest()}"
    try:
        cache.add(key, 0, timeout=window)
        count = cache.incr(key)
    except Exception:
        logger.warning("repeated-message check skipped: the cache is away", exc_info=True)
        return
    if count > settings.SPAM_REPEAT_LIMIT:
        raise RepeatedMessage(
            f"The same message was posted {settings.SPAM_REPEAT_LIMIT} times in {window} s: wait, then post it again.",
            retry_after=window,
        )
