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
        found = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        _clients[(loop, url)] = found
    return found
