"""The one door to the channel layer: nothing else touches it.

Frames are published after the durable write. The layer is a signal, not a store: if Redis is
down the publish is logged and dropped, and clients catch up by `version` on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


# People's presence anywhere, for every process's hub (realtime/presence.py announces it).
PRESENCE_GROUP = "presence.anywhere"


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def frame_text(frame: Mapping[str, object]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def _room_event(group: str, frame: Mapping[str, object], fields: Mapping[str, Any]) -> dict[str, Any]:
    message = frame.get("message")
    user = frame.get("user")
    return {
        "type": "room.event",  # fanned out to local sockets by realtime/hub.py
        "group": group,
        "kind": frame["type"],
        "version": message["version"] if isinstance(message, dict) else None,
        "sender": user["id"] if isinstance(user, dict) else None,
        # Serialised once here, not once per receiving socket: a 1,000-member room costs one dumps.
        "text": frame_text(frame),
        **fields,
    }


async def publish_async(group: str, frame: Mapping[str, object], **fields: Any) -> None:
    """Publish `frame` to the group's sockets; `fields` travel beside it for the receiving hub."""
    await _publish_events([(group, _room_event(group, frame, fields))])


async def _publish_events(events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """In order: a room's frames reach its sockets as they were made. A layer that can send many
    at once (core.channel_layer) sends them in one round trip."""
    layer = get_channel_layer()
    if layer is None or not events:
        return
    try:
        send_many = getattr(layer, "group_send_many", None)
        if send_many is not None:
            await send_many(events)
            return
        for group, event in events:
            await layer.group_send(group, event)
    except Exception:
        groups = sorted({group for group, _ in events})
        logger.warning("channel layer publish to %s failed", groups, exc_info=logger.isEnabledFor(logging.DEBUG))


Items = Sequence[tuple[Mapping[str, object], dict[str, Any]]]
_held = threading.local()  # the events of this thread's `together()` block


def publish_many(group: str, items: Items) -> None:
    """Publish frames to one group, in order, with one crossing from this thread to the event loop
    (each `async_to_sync` crossing costs more than the Redis command it carries); inside a
    `together()` block, at the block's end with the others."""
    events = [(group, _room_event(group, frame, fields)) for frame, fields in items]
    held: list[tuple[str, dict[str, Any]]] | None = getattr(_held, "events", None)
    if held is not None:
        held.extend(events)
    elif events:
        async_to_sync(_publish_events)(events)


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Every publish_many on this thread within the block is sent at its end, in the order made,
    in one crossing to the event loop and one Redis round trip (a group commit's announcements)."""
    if getattr(_held, "events", None) is not None:  # an outer block sends them
        yield
        return
    _held.events = []
    try:
        yield
    finally:
        events, _held.events = _held.events, None
        if events:
            async_to_sync(_publish_events)(events)


async def notify_async(group: str, kind: str, **data: Any) -> None:
    """A control event for the consumers themselves (not forwarded as a frame), e.g. a revocation."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, {"type": kind, **data})
    except Exception:
        logger.warning("channel layer notify to %s failed", group, exc_info=logger.isEnabledFor(logging.DEBUG))


def notify(group: str, kind: str, **data: Any) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(notify_async)(group, kind, **data)
        return
    # Sync code on an event loop's thread (a test's ORM call): hand it to the loop, do not block it.
    task = loop.create_task(notify_async(group, kind, **data))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Task[None]] = set()  # tasks keep no strong reference of their own


async def new_channel() -> str:
    layer = get_channel_layer()
    assert layer is not None
    return str(await layer.new_channel())


async def subscribe(group: str, channel: str) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_add(group, channel)


async def unsubscribe(group: str, channel: str) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_discard(group, channel)


async def receive(channel: str) -> dict[str, Any]:
    layer = get_channel_layer()
    assert layer is not None
    return dict(await layer.receive(channel))
