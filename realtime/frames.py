"""Every WebSocket frame of docs/websocket.md: one typed schema and one builder each.

Server -> client frames are built only here; tests/frame_schemas.py validates every frame the
test suite receives against these TypedDicts (the socket's counterpart of the OpenAPI checks).
"""

from __future__ import annotations

from typing import Literal, TypedDict

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


ServerFrame = (
    MessageNewFrame
    | MessageUpdatedFrame
    | MessageAckFrame
    | SyncDoneFrame
    | TypingFrame
    | PresenceFrame
    | ErrorFrame
    | PongFrame
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
