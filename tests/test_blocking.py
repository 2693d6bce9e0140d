"""Blocking calls from sockets and the tus handler run side by side, not on one shared thread."""

from __future__ import annotations

import asyncio
import threading
import time

from core.blocking import off_loop


async def test_blocking_calls_from_async_code_do_not_wait_for_each_other() -> None:
    threads: set[threading.Thread] = set()

    def slow_call() -> None:
        threads.add(threading.current_thread())
        time.sleep(0.3)  # a slow query, or an upload being copied to storage

    started = time.monotonic()
    await asyncio.gather(*(off_loop(slow_call)() for _ in range(4)))
    # One after another (Channels' default outside a request) would take 1.2 s.
    assert time.monotonic() - started < 0.9
    assert len(threads) > 1
    assert threading.current_thread() not in threads
