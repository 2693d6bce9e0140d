"""Message reads. Only bounded index ranges and exact lookups are queried.

SecantusDB, like any MongoDB, answers those in 1-2 ms; sort+limit over a whole room is what it,
and a busy production cluster, does slowly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from messaging.store import connection
from messaging.store.documents import idem_key, parse_message_id, to_message, unread_filter
from messaging.store.types import Revision, RoomHead, StoredMessage


def get_message(message_id: str) -> StoredMessage | None:
    oid = parse_message_id(message_id)
    if oid is None:
        return None
    doc = connection.messages().find_one({"_id": oid})
    return to_message(doc) if doc else None


def message_by_client_id(room_id: int, author_id: int, client_id: str) -> StoredMessage | None:
    """An author's post of this client_id in the room (the idempotency index answers it)."""
    doc = connection.messages().find_one({"room_id": room_id, "author_id": author_id, "idem_key": idem_key(client_id)})
    return to_message(doc) if doc else None


def get_messages(message_ids: list[str]) -> list[StoredMessage]:
    """The messages that exist among the ids, in the order asked (one `$in` on `_id`)."""
    oids = [oid for oid in (parse_message_id(m) for m in message_ids) if oid is not None]
    if not oids:
        return []
    found = {str(doc["_id"]): to_message(doc) for doc in connection.messages().find({"_id": {"$in": oids}})}
    return [found[m] for m in message_ids if m in found]


def messages_by_seq(room_id: int, first: int, last: int) -> list[StoredMessage]:
    """Messages with first <= seq <= last, ascending: a bounded index range."""
    if last < first:
        return []
    # Sorted here, not by the server: the index gives the range, and SecantusDB's sort of even
    # 50 documents costs more (0.3 ms) than Python's.
    cursor = connection.messages().find({"room_id": room_id, "seq": {"$gte": first, "$lte": last}})
    return sorted((to_message(doc) for doc in cursor), key=attrgetter("seq"))


def messages_by_version(room_id: int, after: int, upto: int) -> list[StoredMessage]:
    """Messages whose latest change has after < version <= upto, ascending by version."""
    if upto <= after:
        return []
    cursor = connection.messages().find({"room_id": room_id, "version": {"$gt": after, "$lte": upto}})
    return sorted((to_message(doc) for doc in cursor), key=attrgetter("version"))


def thread_replies(parent_id: str, after_seq: int, limit: int) -> list[StoredMessage]:
    oid = parse_message_id(parent_id)
    if oid is None:
        return []
    cursor = (
        connection.messages().find({"parent_id": oid, "seq": {"$gt": after_seq}}).sort("seq", ASCENDING).limit(limit)
    )
    return [to_message(doc) for doc in cursor]


def room_heads(room_ids: Iterable[int]) -> dict[int, RoomHead]:
    ids = list(room_ids)
    if not ids:
        return {}
    return {int(doc["_id"]): _head(doc) for doc in connection.counters().find({"_id": {"$in": ids}})}


def head_version(room_id: int) -> int:
    """The room's latest version (0 before its first change)."""
    head = room_heads([room_id]).get(room_id)
    return head.version if head is not None else 0


def head_version_if_reachable(room_id: int) -> int | None:
    """As head_version, or None while MongoDB cannot be reached (for callers that can do without)."""
    try:
        return head_version(room_id)
    except PyMongoError:
        return None


def room_heads_if_reachable(room_ids: Iterable[int]) -> dict[int, RoomHead] | None:
    """As room_heads, or None while MongoDB cannot be reached."""
    try:
        return room_heads(room_ids)
    except PyMongoError:
        return None


def _head(doc: dict[str, Any]) -> RoomHead:
    return RoomHead(last_seq=int(doc["seq"]), version=int(doc["version"]), stamp=int(doc.get("at", 0)))


def rooms_changed_since(stamp: int, limit: int) -> dict[int, RoomHead] | None:
    """The heads of every room whose latest change is stamped at or after `stamp` (one range of the
    counters' stamp index), or None when more than `limit` rooms did: the caller then asks by room."""
    cursor = connection.counters().find({"at": {"$gte": stamp}}).limit(limit + 1)
    heads = {int(doc["_id"]): _head(doc) for doc in cursor}
    return None if len(heads) > limit else heads


def first_version_stamped_since(room_id: int, stamp: int) -> int | None:
    """The lowest version among the room's messages whose latest change is stamped at or after
    `stamp` (a range of the room_stamp index, versions only): stamps rise with versions in a room,
    so every change since `stamp` is at or above it, and none before it is."""
    cursor = connection.messages().find({"room_id": room_id, "at": {"$gte": stamp}}, {"version": 1, "_id": 0})
    return min((int(doc["version"]) for doc in cursor), default=None)


def count_unread(room_id: int, after_seq: int, last_seq: int, reader_id: int, cap: int) -> int:
    """Others' live messages among the newest `cap` after the read marker: a bounded `seq` range.

    Filtering on `author_id != reader` in the query would need `$ne`, which SecantusDB plans as a
    collection scan, and a hint makes it walk the whole index: so the range is read (two small
    fields a message) and counted here.
    """
    first = max(after_seq, last_seq - cap) + 1
    if last_seq < first:
        return 0
    cursor = connection.messages().find(
        unread_filter(room_id, first, last_seq), {"author_id": 1, "deleted": 1, "_id": 0}
    )
    return sum(1 for doc in cursor if doc["author_id"] != reader_id and not doc.get("deleted"))


def revisions_of(message_id: str, *, after: str | None = None, limit: int = 50) -> list[Revision] | None:
    """Up to `limit` of the message's earlier bodies, oldest first, after the revision whose `key`
    is `after`; None when `after` is not a key. One range of the (message_id, replaced_at) index."""
    oid = parse_message_id(message_id)
    if oid is None:
        return []
    query: dict[str, Any] = {"message_id": oid}
    if after is not None:
        position = _revision_position(after)
        if position is None:
            return None
        replaced_ms, revision_id = position
        replaced_at = datetime.fromtimestamp(replaced_ms / 1000, UTC)
        # Two edits in one millisecond are told apart by their ids.
        query["$or"] = [
            {"replaced_at": {"$gt": replaced_at}},
            {"replaced_at": replaced_at, "_id": {"$gt": revision_id}},
        ]
    cursor = connection.revisions().find(query).sort([("replaced_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
    return [
        Revision(
            body=doc["body"],
            written_at=doc["written_at"],
            replaced_at=doc["replaced_at"],
            key=f"{_millis(doc['replaced_at'])}-{doc['_id']}",
        )
        for doc in cursor
    ]


def _millis(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000 + 0.5)


def _revision_position(key: str) -> tuple[int, ObjectId] | None:
    millis, _, raw_id = key.partition("-")
    if not (millis.isascii() and millis.isdigit() and len(millis) <= 15 and ObjectId.is_valid(raw_id)):
        return None
    return int(millis), ObjectId(raw_id)
