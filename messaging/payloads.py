"""The `Message` JSON shape of API.md, built from store dataclasses with one user query a batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings

from accounts.models import User
from accounts.serializers import user_payload
from chatproject.expiring import ExpiringMap
from messaging.store import StoredMessage
from messaging.uploads import attachment_payloads


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _unknown_user(user_id: int) -> dict[str, Any]:
    return {"id": str(user_id), "username": "deleted-user", "display_name": ""}


# Authors' public shapes, reused for USER_CACHE_SECONDS: a page of history by the usual few
# people then needs no PostgreSQL read at all. (Deactivated authors too: not the sign-in cache.)
_authors: ExpiringMap[int, dict[str, Any]] = ExpiringMap(max_entries=50_000)


def author_payloads(author_ids: set[int], known: Iterable[User] = ()) -> dict[int, dict[str, Any]]:
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


def message_payloads(messages: Iterable[StoredMessage], known: Iterable[User] = ()) -> list[dict[str, Any]]:
    """Payloads for a batch; authors not in `known` or the short-lived cache: one query."""
    batch = list(messages)
    authors = author_payloads({m.author_id for m in batch}, known)
    files = attachment_payloads(a for m in batch for a in m.attachments)
    return [message_payload(m, authors, files) for m in batch]


def message_payload(
    message: StoredMessage, authors: dict[int, dict[str, Any]], files: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": message.id,
        "room_id": str(message.room_id),
        "seq": message.seq,
        "version": message.version,
        "author": authors.get(message.author_id) or _unknown_user(message.author_id),
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
