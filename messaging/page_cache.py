"""Recently read pages of room messages, per process, kept exact by each room's change log.

Reading a page of 50 messages is the costly part of a page request: about 2.5 ms in
SecantusDB, where the room's head (one document) takes 0.4 ms. Pages are read again and again
(every member opening a room reads its newest page), so this process keeps what it read, by room
and `seq`, together with the room version the copy is exact at.

Before a cached page is served, the copy is brought to the room's current version: the head gives
that version, and the messages changed since (a bounded `version` range, the same read a resuming
socket makes, usually empty or a few documents) replace their old copies. Every change to a
message, from any process, bumps the room's version (messaging/store/transactions.py), so a page
served from here is what MongoDB holds at the head's version, as a direct read would be. Nothing needs to notify the
cache, and a process that posts nothing stays exact.

Why the copy's version is sound: the store makes versions visible in order, so a read that sees
a document at version V also sees every change numbered up to V. A range read straight from
MongoDB is therefore exact at the highest of: the versions among its documents, the head version
read before it, the copy's version when it started. Merging it lowers the room's cached version
to that if needed, never raises it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings

from messaging import store
from messaging.store import RoomHead, StoredMessage

# More changes than this since the copy was made: reading them costs more than the page itself.
MAX_CHANGES_TO_APPLY = 200
UNBOUNDED_VERSION = 2**62


@dataclass
class _RoomCopy:
    version: int  # every change up to this room version is reflected below
    # seq -> the message, or None where a read found no message with that seq
    by_seq: dict[int, StoredMessage | None] = field(default_factory=dict)

    def covers(self, first: int, last: int) -> bool:
        return all(seq in self.by_seq for seq in range(first, last + 1))

    def page(self, first: int, last: int) -> list[StoredMessage]:
        return [m for m in (self.by_seq[seq] for seq in range(first, last + 1)) if m is not None]


def _newer(message: StoredMessage, held: StoredMessage | None) -> bool:
    return held is None or message.version >= held.version


class PageCache:
    def __init__(self) -> None:
        self._rooms: OrderedDict[int, _RoomCopy] = OrderedDict()  # least recently used first
        self._size = 0  # seqs held, over all rooms
        self._lock = threading.Lock()
        self._generation = store.generation()

    def messages(self, room_id: int, first: int, last: int, head: RoomHead | None = None) -> list[StoredMessage]:
        """What `store.messages_by_seq` answers, from the copy when it is whole for the range.

        `head`: the room's head when the caller has just read it. A cached range needs one, and
        so does a room's first read (its copy starts exact at the head's version).
        """
        if settings.PAGE_CACHE_MESSAGES <= 0 or last < first:
            return store.messages_by_seq(room_id, first, last)
        with self._lock:
            if self._generation != store.generation():
                self._rooms.clear()
                self._size = 0
                self._generation = store.generation()
            copy = self._rooms.get(room_id)
            covered = copy is not None and copy.covers(first, last)
        if head is None and (covered or copy is None):
            head = store.room_heads([room_id]).get(room_id)
        if head is not None and copy is not None:
            self._bring_up_to(room_id, head)
        with self._lock:
            copy = self._rooms.get(room_id)
            if copy is not None and copy.covers(first, last):
                self._rooms.move_to_end(room_id)
                return copy.page(first, last)
            # The copy was exact at this version before the read below starts, so what that
            # read returns is exact at it too.
            known = copy.version if copy is not None else None
        messages = store.messages_by_seq(room_id, first, last)
        bounds = [known, head.version if head is not None else None, *(m.version for m in messages)]
        exact_at = max((b for b in bounds if b is not None), default=None)
        if exact_at is not None:
            self._merge(room_id, first, last, messages, exact_at)
        return messages

    def _bring_up_to(self, room_id: int, head: RoomHead) -> None:
        with self._lock:
            copy = self._rooms.get(room_id)
            if copy is None or copy.version == head.version:
                return
            since = copy.version
            if head.version < since or head.version - since > MAX_CHANGES_TO_APPLY:
                # Behind the copy: the database was replaced. Far ahead: cheaper to read again.
                self._drop(room_id)
                return
        # No upper bound at the head: a message changed before the head and again since carries
        # its newer version, and bounding the range at the head would leave its old copy here.
        changes = store.messages_by_version(room_id, since, UNBOUNDED_VERSION)
        with self._lock:
            copy = self._rooms.get(room_id)
            if copy is None:
                return
            for message in changes:
                held = copy.by_seq.get(message.seq)
                if _newer(message, held):
                    if message.seq not in copy.by_seq:
                        self._size += 1
                    copy.by_seq[message.seq] = message
            # Another reader may have lowered the copy's version meanwhile: then it stays lower.
            if copy.version == since:
                copy.version = head.version
            self._trim()

    def _merge(self, room_id: int, first: int, last: int, messages: list[StoredMessage], exact_at: int) -> None:
        found = {m.seq: m for m in messages}
        with self._lock:
            copy = self._rooms.get(room_id)
            if copy is None:
                copy = self._rooms[room_id] = _RoomCopy(version=exact_at)
            copy.version = min(copy.version, exact_at)
            for seq in range(first, last + 1):
                message, held = found.get(seq), copy.by_seq.get(seq)
                if seq not in copy.by_seq:
                    self._size += 1
                    copy.by_seq[seq] = message
                elif message is not None and _newer(message, held):
                    copy.by_seq[seq] = message
            self._rooms.move_to_end(room_id)
            self._trim()

    def _drop(self, room_id: int) -> None:
        copy = self._rooms.pop(room_id, None)
        if copy is not None:
            self._size -= len(copy.by_seq)

    def _trim(self) -> None:
        # Whole rooms, least recently used first (the room just used last, if it alone is too big).
        while self._size > settings.PAGE_CACHE_MESSAGES and self._rooms:
            self._drop(next(iter(self._rooms)))


page_cache = PageCache()
