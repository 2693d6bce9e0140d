"""Message changes to the room's sockets: the receiver of messaging.signals.room_messages_changed.

It runs in the writer's thread right after the durable write, so a post's `message.new` is on
the channel layer before the writer answers (the socket's own ack still goes first: see
realtime/consumers.py).
"""

from __future__ import annotations

from typing import Any

from core import broadcast
from messaging.signals import MessageChange
from realtime import frames


def publish_room_changes(sender: Any, *, room_id: int, changes: list[MessageChange], **_: Any) -> None:
    items = [
        (
            frames.message_new(change.message) if change.is_new else frames.message_updated(change.message),
            # The stamps let a user stream tell, without a query, whether it has what came before.
            {"stamp": change.stamp, "prior_stamp": change.prior_stamp},
        )
        for change in changes
    ]
    broadcast.publish_many(broadcast.room_group(room_id), items)
