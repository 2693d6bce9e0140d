"""The `Message` JSON shape (docs/api.md), built from store dataclasses with one user query a batch.

REST responses and WebSocket frames carry the same `MessagePayload`; messaging.serializers
documents it for the OpenAPI schema and realtime.frames for the socket, and tests check both
against what is really sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from django.conf import settings

from accounts.models import User
from accounts.serializers import UserPayload, user_payload
from core.expiring import ExpiringMap
from core.times import iso
from files.selectors import AttachmentPayload, attachment_payloads
from messaging.rendering import plain_html
from messaging.store import StoredMessage


class ReactionPayload(TypedDict):
    emoji: str
    count: int
    users: list[str]


class MentionsPayload(TypedDict):
    user_ids: list[str]
    room: bool


class _StoredMessagePayload(TypedDict):
    id: str
    room_id: str
    seq: int
    version: int
    author: UserPayload
    body: str
    html: str
    mentions: MentionsPayload
    created_at: str
    edited_at: str | None
    deleted: bool
    parent_id: str | None
    reply_count: int
    last_reply_at: str | None
    reactions: list[ReactionPayload]
    attachments: list[AttachmentPayload]
    client_id: str | None


# Keys a payload may lack go in a `total=False` part: Python 3.11 does not read NotRequired from
# postponed annotations.
class MessagePayload(_StoredMessagePayload, total=False):
    highlights: list[list[int]]  # search results only: [start, end) ranges of `body` that matched


def _unknown_user(user_id: int) -> UserPayload:
    return {"id": str(user_id), "username": "deleted-user", "display_name": "", "avatar_url": None}


# Authors' public shapes, reused for USER_CACHE_SECONDS: a page of history by the usual few
# people then needs no PostgreSQL read at all. (Deactivated authors too: not the sign-in cache.)
_authors: ExpiringMap[int, UserPayload] = ExpiringMap(max_entries=50_000)


def author_payloads(author_ids: set[int], known: Iterable[User] = ()) -> dict[int, UserPayload]:
    found = {user.pk: user_payload(user) for user in known}
    for author_id in author_ids - found.keys():
        cached = _authors.get(author_id)
        if cached is not None:
            found[author_id] = cached
    missing = author_ids - found.keys()
    if missing:
        fresh = {pk: user_payload(user) for pk, user in User.objects.in_bulk(missing).items()}
        found.update(fresh)
        _authors.put_many(fresh.items(), settings.USER_CACHE_SECONDS)
    return found


def message_payloads(messages: Iterable[StoredMessage], known: Iterable[User] = ()) -> list[MessagePayload]:
    """Payloads for a batch; authors not in `known` or the short-lived cache: one query."""
    batch = list(messages)
    authors = author_payloads({m.author_id for m in batch}, known)
    files = attachment_payloads(a for m in batch for a in m.attachments)
    return [message_payload(m, authors, files) for m in batch]


def message_payload(
    message: StoredMessage, authors: dict[int, UserPayload], files: dict[str, AttachmentPayload]
) -> MessagePayload:
    return {
        "id": message.id,
        "room_id": str(message.room_id),
        "seq": message.seq,
        "version": message.version,
        "author": authors.get(message.author_id) or _unknown_user(message.author_id),
        "body": message.body,
        "html": message.html if message.html is not None else plain_html(message.body),
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


def one_message_payload(message: StoredMessage) -> MessagePayload:
    return message_payloads([message])[0]
