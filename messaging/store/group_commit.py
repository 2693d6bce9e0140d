"""Group commit: the changes this process makes at the same moment share one MongoDB transaction.

A writer submits its change and waits. A writer that finds no batch in flight leads: it takes
every change waiting (up to MAX_BATCH), runs them in one transaction (messaging.store.transactions.
Batch), commits once (with `w=majority, j=true` every commit is a disk flush: this is how
durability stays cheap), hands each writer its result, and passes the lead to the first writer
still waiting. At low load a batch holds one change and costs what one transaction did; under load
batches grow with the concurrency and the flushes per second stay about the same. No writer is
answered before the transaction holding its change has committed.

Each change fails alone: a refusal of its own (`StoreError`: a parent or message gone, too
many reactions) is raised before it writes anything, so the batch goes on without it. Anything
else that breaks the transaction (a repeated client_id that only the unique index catches, a
bug) aborts it, and its changes are then run one transaction each, as before group commit, so
that only the guilty one fails. A conflict with another process (its batch advanced a room's
counter first) runs the whole batch again from fresh reads, until TRANSACTION_DEADLINE_S.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bson import ObjectId
from pymongo.errors import ExecutionTimeout, PyMongoError, ServerSelectionTimeoutError

from core.metrics import STORE_BATCH_SIZE
from messaging.store import connection
from messaging.store.transactions import Batch, CountersMissing, ensure_counters
from messaging.store.types import StoreError

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 128
TRANSACTION_DEADLINE_S = 10.0
# A change commits within this long of its stamp (or not at all): the user stream's cursor
# margin (STREAM_CURSOR_MARGIN_SECONDS) must exceed it plus the clock skew between processes.
STAMP_COMMIT_LIMIT_S = 20.0


@dataclass
class Change(Generic[T]):
    """One writer's change: the rooms and messages it reads, and what it does in the batch.

    `after_commit(result)`, when given, runs once the batch has committed, on the batch leader's
    thread, in the order of the batch (the order of its versions), after the batch before's and
    before the batch after's: what a change announces goes out in the order it was stored. It
    must not write to the store (the next batch may be waiting for it); if it raises, the error
    is logged and the writer still gets its result (the change is durable).
    """

    room_ids: set[int]
    message_ids: set[ObjectId]
    apply: Callable[[Batch], T]
    after_commit: Callable[[T], None] | None = None


Scope = Callable[[], contextlib.AbstractContextManager[None]]
_after_commit_scope: Scope = contextlib.nullcontext


def announce_batches_within(scope: Scope) -> None:
    """What the leader runs a batch's after_commit calls in: realtime makes it the channel
    layer's `together()`, so that a batch's announcements are published in one round trip."""
    global _after_commit_scope
    _after_commit_scope = scope


@dataclass(eq=False)
class _Waiting:
    change: Change[Any]
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    finished: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._leading = False
        # Held from a batch's commit until its after_commit calls are done: the next batch may
        # commit meanwhile, but announces only after this one.
        self._announcing = threading.Lock()

    def run(self, change: Change[T]) -> T:
        waiting = _Waiting(change)
        with self._lock:
            self._queue.append(waiting)
            if not self._leading:
                self._leading = waiting.lead = True
        while not waiting.finished:
            if waiting.lead:
                self._lead_one_batch()
            else:
                waiting.woken.wait()
                waiting.woken.clear()
        if waiting.error is not None:
            raise waiting.error
        result: T = waiting.result
        return result

    def _lead_one_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            _commit_together(batch)
        finally:
            self._announcing.acquire()
            with self._lock:
                if self._queue:  # the next batch is led by the first writer still waiting
                    successor = self._queue[0]
                    successor.lead = True
                    successor.woken.set()
                else:
                    self._leading = False
            try:
                _announce_committed(batch)
            finally:
                self._announcing.release()
                for waiting in batch:
                    waiting.lead = False
                    waiting.finished = True
                    waiting.woken.set()


_committer = GroupCommitter()


def run_change(change: Change[T]) -> T:
    """Run a change in this process's next batch; returns once that batch has committed."""
    return _committer.run(change)


def _commit_together(batch: list[_Waiting]) -> None:
    """Give every writer of the batch its result or its error; raises nothing."""
    STORE_BATCH_SIZE.observe(len(batch))
    try:
        outcomes = _run_batch([w.change for w in batch])
    except Exception as exc:  # noqa: BLE001 - handed to the writers: a server error, or a bug in one change
        if len(batch) == 1 or isinstance(exc, ServerSelectionTimeoutError):
            for waiting in batch:
                waiting.error = exc
            return
        logger.info("a batch of %d changes failed (%r): running them one by one", len(batch), exc)
        for waiting in batch:
            _commit_together([waiting])
        return
    for waiting, (result, error) in zip(batch, outcomes, strict=True):
        waiting.result, waiting.error = result, error


def _announce_committed(batch: list[_Waiting]) -> None:
    todo = [(w.change.after_commit, w.result) for w in batch if w.error is None and w.change.after_commit]
    if not todo:
        return
    try:
        with _after_commit_scope():
            for after_commit, result in todo:
                try:
                    after_commit(result)
                except Exception:
                    logger.exception("the announcement of a committed change failed")
    except Exception:  # the scope's own end (sending what it held): the changes stand regardless
        logger.exception("the announcements of a committed batch failed")


def _run_batch(changes: list[Change[Any]]) -> list[tuple[Any, BaseException | None]]:
    """One transaction for all the changes, retried whole on a transient conflict."""
    rooms = set().union(*(c.room_ids for c in changes))
    messages = set().union(*(c.message_ids for c in changes))
    deadline = time.monotonic() + TRANSACTION_DEADLINE_S
    attempt = 0
    client = connection.db().client
    while True:
        attempt += 1
        with client.start_session() as session:
            try:
                started = time.monotonic()
                session.start_transaction(max_commit_time_ms=int(TRANSACTION_DEADLINE_S * 1000))
                batch = Batch(session)
                batch.preload(rooms, messages)
                outcomes: list[tuple[Any, BaseException | None]] = []
                for change in changes:
                    try:
                        outcomes.append((change.apply(batch), None))
                    except StoreError as refusal:  # raised before the change wrote anything
                        outcomes.append((None, refusal))
                batch.flush()
                if time.monotonic() - started > STAMP_COMMIT_LIMIT_S:
                    raise ExecutionTimeout("the batch took too long to commit in time for its stamps")
                _commit(session, deadline)
                return outcomes
            except CountersMissing as missing:
                _abort(session)
                ensure_counters(missing.room_ids)
                continue
            except PyMongoError as exc:
                _abort(session)
                if isinstance(exc, ServerSelectionTimeoutError):
                    # No server answered for MONGODB_TIMEOUT_MS: it is down, and retrying until the
                    # deadline would only make the writers wait longer for the same 503.
                    raise
                if exc.has_error_label("TransientTransactionError") and time.monotonic() < deadline:
                    time.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))
                    continue
                raise
            except BaseException:
                _abort(session)
                raise


def _abort(session: Any) -> None:
    if session.in_transaction:
        with contextlib.suppress(PyMongoError):
            session.abort_transaction()


def _commit(session: Any, deadline: float) -> None:
    while True:
        try:
            session.commit_transaction()
            return
        except PyMongoError as exc:
            # The commit may have happened: retrying the commit (never the work) is safe.
            if exc.has_error_label("UnknownTransactionCommitResult") and time.monotonic() < deadline:
                continue
            raise
