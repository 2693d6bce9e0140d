"""Every change to a room's messages: posts, edits, reactions, deletions, each one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from messaging.store import connection
from messaging.store.documents import bson_time, idem_key, markup_fields, parse_message_id, to_message
from messaging.store.transactions import allocate, in_room_transaction
from messaging.store.types import Markup, MessageGone, ParentInvalid, StoredMessage, TooManyReactions


def insert_message(
    *,
    room_id: int,
    author_id: int,
    body: str,
    rendered: Markup,
    now: datetime,
    parent_id: str | None = None,
    client_id: str | None = None,
    attachments: list[str] | None = None,
) -> tuple[StoredMessage, bool, StoredMessage | None]:
    """Store a post. Returns (message, created, updated parent).

    With a `client_id` already used by this author in this room, returns the first message and
    `created=False`; the unique index settles a race between two processes.
    """
    now = bson_time(now)
    parent_oid = parse_message_id(parent_id) if parent_id is not None else None
    if parent_id is not None and parent_oid is None:
        raise ParentInvalid(parent_id)
    messages = connection.messages()

    def work(session: ClientSession) -> tuple[StoredMessage, bool, StoredMessage | None]:
        # A repeated client_id is found by the unique index: the insert below fails, the
        # transaction (and its counter increment) is rolled back, and the first message is read.
        parent = None
        if parent_oid is not None:
            parent = messages.find_one({"_id": parent_oid, "room_id": room_id}, session=session)
            if parent is None or parent["deleted"] or parent.get("parent_id") is not None:
                raise ParentInvalid(parent_id)
        allocated = allocate(session, room_id, posts=1, changes=2 if parent is not None else 1)
        seq, version = allocated.seq, allocated.version
        oid = ObjectId()
        doc: dict[str, Any] = {
            "_id": oid,
            "room_id": room_id,
            "seq": seq,
            "version": version - 1 if parent is not None else version,
            "created_version": version - 1 if parent is not None else version,
            "at": allocated.stamp,
            "prior_at": allocated.prior_stamp,
            "born_at": allocated.stamp,
            "author_id": author_id,
            "body": body,
            **markup_fields(rendered),
            "created_at": now,
            "edited_at": None,
            "deleted": False,
            "parent_id": parent_oid,
            "reply_count": 0,
            "last_reply_at": None,
            "client_id": client_id,
            "idem_key": idem_key(client_id) if client_id is not None else f"s:{oid}",
            "reactions": [],
            "attachments": attachments or [],
        }
        messages.insert_one(doc, session=session)
        updated_parent = None
        if parent is not None:
            updated_parent = messages.find_one_and_update(
                {"_id": parent_oid},
                {
                    "$inc": {"reply_count": 1},
                    # The reply took the version before, with the same stamp.
                    "$set": {
                        "last_reply_at": now,
                        "version": version,
                        "at": allocated.stamp,
                        "prior_at": allocated.stamp,
                    },
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
        return to_message(doc), True, to_message(updated_parent) if updated_parent else None

    try:
        return in_room_transaction(room_id, work)
    except DuplicateKeyError:
        if client_id is None:
            raise
        existing = messages.find_one({"room_id": room_id, "author_id": author_id, "idem_key": idem_key(client_id)})
        if existing is None:
            raise
        return to_message(existing), False, None


def _change_message(
    room_id: int,
    message_id: str,
    change: Callable[[ClientSession, dict[str, Any]], dict[str, Any] | None],
) -> StoredMessage | None:
    """Apply `change(session, current_doc)`; it returns the update, or None for a no-op.

    The version is only allocated (and the message only rewritten) when there is a real change.
    """
    oid = parse_message_id(message_id)
    if oid is None:
        raise MessageGone(message_id)
    messages = connection.messages()

    def work(session: ClientSession) -> StoredMessage | None:
        current = messages.find_one({"_id": oid, "room_id": room_id}, session=session)
        if current is None or current["deleted"]:
            raise MessageGone(message_id)
        update = change(session, current)
        if update is None:
            return None
        allocated = allocate(session, room_id, posts=0, changes=1)
        update.setdefault("$set", {}).update(
            version=allocated.version, at=allocated.stamp, prior_at=allocated.prior_stamp
        )
        after = messages.find_one_and_update(
            {"_id": oid}, update, return_document=ReturnDocument.AFTER, session=session
        )
        return to_message(after) if after else None

    return in_room_transaction(room_id, work)


def edit_message(*, room_id: int, message_id: str, body: str, rendered: Markup, now: datetime) -> StoredMessage | None:
    """Replace the body, keeping the previous one as a revision. None if unchanged."""
    now = bson_time(now)

    def change(session: ClientSession, current: dict[str, Any]) -> dict[str, Any] | None:
        if current["body"] == body:
            return None
        connection.revisions().insert_one(
            {
                "message_id": current["_id"],
                "room_id": room_id,
                "body": current["body"],
                "written_at": current["edited_at"] or current["created_at"],
                "replaced_at": now,
            },
            session=session,
        )
        return {"$set": {"body": body, "edited_at": now, **markup_fields(rendered)}}

    return _change_message(room_id, message_id, change)


def set_reaction(
    *, room_id: int, message_id: str, emoji: str, user_id: int, present: bool, max_distinct: int
) -> StoredMessage | None:
    """Add or take back one user's reaction. None when nothing changed (reacting twice).

    A new emoji beyond `max_distinct` different ones on the message is refused (TooManyReactions),
    checked inside the transaction so two concurrent reactions cannot both pass the limit.
    """
    pair = {"emoji": emoji, "user_id": user_id}

    def change(session: ClientSession, current: dict[str, Any]) -> dict[str, Any] | None:
        reactions = current.get("reactions", [])
        has_it = pair in reactions
        if has_it == present:
            return None
        distinct = {r["emoji"] for r in reactions}
        if present and emoji not in distinct and len(distinct) >= max_distinct:
            raise TooManyReactions(message_id)
        return {"$addToSet": {"reactions": pair}} if present else {"$pull": {"reactions": pair}}

    return _change_message(room_id, message_id, change)


def delete_message(*, room_id: int, message_id: str, now: datetime) -> StoredMessage | None:
    """Leave a tombstone so `seq` keeps no holes; the revisions go with the body."""
    now = bson_time(now)

    def change(session: ClientSession, current: dict[str, Any]) -> dict[str, Any] | None:
        connection.revisions().delete_many({"message_id": current["_id"]}, session=session)
        return {
            "$set": {
                "body": "",
                "html": "",
                "has_link": False,
                "mentions": [],
                "mentions_room": False,
                "deleted": True,
                "deleted_at": now,
                "reactions": [],
                "attachments": [],
            },
        }

    return _change_message(room_id, message_id, change)
