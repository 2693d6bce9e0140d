"""Notification figures on `/metrics`, counted wherever the work happens.

Notices are made, pushes sent and e-mails written by Celery workers, not by the server process
that answers `/metrics`, so these counters live in the shared cache (Redis in production; the one
process's memory in development) and a collector reads them all in one round trip at scrape
time. Counting never fails the work it counts (a cache outage loses figures, not pushes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.core.cache import cache
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

PREFIX = "metrics:notify:"
NOTICE_TYPES = ("mention", "reply", "invite", "dm", "message")
PUSH_FAILURES = ("gone", "refused", "retry", "gave_up")
# From the message being written to its push accepted by the push service, in seconds.
DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _add(key: str, amount: int) -> None:
    try:
        if not cache.add(PREFIX + key, amount, timeout=None):
            cache.incr(PREFIX + key, amount)
    except Exception:  # the figure is lost, the work goes on
        logger.warning("could not count %s", key, exc_info=True)


def notices_created(kind: str, amount: int = 1) -> None:
    _add(f"created:{kind}", amount)


def push_sent(delay_seconds: float | None) -> None:
    _add("push:sent", 1)
    if delay_seconds is not None:
        bucket = next((str(b) for b in DELAY_BUCKETS if delay_seconds <= b), "+Inf")
        _add(f"delay:{bucket}", 1)
        _add("delay:sum_ms", max(0, round(delay_seconds * 1000)))


def push_failed(reason: str) -> None:
    _add(f"push:failed:{reason}", 1)


def push_skipped(reason: str, amount: int = 1) -> None:
    _add(f"push:skipped:{reason}", amount)


def emails_sent(amount: int = 1) -> None:
    _add("email:sent", amount)


SKIP_REASONS = ("dnd", "muted", "no_subscription")


class NotificationCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        keys = [f"created:{t}" for t in NOTICE_TYPES]
        keys += ["push:sent", "email:sent", "delay:sum_ms", "delay:+Inf"]
        keys += [f"push:failed:{r}" for r in PUSH_FAILURES] + [f"push:skipped:{r}" for r in SKIP_REASONS]
        keys += [f"delay:{b}" for b in DELAY_BUCKETS]
        try:
            found = cache.get_many([PREFIX + k for k in keys])
        except Exception:
            logger.warning("notification figures unavailable", exc_info=True)
            return
        value = {k: int(found.get(PREFIX + k, 0)) for k in keys}
        created = CounterMetricFamily("chat_notifications_created", "Notices made, by type.", labels=["type"])
        for kind in NOTICE_TYPES:
            created.add_metric([kind], value[f"created:{kind}"])
        yield created
        yield CounterMetricFamily("chat_push_sent", "Pushes a push service accepted.", value=value["push:sent"])
        failed = CounterMetricFamily(
            "chat_push_failed", "Pushes refused or failed (retry: will be tried again).", labels=["reason"]
        )
        for reason in PUSH_FAILURES:
            failed.add_metric([reason], value[f"push:failed:{reason}"])
        yield failed
        skipped = CounterMetricFamily("chat_push_skipped", "Notices not pushed, and why.", labels=["reason"])
        for reason in SKIP_REASONS:
            skipped.add_metric([reason], value[f"push:skipped:{reason}"])
        yield skipped
        yield CounterMetricFamily("chat_emails_sent", "Notification digests e-mailed.", value=value["email:sent"])
        running, buckets = 0, []
        for bound in DELAY_BUCKETS:
            running += value[f"delay:{bound}"]
            buckets.append((str(bound), running))
        running += value["delay:+Inf"]
        buckets.append(("+Inf", running))
        yield HistogramMetricFamily(
            "chat_push_delay_seconds",
            "From a message being written to its push being accepted by the push service.",
            buckets=buckets,
            sum_value=value["delay:sum_ms"] / 1000,
        )
