"""The `Message` JSON shape of API.md, built from store dataclasses with one user query a batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from accounts.models import User
from accounts.serializers import user_payload
from messaging.store import StoredMessage
from messaging.uploads import attachment_payloads


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _unknown_user(user_id: int) -> dict[str, Any]:
    return {"id": str(user_id), "username": "deleted-user", "display_name": ""}


def message_payloads(messages: Iterable[StoredMessage], known: Iterable[User] = ()) -> list[dict[str, Any]]:
    """Payloads for a batch; authors not in `known` are fetched in one query."""
    batch = list(messages)
    users = {user.pk: user for user in known}
    missing = {m.author_id for m in batch} - users.keys()
    if missing:
        users.update(User.objects.in_bulk(missing))
    files = attachment_payloads(a for m in batch for a in m.attachments)
    return [message_payload(m, users, files) for m in batch]


def message_payload(message: StoredMessage, users: dict[int, User], files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    author = users.get(message.author_id)
    return {
        "id": message.id,
        "room_id": str(message.room_id),
        "seq": message.seq,
        "version": message.version,
        "author": user_payload(author) if author is not None else _unknown_user(message.author_id),
        "body": message.body,
        "html": message.html,
        "mentions": {"user_ids": [str(u) for u in message.mentioned_user_ids], "room": message.mentions_room},
        "created_at": iso(message.created_at),
        "edited_at": iso(message.edited_at),
        "deleted": message.deleted,
        "parent_id": message.parent_id,
        "reply_count": message.reply_count,
        "last_reply_at": iso(message.last_reply_at),
        "reactions": [
            {"emoji": r.emoji, "count": len(r.user_ids), "users": [str(u) for u in r.user_ids]}
            for r in message.reactions
        ],
        "attachments": [files[a] for a in message.attachments if a in files],
        "client_id": message.client_id,
    }


def one_message_payload(message: StoredMessage) -> dict[str, Any]:
    return message_payloads([message])[0]
