"""A socket's outgoing frames: bounded, sent in order by one writer task of its own.

Whoever produces a frame never waits for the client to read it. Live frames from the hub are
`offer`ed: over the byte limit the socket has fallen behind, so its backlog is dropped and it is
closed with a code that tells the client to resume from the store (`?since=`), and the fan-out to
every other socket goes on at once. The socket's own frames (acks, replays, errors) `put` and wait
for room: they go at the client's pace, up to `stall_seconds` without progress, after which the
socket is closed the same way. Memory per socket stays under the limit plus the server's
transport buffer, whatever the client does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


class Outbox:
    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        send_close: Callable[[Close], Awaitable[None]],
        *,
        limit_bytes: int,
        stall_seconds: float,
        on_overflow: Callable[[], Close],
    ) -> None:
        self._send_text = send_text
        self._send_close = send_close
        self._limit = limit_bytes
        self._stall_seconds = stall_seconds
        self._on_overflow = on_overflow
        # Each frame with its tag (a user stream's room), so a room's frames can be dropped.
        self._queue: deque[tuple[str, int | None] | Close] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()  # something is queued
        self._room = asyncio.Event()  # the queue went below the limit
        self.closing = False  # a Close is queued or sent: nothing more is accepted
        self._writer = asyncio.get_running_loop().create_task(self._write_forever())

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def offer(self, text: str, tag: int | None = None) -> bool:
        """Queue a live frame without waiting; over the limit, close the socket instead."""
        if self.closing:
            return False
        if self._queue and self._bytes + len(text) > self._limit:
            self._overflow()
            return False
        self._append(text, tag)
        return True

    async def put(self, text: str, tag: int | None = None) -> None:
        """Queue one of the socket's own frames, waiting while the queue is over the limit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stall_seconds
        while not self.closing and self._queue and self._bytes + len(text) > self._limit:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:  # the client took in nothing for stall_seconds
                self._overflow()
        if not self.closing:
            self._append(text, tag)

    def drop(self, tag: int) -> None:
        """Forget the queued frames tagged `tag` (access to that room ended: none may reach the client)."""
        kept: deque[tuple[str, int | None] | Close] = deque()
        for item in self._queue:
            if isinstance(item, tuple) and item[1] == tag:
                self._bytes -= len(item[0])
            else:
                kept.append(item)
        self._queue = kept
        if self._bytes <= self._limit:
            self._room.set()

    def close(self, close: Close) -> None:
        """Send `close` after what is queued; later frames are dropped."""
        if self.closing:
            return
        self.closing = True
        self._queue.append(close)
        self._ready.set()
        self._room.set()

    def cut(self, last_words: str, close: Close) -> None:
        """Drop what is queued (access ended: nothing more may reach the client), send `last_words`
        and `close`."""
        if self.closing:
            return
        self._queue.clear()
        self._bytes = 0
        self._append(last_words)
        self.close(close)

    def stop(self) -> None:
        """The socket is gone: drop everything and end the writer."""
        self.closing = True
        self._queue.clear()
        self._bytes = 0
        self._room.set()
        self._writer.cancel()

    def _overflow(self) -> None:
        self._queue.clear()
        self._bytes = 0
        self.close(self._on_overflow())

    def _append(self, text: str, tag: int | None = None) -> None:
        self._queue.append((text, tag))
        self._bytes += len(text)
        self._ready.set()

    async def _write_forever(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            item = self._queue.popleft()
            if isinstance(item, Close):
                with contextlib.suppress(Exception):  # the client may be gone already
                    await self._send_close(item)
                return
            text = item[0]
            self._bytes -= len(text)
            if self._bytes <= self._limit:
                self._room.set()
            try:
                await self._send_text(text)
            except Exception:  # noqa: BLE001 - the connection is gone; disconnect() cleans up
                self.closing = True
                self._room.set()
                return
