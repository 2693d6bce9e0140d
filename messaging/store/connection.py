"""The process's MongoDB client, its collections and their indexes.

The client is created lazily, once per process (pymongo clients are not fork-safe), and the
indexes with it. Every write, transactions' commits included, asks for `w=majority, j=true`
(MONGODB_WRITE_CONCERN, MONGODB_JOURNAL): an ack means the write is on disk on a majority of the
replica set, so a crash right after it loses nothing (the embedded SecantusDB runs with
`--sync-on-commit` for the same reason). `generation()` changes whenever the store is pointed elsewhere or emptied, so
copies of its data (messaging.page_cache) know they are void.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

_client_lock = threading.Lock()
_client: MongoClient[dict[str, Any]] | None = None
_indexes_ready = False
_generation = 0


def db() -> Database[dict[str, Any]]:
    global _client, _indexes_ready
    if _client is None or not _indexes_ready:
        with _client_lock:
            if _client is None:
                _client = MongoClient(
                    settings.MONGODB_URL,
                    tz_aware=True,
                    serverSelectionTimeoutMS=settings.MONGODB_TIMEOUT_MS,
                    connectTimeoutMS=settings.MONGODB_TIMEOUT_MS,
                    appname="chatserver",
                    w=settings.MONGODB_WRITE_CONCERN,
                    journal=settings.MONGODB_JOURNAL,
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


def messages() -> Collection[dict[str, Any]]:
    return db()["messages"]


def counters() -> Collection[dict[str, Any]]:
    return db()["room_counters"]


def revisions() -> Collection[dict[str, Any]]:
    # The collection keeps its first name: renaming it would orphan every deployment's data.
    return db()["message_edits"]


def _create_indexes(database: Database[dict[str, Any]]) -> None:
    collection = database["messages"]
    collection.create_index([("room_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="room_seq")
    collection.create_index([("room_id", ASCENDING), ("version", ASCENDING)], unique=True, name="room_version")
    # Idempotency lives in storage, not in a cache: one message per (room, author, client_id).
    # Every message has an `idem_key` (the client's id, or a random server one) so the unique
    # index needs no partial filter: SecantusDB never plans partial indexes (a full scan).
    collection.create_index(
        [("room_id", ASCENDING), ("author_id", ASCENDING), ("idem_key", ASCENDING)],
        unique=True,
        name="room_author_idem_key",
    )
    collection.create_index([("parent_id", ASCENDING), ("seq", ASCENDING)], name="thread_seq")
    # The user stream's reads by time: a room's changes since a stamp, and the rooms changed since one.
    collection.create_index([("room_id", ASCENDING), ("at", ASCENDING)], name="room_stamp")
    database["room_counters"].create_index([("at", ASCENDING)], name="counter_stamp")
    database["message_edits"].create_index(
        [("message_id", ASCENDING), ("replaced_at", ASCENDING)], name="message_edits"
    )


def ensure_indexes() -> None:
    db()


def ping() -> None:
    db().command("ping")


def delete_everything() -> None:
    """Tests only: empty every collection, keep the indexes."""
    global _generation
    database = db()
    for name in ("messages", "room_counters", "message_edits"):
        database[name].delete_many({})
    _generation += 1
