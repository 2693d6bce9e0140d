"""One MongoDB transaction per change to a room, and the counters it allocates.

Ordering guarantee (docs/websocket.md): every change to a room's messages runs in one
multi-document transaction that first increments the room's counter document (`seq` for posts,
`version` for every change). Two transactions on the same room both write that document, so the
second one conflicts and retries until the first has committed: versions become visible in the
order they were allocated. A reader that has seen version V can never later find a smaller
version appear. A per-process lock per room keeps those conflicts (and their retries) to
cross-process races.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError, ExecutionTimeout, PyMongoError, ServerSelectionTimeoutError

from messaging.store import connection

T = TypeVar("T")

TRANSACTION_DEADLINE_S = 10.0
# A change commits within this long of its stamp (or not at all): the user stream's cursor
# margin (STREAM_CURSOR_MARGIN_SECONDS) must exceed it plus the clock skew between processes.
STAMP_COMMIT_LIMIT_S = 20.0

# Striped per-room locks: bounded memory whatever the number of rooms.
_room_locks = [threading.Lock() for _ in range(256)]


class CounterMissing(Exception):
    """The room has never been written to: its counter document does not exist yet."""


def _run_room_transaction(room_id: int, work: Callable[[ClientSession], T]) -> T:
    """Run `work` in a transaction, retrying transient conflicts until a deadline.

    Unlike `with_transaction`, the deadline is short: a server that is down answers 503
    in seconds instead of two minutes of retries.
    """
    database = connection.db()
    deadline = time.monotonic() + TRANSACTION_DEADLINE_S
    attempt = 0
    with _room_locks[zlib.crc32(str(room_id).encode()) % len(_room_locks)]:
        while True:
            attempt += 1
            with database.client.start_session() as session:
                try:
                    started = time.monotonic()
                    session.start_transaction(max_commit_time_ms=int(TRANSACTION_DEADLINE_S * 1000))
                    result = work(session)
                    if time.monotonic() - started > STAMP_COMMIT_LIMIT_S:
                        raise ExecutionTimeout("the change took too long to commit in time for its stamp")
                    _commit(session, deadline)
                    return result
                except PyMongoError as exc:
                    if session.in_transaction:
                        with contextlib.suppress(PyMongoError):
                            session.abort_transaction()
                    if isinstance(exc, ServerSelectionTimeoutError):
                        # No server answered for MONGODB_TIMEOUT_MS: it is down, and retrying until the
                        # deadline would only make the caller wait longer for the same 503.
                        raise
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


def allocate(session: ClientSession, room_id: int, *, posts: int, changes: int) -> Allocation:
    """Advance the room's counters; returns the new high-water marks and the change's stamp."""
    now_ms = int(time.time() * 1000)
    before = connection.counters().find_one_and_update(
        {"_id": room_id},
        {"$inc": {"seq": posts, "version": changes}, "$max": {"at": now_ms}},
        return_document=ReturnDocument.BEFORE,
        session=session,
    )
    if before is None:
        raise CounterMissing
    prior = int(before.get("at", 0))
    return Allocation(
        seq=int(before["seq"]) + posts,
        version=int(before["version"]) + changes,
        stamp=max(prior, now_ms),
        prior_stamp=prior,
    )


def _ensure_counter(room_id: int) -> None:
    with contextlib.suppress(DuplicateKeyError):  # another process created it first
        connection.counters().update_one({"_id": room_id}, {"$setOnInsert": {"seq": 0, "version": 0}}, upsert=True)


def in_room_transaction(room_id: int, work: Callable[[ClientSession], T]) -> T:
    """Run `work` in the room's transaction; the counter document is created outside it, once."""
    try:
        return _run_room_transaction(room_id, work)
    except CounterMissing:
        _ensure_counter(room_id)
        return _run_room_transaction(room_id, work)
