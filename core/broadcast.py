"""The one door to the channel layer: nothing else touches it.

Frames are published after the durable write. The layer is a signal, not a store: if Redis is
down the publish is logged and dropped, and clients catch up by `version` on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
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


async def publish_async(group: str, frame: Mapping[str, object], **fields: Any) -> None:
    """Publish `frame` to the group's sockets; `fields` travel beside it for the receiving hub."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = frame.get("message")
    user = frame.get("user")
    event = {
        "type": "room.event",  # fanned out to local sockets by realtime/hub.py
        "group": group,
        "kind": frame["type"],
        "version": message["version"] if isinstance(message, dict) else None,
        "sender": user["id"] if isinstance(user, dict) else None,
        # Serialised once here, not once per receiving socket: a 1,000-member room costs one dumps.
        "text": frame_text(frame),
        **fields,
    }
    try:
        await layer.group_send(group, event)
    except Exception:
        logger.warning("channel layer publish to %s failed", group, exc_info=logger.isEnabledFor(logging.DEBUG))


async def _publish_all(group: str, items: Sequence[tuple[Mapping[str, object], dict[str, Any]]]) -> None:
    for frame, fields in items:  # in order: a room's frames reach its sockets as they were made
        await publish_async(group, frame, **fields)


def publish_many(group: str, items: Sequence[tuple[Mapping[str, object], dict[str, Any]]]) -> None:
    """Publish frames to one group, in order, with one crossing from this thread to the event loop
    (each `async_to_sync` crossing costs more than the Redis command it carries)."""
    if items:
        async_to_sync(_publish_all)(group, items)


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
