"""One MongoDB transaction for a batch of changes to rooms' messages, and the counters it allocates.

Ordering guarantee (docs/websocket.md): every change to a room's messages runs in a
multi-document transaction that advances the room's counter document (`seq` for posts, `version`
for every change). A batch reads each room's counter once and writes it back with a
compare-and-set on the `version` it read: a batch of another process that committed in between
makes the write match nothing (or the server reports a write conflict), and the whole batch is run
again from fresh reads. So versions become visible in the order they were allocated: a reader that
has seen version V can never later find a smaller version appear.

`Batch` is the transaction's view. It reads the counters and the messages the changes name in
one query each, hands out `seq`/`version`/stamps in memory, keeps every write in memory, and
`flush` sends them as one command per kind (counters, new messages, changed messages, revisions)
just before the commit, so a batch of N changes costs a handful of round trips and one disk flush
instead of four round trips and one flush each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.client_session import ClientSession
from pymongo.errors import BulkWriteError, PyMongoError

from messaging.store import connection

DUPLICATE_KEY = 11000


class CountersMissing(Exception):
    """Rooms never written to: their counter documents do not exist yet."""

    def __init__(self, room_ids: set[int]) -> None:
        super().__init__(sorted(room_ids))
        self.room_ids = room_ids


class CounterMoved(PyMongoError):
    """Another process advanced a room's counter since this batch read it: run the batch again."""

    def __init__(self) -> None:
        super().__init__("a room counter changed under the batch")
        self._error_labels = {"TransientTransactionError"}


@dataclass(frozen=True)
class Allocation:
    """What one change's counter increment handed out.

    `stamp` is the change's time in milliseconds, never below the room's previous stamp, so a
    room's stamps rise with its versions; `prior_stamp` is the stamp of the room's change just
    before (0 for none). The user stream's cursor rests on both (docs/websocket.md).
    """

    seq: int
    version: int
    stamp: int
    prior_stamp: int


@dataclass
class _Counter:
    read_version: int
    seq: int
    version: int
    at: int


class Batch:
    """The changes of one transaction: reads once, allocates in memory, writes at `flush`."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self._counters: dict[int, _Counter] = {}
        self._docs: dict[ObjectId, dict[str, Any]] = {}
        self._new: dict[ObjectId, dict[str, Any]] = {}  # inserted by this batch (also in _docs)
        self._changed: dict[ObjectId, dict[str, Any]] = {}  # $set of existing documents, merged
        self._idem: dict[tuple[int, int, str], ObjectId] = {}
        self._revisions: list[dict[str, Any]] = []
        self._revisions_dropped: set[ObjectId] = set()

    def preload(self, room_ids: set[int], message_ids: set[ObjectId]) -> None:
        """Read every counter and message the batch's changes name: one query each."""
        found = connection.counters().find({"_id": {"$in": sorted(room_ids)}}, session=self.session)
        for doc in found:
            at = int(doc.get("at", 0))
            self._counters[int(doc["_id"])] = _Counter(int(doc["version"]), int(doc["seq"]), int(doc["version"]), at)
        missing = room_ids - self._counters.keys()
        if missing:
            raise CountersMissing(missing)
        if message_ids:
            for doc in connection.messages().find({"_id": {"$in": list(message_ids)}}, session=self.session):
                self._docs[doc["_id"]] = doc

    def allocate(self, room_id: int, *, posts: int, changes: int) -> Allocation:
        counter = self._counters[room_id]
        prior = counter.at
        counter.seq += posts
        counter.version += changes
        counter.at = max(prior, int(time.time() * 1000))
        return Allocation(seq=counter.seq, version=counter.version, stamp=counter.at, prior_stamp=prior)

    def message(self, oid: ObjectId, room_id: int) -> dict[str, Any] | None:
        """The message as this batch sees it (its own changes included), if it is in that room."""
        doc = self._docs.get(oid)
        if doc is None:
            doc = connection.messages().find_one({"_id": oid}, session=self.session)
            if doc is None:
                return None
            self._docs[oid] = doc
        return doc if doc["room_id"] == room_id else None

    def post_with_key(self, room_id: int, author_id: int, key: str) -> dict[str, Any] | None:
        """A post of this batch with that idempotency key (the store's unique index finds older ones)."""
        oid = self._idem.get((room_id, author_id, key))
        return self._docs[oid] if oid is not None else None

    def insert(self, doc: dict[str, Any]) -> None:
        self._docs[doc["_id"]] = self._new[doc["_id"]] = doc
        self._idem[(doc["room_id"], doc["author_id"], doc["idem_key"])] = doc["_id"]

    def set(self, oid: ObjectId, fields: dict[str, Any]) -> dict[str, Any]:
        """Set fields of a message read or inserted by this batch; returns the document after."""
        doc = self._docs[oid]
        doc.update(fields)
        if oid not in self._new:
            self._changed.setdefault(oid, {}).update(fields)
        return doc

    def add_revision(self, revision: dict[str, Any]) -> None:
        self._revisions.append(revision)

    def drop_revisions(self, message_oid: ObjectId) -> None:
        self._revisions = [r for r in self._revisions if r["message_id"] != message_oid]
        self._revisions_dropped.add(message_oid)

    def flush(self) -> None:
        """Write everything, counters first (a moved one aborts the batch before anything else)."""
        session = self.session
        moved = [
            UpdateOne(
                {"_id": room_id, "version": c.read_version},
                {"$set": {"seq": c.seq, "version": c.version, "at": c.at}},
            )
            for room_id, c in self._counters.items()
            if c.version != c.read_version
        ]
        if moved and connection.counters().bulk_write(moved, ordered=False, session=session).matched_count != len(
            moved
        ):
            raise CounterMoved
        messages = connection.messages()
        new = list(self._new.values())
        if len(new) == 1:  # a lone insert keeps DuplicateKeyError for a repeated client_id
            messages.insert_one(new[0], session=session)
        elif new:
            messages.insert_many(new, ordered=True, session=session)
        if self._changed:
            messages.bulk_write(
                [UpdateOne({"_id": oid}, {"$set": fields}) for oid, fields in self._changed.items()],
                ordered=True,
                session=session,
            )
        revisions = connection.revisions()
        if self._revisions_dropped:
            revisions.delete_many({"message_id": {"$in": list(self._revisions_dropped)}}, session=session)
        if self._revisions:
            revisions.insert_many(self._revisions, ordered=True, session=session)


def ensure_counters(room_ids: set[int]) -> None:
    """Create missing counter documents, outside any transaction (upserts: a racing process is fine)."""
    try:
        connection.counters().bulk_write(
            [UpdateOne({"_id": r}, {"$setOnInsert": {"seq": 0, "version": 0}}, upsert=True) for r in sorted(room_ids)],
            ordered=False,
        )
    except BulkWriteError as exc:  # another process created some first
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
