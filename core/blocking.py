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

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")


def off_loop(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    return database_sync_to_async(func, thread_sensitive=False)


# Socket posts wait in a group commit (messaging.store.group_commit) while they hold their thread:
# on the loop's default executor (min(32, cores + 4) threads: 6 here, shared with every other socket
# call) a batch held at most a handful. Posts get a pool of their own per loop, sized so that they
# cannot take all of the database connections the pool (DB_POOL_MAX_SIZE, 20) holds.
_post_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def off_loop_post(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """As off_loop, on the loop's pool for socket posts (SOCKET_POST_THREADS threads)."""

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        pool = _post_pools.get(loop)
        if pool is None:
            pool = ThreadPoolExecutor(settings.SOCKET_POST_THREADS, thread_name_prefix="socket-post")
            _post_pools[loop] = pool
        return await database_sync_to_async(func, thread_sensitive=False, executor=pool)(*args, **kwargs)

    return run
