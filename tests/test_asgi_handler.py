"""The ASGI handler: one thread per request for all its sync work, threads reused, no serialising."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started

from chatproject.asgi_handler import ReusedThreadASGIHandler


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _get(app: ReusedThreadASGIHandler, path: str) -> int:
    sent: list[dict[str, Any]] = []
    body_given = False

    async def receive() -> dict[str, Any]:
        nonlocal body_given
        if not body_given:
            body_given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected; the handler cancels this wait
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(path), receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


ThreadsSeen = dict[str, list[threading.Thread]]


@pytest.fixture
def threads_seen() -> Iterator[ThreadsSeen]:
    # Thread objects, not idents: the OS reuses the ident of a thread that ended.
    seen: ThreadsSeen = {"started": [], "finished": []}

    def on_started(**kwargs: Any) -> None:
        seen["started"].append(threading.current_thread())
        time.sleep(0.2)  # long enough that concurrent requests overlap

    def on_finished(**kwargs: Any) -> None:
        seen["finished"].append(threading.current_thread())

    request_started.connect(on_started)
    request_finished.connect(on_finished)
    yield seen
    request_started.disconnect(on_started)
    request_finished.disconnect(on_finished)


async def test_sequential_requests_reuse_one_thread_and_stay_on_it(threads_seen: ThreadsSeen) -> None:
    app = ReusedThreadASGIHandler()
    statuses = [await _get(app, "/no-such-page/") for _ in range(5)]
    assert statuses == [404] * 5
    # Start and finish of each request ran on the same thread, and that thread was reused.
    assert threads_seen["started"] == threads_seen["finished"]
    assert len(set(threads_seen["started"])) == 1
    assert threading.current_thread() not in threads_seen["started"]


async def test_concurrent_requests_run_side_by_side(threads_seen: ThreadsSeen) -> None:
    app = ReusedThreadASGIHandler()
    started = time.monotonic()
    statuses = await asyncio.gather(*(_get(app, "/no-such-page/") for _ in range(4)))
    elapsed = time.monotonic() - started
    assert statuses == [404] * 4
    # Four requests each blocking 0.2 s on their own thread: far less than 0.8 s in all.
    assert len(set(threads_seen["started"])) == 4
    assert elapsed < 0.6
    assert set(threads_seen["started"]) == set(threads_seen["finished"])
    # The four threads are kept for the next burst rather than created again.
    await asyncio.gather(*(_get(app, "/no-such-page/") for _ in range(4)))
    assert len(set(threads_seen["started"])) == 4
