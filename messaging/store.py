"""The only module that talks to MongoDB. It returns dataclasses, never documents or ObjectIds.

Ordering guarantee (DESIGN.md): every change to a room's messages runs in one multi-document
transaction that first increments the room's counter document (`seq` for posts, `version` for
every change). Two transactions on the same room both write that document, so the second one
conflicts and retries until the first has committed: versions become visible in the order they
were allocated. A reader that has seen version V can never later find a smaller version appear.
A per-process lock per room keeps those conflicts (and their retries) to cross-process races.

Only bounded index ranges are queried (SecantusDB, like any MongoDB, answers those in 1-2 ms;
sort+limit over a whole room is what it, and a busy production cluster, does slowly).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from django.conf import settings
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from messaging.rendering import RenderedBody, plain_html

T = TypeVar("T")

TRANSACTION_DEADLINE_S = 10.0


# --- what the store hands out -------------------------------------------------------------------


@dataclass(frozen=True)
class ReactionSummary:
    emoji: str
    user_ids: list[int]


@dataclass(frozen=True)
class StoredMessage:
    id: str
    room_id: int
    seq: int
    version: int
    author_id: int
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    parent_id: str | None
    reply_count: int
    last_reply_at: datetime | None
    client_id: str | None
    created_version: int  # the room version of the post itself: tells `message.new` from `message.updated`
    html: str = ""
    has_link: bool = False
    mentioned_user_ids: list[int] = field(default_factory=list)
    mentions_room: bool = False
    reactions: list[ReactionSummary] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)  # upload ids (PostgreSQL holds the files' facts)


@dataclass(frozen=True)
class EditRecord:
    body: str
    written_at: datetime
    replaced_at: datetime


@dataclass(frozen=True)
class RoomHead:
    last_seq: int
    version: int


class StoreError(Exception):
    """A refusal decided by the stored state (the services turn it into an API error)."""


class MessageGone(StoreError):
    """The message does not exist, is in another room, or was deleted meanwhile."""


class ParentInvalid(StoreError):
    """A reply names a parent that is missing, in another room, deleted or itself a reply."""


# --- connection -------------------------------------------------------------------------------

_client_lock = threading.Lock()
_client: MongoClient[dict[str, Any]] | None = None
_indexes_ready = False
# Bumped whenever the store is pointed elsewhere or emptied: copies of its data (history_cache) are void.
_generation = 0
# Striped per-room locks: bounded memory whatever the number of rooms.
_room_locks = [threading.Lock() for _ in range(256)]


def _db() -> Database[dict[str, Any]]:
    global _client, _indexes_ready
    if _client is None or not _indexes_ready:
        with _client_lock:
            if _client is None:
                # Created lazily, once per process: pymongo clients are not fork-safe.
                _client = MongoClient(
                    settings.MONGODB_URL,
                    tz_aware=True,
                    serverSelectionTimeoutMS=settings.MONGODB_TIMEOUT_MS,
                    connectTimeoutMS=settings.MONGODB_TIMEOUT_MS,
                    appname="chatserver",
                )
            if not _indexes_ready:
                _create_indexes(_client[settings.MONGODB_NAME])
                _indexes_ready = True
    return _client[settings.MONGODB_NAME]


def close() -> None:
    """Drop the process's client (tests point the store at another server with this)."""
    global _client, _indexes_ready, _generation
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None
        _indexes_ready = False
        _generation += 1


def generation() -> int:
    return _generation


def _messages() -> Collection[dict[str, Any]]:
    return _db()["messages"]


def _counters() -> Collection[dict[str, Any]]:
    return _db()["room_counters"]


def _edits() -> Collection[dict[str, Any]]:
    return _db()["message_edits"]


def _create_indexes(db: Database[dict[str, Any]]) -> None:
    messages = db["messages"]
    messages.create_index([("room_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="room_seq")
    messages.create_index([("room_id", ASCENDING), ("version", ASCENDING)], unique=True, name="room_version")
    # Idempotency lives in storage, not in a cache: one message per (room, author, client_id).
    # Every message has an `idem_key` (the client's id, or a random server one) so the unique
    # index needs no partial filter: SecantusDB never plans partial indexes (a full scan).
    messages.create_index(
        [("room_id", ASCENDING), ("author_id", ASCENDING), ("idem_key", ASCENDING)],
        unique=True,
        name="room_author_idem_key",
    )
    messages.create_index([("parent_id", ASCENDING), ("seq", ASCENDING)], name="thread_seq")
    db["message_edits"].create_index([("message_id", ASCENDING), ("replaced_at", ASCENDING)], name="message_edits")


def ensure_indexes() -> None:
    _db()


def ping() -> None:
    _db().command("ping")


def delete_everything() -> None:
    """Tests only: empty every collection, keep the indexes."""
    global _generation
    db = _db()
    for name in ("messages", "room_counters", "message_edits"):
        db[name].delete_many({})
    _generation += 1


def parse_message_id(raw: Any) -> ObjectId | None:
    try:
        return ObjectId(str(raw))
    except (InvalidId, TypeError):
        return None


# --- transactions -----------------------------------------------------------------------------


def _run_room_transaction(room_id: int, work: Callable[[ClientSession], T]) -> T:
    """Run `work` in a transaction, retrying transient conflicts until a deadline.

    Unlike `with_transaction`, the deadline is short: a server that is down answers 503
    in seconds instead of two minutes of retries.
    """
    db = _db()
    deadline = time.monotonic() + TRANSACTION_DEADLINE_S
    attempt = 0
    with _room_locks[zlib.crc32(str(room_id).encode()) % len(_room_locks)]:
        while True:
            attempt += 1
            with db.client.start_session() as session:
                try:
                    session.start_transaction()
                    result = work(session)
                    _commit(session, deadline)
                    return result
                except PyMongoError as exc:
                    if session.in_transaction:
                        with contextlib.suppress(PyMongoError):
                            session.abort_transaction()
                    if exc.has_error_label("TransientTransactionError") and time.monotonic() < deadline:
                        time.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))
                        continue
                    raise


def _commit(session: ClientSession, deadline: float) -> None:
    while True:
        try:
            session.commit_transaction()
            return
        except PyMongoError as exc:
            # The commit may have happened: retrying the commit (never the work) is safe.
            if exc.has_error_label("UnknownTransactionCommitResult") and time.monotonic() < deadline:
                continue
            raise


def _allocate(session: ClientSession, room_id: int, *, posts: int, changes: int) -> tuple[int, int]:
    """Advance the room's counters; returns the new (seq, version) high-water marks."""
    counter = _counters().find_one_and_update(
        {"_id": room_id},
        {"$inc": {"seq": posts, "version": changes}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if counter is None:
        raise _CounterMissing
    return int(counter["seq"]), int(counter["version"])


class _CounterMissing(Exception):
    pass


def _ensure_counter(room_id: int) -> None:
    with contextlib.suppress(DuplicateKeyError):  # another process created it first
        _counters().update_one({"_id": room_id}, {"$setOnInsert": {"seq": 0, "version": 0}}, upsert=True)


def _with_counter(room_id: int, work: Callable[[ClientSession], T]) -> T:
    """The room's counter document is created outside the transaction, once, on first write."""
    try:
        return _run_room_transaction(room_id, work)
    except _CounterMissing:
        _ensure_counter(room_id)
        return _run_room_transaction(room_id, work)


# --- writes -----------------------------------------------------------------------------------


def _bson_time(moment: datetime) -> datetime:
    """BSON keeps milliseconds: truncate first, so a write's answer equals what a read returns."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def insert_message(
    *,
    room_id: int,
    author_id: int,
    body: str,
    rendered: RenderedBody,
    now: datetime,
    parent_id: str | None = None,
    client_id: str | None = None,
    attachments: list[str] | None = None,
) -> tuple[StoredMessage, bool, StoredMessage | None]:
    """Store a post. Returns (message, created, updated parent).

    With a `client_id` already used by this author in this room, returns the first message and
    `created=False`; the unique index settles a race between two processes.
    """
    now = _bson_time(now)
    parent_oid = parse_message_id(parent_id) if parent_id is not None else None
    if parent_id is not None and parent_oid is None:
        raise ParentInvalid(parent_id)

    def work(session: ClientSession) -> tuple[StoredMessage, bool, StoredMessage | None]:
        # A repeated client_id is found by the unique index: the insert below fails, the
        # transaction (and its counter increment) is rolled back, and the first message is read.
        parent = None
        if parent_oid is not None:
            parent = _messages().find_one({"_id": parent_oid, "room_id": room_id}, session=session)
            if parent is None or parent["deleted"] or parent.get("parent_id") is not None:
                raise ParentInvalid(parent_id)
        seq, version = _allocate(session, room_id, posts=1, changes=2 if parent is not None else 1)
        oid = ObjectId()
        doc: dict[str, Any] = {
            "_id": oid,
            "room_id": room_id,
            "seq": seq,
            "version": version - 1 if parent is not None else version,
            "created_version": version - 1 if parent is not None else version,
            "author_id": author_id,
            "body": body,
            **_rendered_fields(rendered),
            "created_at": now,
            "edited_at": None,
            "deleted": False,
            "parent_id": parent_oid,
            "reply_count": 0,
            "last_reply_at": None,
            "client_id": client_id,
            "idem_key": _idem_key(client_id) if client_id is not None else f"s:{oid}",
            "reactions": [],
            "attachments": attachments or [],
        }
        _messages().insert_one(doc, session=session)
        updated_parent = None
        if parent is not None:
            updated_parent = _messages().find_one_and_update(
                {"_id": parent_oid},
                {"$inc": {"reply_count": 1}, "$set": {"last_reply_at": now, "version": version}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
        return _to_message(doc), True, _to_message(updated_parent) if updated_parent else None

    try:
        return _with_counter(room_id, work)
    except DuplicateKeyError:
        if client_id is None:
            raise
        existing = _messages().find_one({"room_id": room_id, "author_id": author_id, "idem_key": _idem_key(client_id)})
        if existing is None:
            raise
        return _to_message(existing), False, None


def _rendered_fields(rendered: RenderedBody) -> dict[str, Any]:
    return {
        "html": rendered.html,
        "has_link": rendered.has_link,
        "mentions": rendered.mentioned_user_ids,
        "mentions_room": rendered.mentions_room,
    }


def _idem_key(client_id: str) -> str:
    return f"c:{client_id}"


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

    def work(session: ClientSession) -> StoredMessage | None:
        current = _messages().find_one({"_id": oid, "room_id": room_id}, session=session)
        if current is None or current["deleted"]:
            raise MessageGone(message_id)
        update = change(session, current)
        if update is None:
            return None
        _, version = _allocate(session, room_id, posts=0, changes=1)
        update.setdefault("$set", {})["version"] = version
        after = _messages().find_one_and_update(
            {"_id": oid}, update, return_document=ReturnDocument.AFTER, session=session
        )
        return _to_message(after) if after else None

    return _with_counter(room_id, work)


def edit_message(
    *, room_id: int, message_id: str, body: str, rendered: RenderedBody, now: datetime
) -> StoredMessage | None:
    """Replace the body, keeping the previous one in the edit history. None if unchanged."""
    now = _bson_time(now)

    def change(session: ClientSession, current: dict[str, Any]) -> dict[str, Any] | None:
        if current["body"] == body:
            return None
        _edits().insert_one(
            {
                "message_id": current["_id"],
                "room_id": room_id,
                "body": current["body"],
                "written_at": current["edited_at"] or current["created_at"],
                "replaced_at": now,
            },
            session=session,
        )
        return {"$set": {"body": body, "edited_at": now, **_rendered_fields(rendered)}}

    return _change_message(room_id, message_id, change)


def set_reaction(*, room_id: int, message_id: str, emoji: str, user_id: int, present: bool) -> StoredMessage | None:
    """Add or take back one user's reaction. None when nothing changed (reacting twice)."""
    pair = {"emoji": emoji, "user_id": user_id}

    def change(session: ClientSession, current: dict[str, Any]) -> dict[str, Any] | None:
        has_it = pair in current.get("reactions", [])
        if has_it == present:
            return None
        return {"$addToSet": {"reactions": pair}} if present else {"$pull": {"reactions": pair}}

    return _change_message(room_id, message_id, change)


def delete_message(*, room_id: int, message_id: str, now: datetime) -> StoredMessage | None:
    """Leave a tombstone so `seq` keeps no holes; the edit history goes with the body."""
    now = _bson_time(now)

    def change(session: ClientSession, current: dict[str, Any]) -> dict[str, Any] | None:
        _edits().delete_many({"message_id": current["_id"]}, session=session)
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


# --- reads ------------------------------------------------------------------------------------


def get_message(message_id: str) -> StoredMessage | None:
    oid = parse_message_id(message_id)
    if oid is None:
        return None
    doc = _messages().find_one({"_id": oid})
    return _to_message(doc) if doc else None


def get_messages(message_ids: list[str]) -> list[StoredMessage]:
    """The messages that exist among the ids, in the order asked (one `$in` on `_id`)."""
    oids = [oid for oid in (parse_message_id(m) for m in message_ids) if oid is not None]
    if not oids:
        return []
    found = {str(doc["_id"]): _to_message(doc) for doc in _messages().find({"_id": {"$in": oids}})}
    return [found[m] for m in message_ids if m in found]


def messages_by_seq(room_id: int, first: int, last: int) -> list[StoredMessage]:
    """Messages with first <= seq <= last, ascending: a bounded index range."""
    if last < first:
        return []
    # Sorted here, not by the server: the index gives the range, and SecantusDB's sort of even
    # 50 documents costs more (0.3 ms) than Python's.
    cursor = _messages().find({"room_id": room_id, "seq": {"$gte": first, "$lte": last}})
    return sorted((_to_message(doc) for doc in cursor), key=attrgetter("seq"))


def messages_by_version(room_id: int, after: int, upto: int) -> list[StoredMessage]:
    """Messages whose latest change has after < version <= upto, ascending by version."""
    if upto <= after:
        return []
    cursor = _messages().find({"room_id": room_id, "version": {"$gt": after, "$lte": upto}})
    return sorted((_to_message(doc) for doc in cursor), key=attrgetter("version"))


def thread_replies(parent_id: str, after_seq: int, limit: int) -> list[StoredMessage]:
    oid = parse_message_id(parent_id)
    if oid is None:
        return []
    cursor = _messages().find({"parent_id": oid, "seq": {"$gt": after_seq}}).sort("seq", ASCENDING).limit(limit)
    return [_to_message(doc) for doc in cursor]


def room_heads(room_ids: Iterable[int]) -> dict[int, RoomHead]:
    ids = list(room_ids)
    if not ids:
        return {}
    return {
        int(doc["_id"]): RoomHead(last_seq=int(doc["seq"]), version=int(doc["version"]))
        for doc in _counters().find({"_id": {"$in": ids}})
    }


def count_unread(room_id: int, after_seq: int, last_seq: int, reader_id: int, cap: int) -> int:
    """Others' live messages among the newest `cap` after the read marker: a bounded `seq` range.

    Filtering on `author_id != reader` in the query would need `$ne`, which SecantusDB plans as a
    collection scan, and a hint makes it walk the whole index: so the range is read (two small
    fields a message) and counted here.
    """
    first = max(after_seq, last_seq - cap) + 1
    if last_seq < first:
        return 0
    cursor = _messages().find(_unread_filter(room_id, first, last_seq), {"author_id": 1, "deleted": 1, "_id": 0})
    return sum(1 for doc in cursor if doc["author_id"] != reader_id and not doc.get("deleted"))


def _unread_filter(room_id: int, first: int, last: int) -> dict[str, Any]:
    return {"room_id": room_id, "seq": {"$gte": first, "$lte": last}}


def edit_history(message_id: str) -> list[EditRecord]:
    oid = parse_message_id(message_id)
    if oid is None:
        return []
    cursor = _edits().find({"message_id": oid}).sort("replaced_at", ASCENDING)
    return [
        EditRecord(body=doc["body"], written_at=doc["written_at"], replaced_at=doc["replaced_at"]) for doc in cursor
    ]


def query_plans() -> dict[str, str]:
    """The winning plan's stage of each hot query (a test proves none is a collection scan)."""
    messages = _messages()
    probes = {
        "history": messages.find({"room_id": 1, "seq": {"$gte": 1, "$lte": 50}}),
        "changes": messages.find({"room_id": 1, "version": {"$gt": 0, "$lte": 500}}),
        "idempotency": messages.find({"room_id": 1, "author_id": 1, "idem_key": _idem_key("x")}),
        "thread": messages.find({"parent_id": ObjectId(), "seq": {"$gt": 0}}).sort("seq", ASCENDING).limit(50),
        "by_id": messages.find({"_id": ObjectId()}),
        "edits": _edits().find({"message_id": ObjectId()}).sort("replaced_at", ASCENDING),
        "unread": messages.find(_unread_filter(1, 1, 1000), {"author_id": 1, "deleted": 1, "_id": 0}),
        "heads": _counters().find({"_id": {"$in": [1, 2]}}),
    }
    return {name: _plan_stages(cursor.explain()) for name, cursor in probes.items()}


def _plan_stages(explained: dict[str, Any]) -> str:
    stages: list[str] = []
    node: Any = explained.get("queryPlanner", {}).get("winningPlan", {})
    while isinstance(node, dict) and node:
        stages.append(str(node.get("stage", "?")))
        node = node.get("inputStage") or node.get("queryPlan") or {}
    return ">".join(stages)


def _to_message(doc: dict[str, Any]) -> StoredMessage:
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
        html=doc["html"] if "html" in doc else plain_html(doc["body"]),
        has_link=bool(doc.get("has_link", False)),
        mentioned_user_ids=[int(u) for u in doc.get("mentions", [])],
        mentions_room=bool(doc.get("mentions_room", False)),
        reactions=[ReactionSummary(emoji=e, user_ids=u) for e, u in grouped.items()],
        attachments=[a for a in doc.get("attachments", []) if isinstance(a, str)],
    )
