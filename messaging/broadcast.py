"""The only module that touches the channel layer.

Services call it after the durable write. The layer is a signal, not a store: if Redis is
down the publish is logged and dropped, and clients catch up by `version` on reconnect.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def publish_async(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # The consumer's `room_event` handler forwards `frame` to its socket.
        await layer.group_send(group, {"type": "room.event", "frame": event})
    except Exception:
        logger.warning("channel layer publish to %s failed", group, exc_info=logger.isEnabledFor(logging.DEBUG))


def publish(group: str, event: dict[str, Any]) -> None:
    async_to_sync(publish_async)(group, event)


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
    async_to_sync(notify_async)(group, kind, **data)
