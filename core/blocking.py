"""Blocking database and storage calls from async code (sockets, the tus handler, the hub).

Channels' `database_sync_to_async` is thread-sensitive by default: outside an HTTP request every
such call in the process runs on one shared thread, one after another, so each socket's connect
waited behind every other's, and a finishing 1 GiB upload (copied to storage on that thread) held
up every socket. Each call made through here stands alone (no transaction or connection state
spans two calls), so it runs on the event loop's thread pool instead; Channels still closes stale
database connections around each call. Opening many sockets at once got somewhat faster (README,
Run D); the point is that no slow call holds up the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")


def off_loop(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    return database_sync_to_async(func, thread_sensitive=False)
