"""Stored documents <-> the store's dataclasses, and the keys and filters shared by reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from messaging.store.types import Markup, ReactionSummary, StoredMessage


def parse_message_id(raw: Any) -> ObjectId | None:
    try:
        return ObjectId(str(raw))
    except (InvalidId, TypeError):
        return None


def idem_key(client_id: str) -> str:
    return f"c:{client_id}"


def unread_filter(room_id: int, first: int, last: int) -> dict[str, Any]:
    return {"room_id": room_id, "seq": {"$gte": first, "$lte": last}}


def bson_time(moment: datetime) -> datetime:
    """BSON keeps milliseconds: truncate first, so a write's answer equals what a read returns."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def markup_fields(markup: Markup) -> dict[str, Any]:
    return {
        "html": markup.html,
        "has_link": markup.has_link,
        "mentions": markup.mentioned_user_ids,
        "mentions_room": markup.mentions_room,
    }


def to_message(doc: dict[str, Any]) -> StoredMessage:
    grouped: dict[str, list[int]] = {}
    for reaction in doc.get("reactions", []):
        grouped.setdefault(reaction["emoji"], []).append(int(reaction["user_id"]))
    parent = doc.get("parent_id")
    return StoredMessage(
        id=str(doc["_id"]),
        room_id=int(doc["room_id"]),
        seq=int(doc["seq"]),
        version=int(doc["version"]),
        author_id=int(doc["author_id"]),
        body=doc["body"],
        created_at=doc["created_at"],
        edited_at=doc.get("edited_at"),
        deleted=bool(doc.get("deleted", False)),
        parent_id=str(parent) if parent is not None else None,
        reply_count=int(doc.get("reply_count", 0)),
        last_reply_at=doc.get("last_reply_at"),
        client_id=doc.get("client_id"),
        created_version=int(doc.get("created_version", doc["version"])),
        html=doc.get("html"),
        has_link=bool(doc.get("has_link", False)),
        mentioned_user_ids=[int(u) for u in doc.get("mentions", [])],
        mentions_room=bool(doc.get("mentions_room", False)),
        reactions=[ReactionSummary(emoji=e, user_ids=u) for e, u in grouped.items()],
        attachments=[a for a in doc.get("attachments", []) if isinstance(a, str)],
        stamp=int(doc.get("at", 0)),
        prior_stamp=int(doc.get("prior_at", 0)),
        created_stamp=int(doc.get("born_at", 0)),
    )
