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


# The loop's default executor has min(32, cores + 4) threads: 6 here, so at most 6 sockets' posts
# were in flight at once and a group commit (messaging.store.group_commit) held at most 6. Each
# loop gets a larger one instead (still the loop's own: closing the loop shuts it down).
_sized_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _size_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    if loop not in _sized_loops:
        _sized_loops.add(loop)
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=settings.BLOCKING_CALL_THREADS, thread_name_prefix="off-loop")
        )


def off_loop(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    call = database_sync_to_async(func, thread_sensitive=False)

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        _size_default_executor(asyncio.get_running_loop())
        return await call(*args, **kwargs)

    return run
