"""Every real-time event payload, one builder each: the WebSocket frames of API.md."""

from __future__ import annotations

from typing import Any

MESSAGE_NEW = "message.new"
MESSAGE_UPDATED = "message.updated"
MESSAGE_ACK = "message.ack"
SYNC_DONE = "sync.done"
TYPING = "typing"
PRESENCE = "presence"
ERROR = "error"
PONG = "pong"


def message_new(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": MESSAGE_NEW, "message": message}


def message_updated(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": MESSAGE_UPDATED, "message": message}


def message_ack(client_id: str | None, message: dict[str, Any]) -> dict[str, Any]:
    return {"type": MESSAGE_ACK, "client_id": client_id, "message": message}


def sync_done(version: int) -> dict[str, Any]:
    return {"type": SYNC_DONE, "version": version}


def typing(user: dict[str, Any], state: str) -> dict[str, Any]:
    return {"type": TYPING, "user": user, "state": state}


def presence(user: dict[str, Any], status: str) -> dict[str, Any]:
    return {"type": PRESENCE, "user": user, "status": status}


def error(code: str, detail: str, client_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": ERROR, "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


def pong() -> dict[str, Any]:
    return {"type": PONG}
