"""Every change to a room's messages: posts, edits, reactions, deletions, each run in the process's
next group commit (messaging.store.group_commit): one transaction for the changes made together.

A change checks everything it needs (and raises its StoreError) before it writes to the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from messaging.store import connection
from messaging.store.documents import bson_time, idem_key, markup_fields, parse_message_id, to_message
from messaging.store.group_commit import Change, run_change
from messaging.store.transactions import Batch
from messaging.store.types import Markup, MessageGone, ParentInvalid, StoredMessage, TooManyReactions

PostOutcome = tuple[StoredMessage, bool, StoredMessage | None]  # (message, created, updated parent)


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
    after_commit: Callable[[PostOutcome], None] | None = None,
) -> PostOutcome:
    """Store a post. Returns (message, created, updated parent); `after_commit` gets the same once
    the batch has committed, in version order with the batch's other changes (group_commit.Change).

    With a `client_id` already used by this author in this room, returns the first message and
    `created=False`: one posted in the same batch is found there, an older one by the unique index
    (the insert fails, the transaction and its counter increment are rolled back, and the change
    is run again alone, which ends here).
    """
    now = bson_time(now)
    parent_oid = parse_message_id(parent_id) if parent_id is not None else None
    if parent_id is not None and parent_oid is None:
        raise ParentInvalid(parent_id)
    key = idem_key(client_id) if client_id is not None else None

    def apply(batch: Batch) -> PostOutcome:
        if key is not None:
            twin = batch.post_with_key(room_id, author_id, key)
            if twin is not None:
                return to_message(twin), False, None
        parent = None
        if parent_oid is not None:
            parent = batch.message(parent_oid, room_id)
            if parent is None or parent["deleted"] or parent.get("parent_id") is not None:
                raise ParentInvalid(parent_id)
        allocated = batch.allocate(room_id, posts=1, changes=2 if parent is not None else 1)
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
            "idem_key": key if key is not None else f"s:{oid}",
            "reactions": [],
            "attachments": attachments or [],
        }
        batch.insert(doc)
        stored = to_message(doc)
        if parent is None:
            return stored, True, None
        # The reply took the version before, with the same stamp.
        after = batch.set(
            parent["_id"],
            {
                "reply_count": int(parent.get("reply_count", 0)) + 1,
                "last_reply_at": now,
                "version": version,
                "at": allocated.stamp,
                "prior_at": allocated.stamp,
            },
        )
        return stored, True, to_message(after)

    try:
        return run_change(Change({room_id}, {parent_oid} if parent_oid is not None else set(), apply, after_commit))
    except DuplicateKeyError:
        if client_id is None:
            raise
        existing = connection.messages().find_one({"room_id": room_id, "author_id": author_id, "idem_key": key})
        if existing is None:
            raise
        return to_message(existing), False, None


Announce = Callable[[StoredMessage | None], None]


def _change_message(
    room_id: int,
    message_id: str,
    change: Callable[[Batch, dict[str, Any]], dict[str, Any] | None],
    after_commit: Announce | None,
) -> StoredMessage | None:
    """Apply `change(batch, current_doc)`; it returns the fields to set, or None for a no-op.
    `after_commit` gets the result once it is durable (as insert_message's).

    The version is only allocated (and the message only rewritten) when there is a real change.
    """
    oid = parse_message_id(message_id)
    if oid is None:
        raise MessageGone(message_id)

    def apply(batch: Batch) -> StoredMessage | None:
        current = batch.message(oid, room_id)
        if current is None or current["deleted"]:
            raise MessageGone(message_id)
        fields = change(batch, current)
        if fields is None:
            return None
        allocated = batch.allocate(room_id, posts=0, changes=1)
        fields.update(version=allocated.version, at=allocated.stamp, prior_at=allocated.prior_stamp)
        return to_message(batch.set(oid, fields))

    return run_change(Change({room_id}, {oid}, apply, after_commit))


def edit_message(
    *,
    room_id: int,
    message_id: str,
    body: str,
    rendered: Markup,
    now: datetime,
    after_commit: Announce | None = None,
) -> StoredMessage | None:
    """Replace the body, keeping the previous one as a revision. None if unchanged."""
    now = bson_time(now)

    def change(batch: Batch, current: dict[str, Any]) -> dict[str, Any] | None:
        if current["body"] == body:
            return None
        batch.add_revision(
            {
                "message_id": current["_id"],
                "room_id": room_id,
                "body": current["body"],
                "written_at": current["edited_at"] or current["created_at"],
                "replaced_at": now,
            }
        )
        return {"body": body, "edited_at": now, **markup_fields(rendered)}

    return _change_message(room_id, message_id, change, after_commit)


def set_reaction(
    *,
    room_id: int,
    message_id: str,
    emoji: str,
    user_id: int,
    present: bool,
    max_distinct: int,
    after_commit: Announce | None = None,
) -> StoredMessage | None:
    """Add or take back one user's reaction. None when nothing changed (reacting twice).

    A new emoji beyond `max_distinct` different ones on the message is refused (TooManyReactions),
    checked inside the transaction so two concurrent reactions cannot both pass the limit.
    """
    pair = {"emoji": emoji, "user_id": user_id}

    def change(batch: Batch, current: dict[str, Any]) -> dict[str, Any] | None:
        reactions = [{"emoji": r["emoji"], "user_id": r["user_id"]} for r in current.get("reactions", [])]
        has_it = pair in reactions
        if has_it == present:
            return None
        distinct = {r["emoji"] for r in reactions}
        if present and emoji not in distinct and len(distinct) >= max_distinct:
            raise TooManyReactions(message_id)
        return {"reactions": [*reactions, pair] if present else [r for r in reactions if r != pair]}

    return _change_message(room_id, message_id, change, after_commit)


def delete_message(
    *, room_id: int, message_id: str, now: datetime, after_commit: Announce | None = None
) -> StoredMessage | None:
    """Leave a tombstone so `seq` keeps no holes; the revisions go with the body."""
    now = bson_time(now)

    def change(batch: Batch, current: dict[str, Any]) -> dict[str, Any] | None:
        batch.drop_revisions(current["_id"])
        return {
            "body": "",
            "html": "",
            "has_link": False,
            "mentions": [],
            "mentions_room": False,
            "deleted": True,
            "deleted_at": now,
            "reactions": [],
            "attachments": [],
        }

    return _change_message(room_id, message_id, change, after_commit)
