"""What the message core announces to the apps above it, which it does not import."""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal

from messaging.payloads import MessagePayload


@dataclass(frozen=True)
class MessageChange:
    message: MessagePayload
    is_new: bool  # a post (`message.new`), else a change to a message clients have (`message.updated`)
    stamp: int = 0  # when the change was made, and when the room's change before it was (store.Allocation)
    prior_stamp: int = 0


# Sent once a change to a room's messages is durable, with `room_id` and `changes` (a list of
# MessageChange in ascending version). realtime/publishing.py publishes them to the room's
# sockets; search/tasks.py follows them into the index.
room_messages_changed = Signal()
