"""Every WebSocket frame of docs/websocket.md: one typed schema and one builder each.

Server -> client frames are built only here; tests/frame_schemas.py validates every frame the
test suite receives against these TypedDicts (the socket's counterpart of the OpenAPI checks).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from accounts.serializers import UserPayload
from messaging.payloads import MessagePayload

MESSAGE_NEW = "message.new"
MESSAGE_UPDATED = "message.updated"
MESSAGE_ACK = "message.ack"
SYNC_DONE = "sync.done"
TYPING = "typing"
PRESENCE = "presence"
ERROR = "error"
PONG = "pong"
ROOM_ADDED = "room.added"
ROOM_UPDATED = "room.updated"
ROOM_REMOVED = "room.removed"
READ = "read"
NOTIFICATION = "notification"

TypingState = Literal["start", "stop"]
PresenceStatus = Literal["online", "offline"]


class MessageNewFrame(TypedDict):
    type: Literal["message.new"]
    message: MessagePayload


class MessageUpdatedFrame(TypedDict):
    type: Literal["message.updated"]
    message: MessagePayload


class MessageAckFrame(TypedDict):
    type: Literal["message.ack"]
    client_id: str | None
    message: MessagePayload


class SyncDoneFrame(TypedDict):
    type: Literal["sync.done"]
    version: int


class TypingFrame(TypedDict):
    type: Literal["typing"]
    user: UserPayload
    state: TypingState


class PresenceFrame(TypedDict):
    type: Literal["presence"]
    user: UserPayload
    status: PresenceStatus


class _ErrorFields(TypedDict):
    type: Literal["error"]
    code: str
    detail: str


class ErrorFrame(_ErrorFields, total=False):
    client_id: str  # the frame's own `client_id`, when it had one (Python 3.11 needs `total=False` here)


class PongFrame(TypedDict):
    type: Literal["pong"]


# --- the user stream (WS /api/ws): every frame about a room names it; state changes carry `cursor` ---

RemovalReason = Literal["left", "removed", "banned"]


class StreamMessageNewFrame(TypedDict):
    type: Literal["message.new"]
    room_id: str
    message: MessagePayload
    cursor: str


class StreamMessageUpdatedFrame(TypedDict):
    type: Literal["message.updated"]
    room_id: str
    message: MessagePayload
    cursor: str


class StreamMessageAckFrame(TypedDict):
    type: Literal["message.ack"]
    room_id: str
    client_id: str | None
    message: MessagePayload


class StreamSyncDoneFrame(TypedDict):
    type: Literal["sync.done"]
    cursor: str


class StreamTypingFrame(TypedDict):
    type: Literal["typing"]
    room_id: str
    user: UserPayload
    state: TypingState


class RoomAddedFrame(TypedDict):
    type: Literal["room.added"]
    room: dict[str, Any]  # the REST `Room`
    cursor: str


class RoomUpdatedFrame(TypedDict):
    type: Literal["room.updated"]
    room: dict[str, Any]
    cursor: str


class RoomRemovedFrame(TypedDict):
    type: Literal["room.removed"]
    room_id: str
    reason: RemovalReason
    cursor: str


class ReadFrame(TypedDict):
    type: Literal["read"]
    room_id: str
    seq: int
    unread_count: int
    cursor: str


class NotificationFrame(TypedDict):
    type: Literal["notification"]
    notification: dict[str, Any]  # the REST `Notification`
    cursor: str


ServerFrame = (
    MessageNewFrame
    | MessageUpdatedFrame
    | MessageAckFrame
    | SyncDoneFrame
    | TypingFrame
    | PresenceFrame
    | ErrorFrame
    | PongFrame
    | StreamMessageNewFrame
    | StreamMessageUpdatedFrame
    | StreamMessageAckFrame
    | StreamSyncDoneFrame
    | StreamTypingFrame
    | RoomAddedFrame
    | RoomUpdatedFrame
    | RoomRemovedFrame
    | ReadFrame
    | NotificationFrame
)


def message_new(message: MessagePayload) -> MessageNewFrame:
    return {"type": "message.new", "message": message}


def message_updated(message: MessagePayload) -> MessageUpdatedFrame:
    return {"type": "message.updated", "message": message}


def message_ack(client_id: str | None, message: MessagePayload) -> MessageAckFrame:
    return {"type": "message.ack", "client_id": client_id, "message": message}


def sync_done(version: int) -> SyncDoneFrame:
    return {"type": "sync.done", "version": version}


def typing(user: UserPayload, state: TypingState) -> TypingFrame:
    return {"type": "typing", "user": user, "state": state}


def presence(user: UserPayload, status: PresenceStatus) -> PresenceFrame:
    return {"type": "presence", "user": user, "status": status}


def error(code: str, detail: str, client_id: str | None = None) -> ErrorFrame:
    frame: ErrorFrame = {"type": "error", "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


def pong() -> PongFrame:
    return {"type": "pong"}


def stream_sync_done(cursor: str) -> StreamSyncDoneFrame:
    return {"type": "sync.done", "cursor": cursor}


def stream_message_ack(room_id: int, client_id: str | None, message: MessagePayload) -> StreamMessageAckFrame:
    return {"type": "message.ack", "room_id": str(room_id), "client_id": client_id, "message": message}


def room_added(room: dict[str, Any], cursor: str) -> RoomAddedFrame:
    return {"type": "room.added", "room": room, "cursor": cursor}


def room_updated(room: dict[str, Any], cursor: str) -> RoomUpdatedFrame:
    return {"type": "room.updated", "room": room, "cursor": cursor}


def room_removed(room_id: int, reason: RemovalReason, cursor: str) -> RoomRemovedFrame:
    return {"type": "room.removed", "room_id": str(room_id), "reason": reason, "cursor": cursor}


def read(room_id: int, seq: int, unread_count: int, cursor: str) -> ReadFrame:
    return {"type": "read", "room_id": str(room_id), "seq": seq, "unread_count": unread_count, "cursor": cursor}


def notification(payload: dict[str, Any], cursor: str) -> NotificationFrame:
    return {"type": "notification", "notification": payload, "cursor": cursor}
