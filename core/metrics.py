"""The Prometheus counters every layer may count into (served by chatproject/monitoring.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("chat_http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "chat_http_request_seconds",
    "Time to answer an HTTP request.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
STORE_BATCH_SIZE = Histogram(
    "chat_store_batch_changes",
    "Changes to rooms' messages committed together in one MongoDB transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
MESSAGES_POSTED = Counter("chat_messages_posted_total", "Messages stored (repeats of a client_id excluded).")
SOCKETS_OPEN = Gauge("chat_websockets_open", "WebSocket connections joined to a room in this process.")
SOCKETS_FELL_BEHIND = Counter(
    "chat_websockets_fell_behind_total", "Sockets closed 4408 because their outgoing queue passed its limit."
)
