"""Async Redis clients, one per event loop and URL (a client belongs to the loop it was made on)."""

from __future__ import annotations

import asyncio
from typing import Any

_clients: dict[tuple[asyncio.AbstractEventLoop, str], Any] = {}


def client(url: str) -> Any:
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    found = _clients.get((loop, url))
    if found is None:
        # Sync callers (async_to_sync) bring short-lived loops: forget the closed ones.
        for stale in [key for key in _clients if key[0].is_closed()]:
            del _clients[stale]
        # A blocking pool: a burst of callers (a thousand sockets closing at once) waits its turn for
        # one of the connections instead of failing with MaxConnectionsError past the 100th.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=100, timeout=5, socket_timeout=2, socket_connect_timeout=2
        )
        found = aioredis.Redis(connection_pool=pool)
        _clients[(loop, url)] = found
    return found
