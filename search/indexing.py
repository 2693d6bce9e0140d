"""Follows each room's changes into the PostgreSQL search index and the mention/reply notices.

It runs after delivery (a Celery task per room, search/tasks.py, scheduled once the message is
published), so sending never waits for it. Per room it reads the changes after its cursor in
`version` order from MongoDB, a bounded index range, and applies them with the cursor's advance
in one PostgreSQL transaction, with the same few statements for a pass over one room or fifty
(a coalesced burst over many rooms): every change is indexed, and every notice created, exactly once,
whatever the number of workers, retries or lost task messages. A periodic sweep catches up any
room whose task was lost (broker down).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from core.textfold import fold
from messaging import store
from notifications.services import MessageNotice, record_notices
from rooms.models import Room
from search.models import SearchCursor, SearchEntry

BATCH = 500  # changes of one room a pass
ROOMS_A_PASS = 50

_ENTRY_FIELDS = [
    "room",
    "seq",
    "author_id",
    "posted_at",
    "text",
    "has_file",
    "has_link",
    "in_thread",
    "mentions",
    "mentions_room",
    "version",
]


def catch_up_room(room_id: int) -> int:
    """Apply every change of the room not indexed yet; returns how many messages were written."""
    return catch_up_rooms([room_id])


def catch_up_rooms(room_ids: Iterable[int]) -> int:
    """catch_up_room for several rooms (a coalesced burst, the sweep), ROOMS_A_PASS at a time in
    one transaction: a pass costs the same few statements for one room or fifty."""
    ids = sorted(set(room_ids))
    total = 0
    for start in range(0, len(ids), ROOMS_A_PASS):
        pending = _with_cursors(ids[start : start + ROOMS_A_PASS])
        while pending:
            applied, pending = _apply_pass(pending)
            total += applied
    return total


def catch_up_all() -> int:
    """The sweep: every room whose head is ahead of its cursor."""
    cursors = dict(SearchCursor.objects.values_list("room_id", "version"))
    room_ids = list(Room.objects.values_list("pk", flat=True))
    behind: list[int] = []
    for start in range(0, len(room_ids), 1000):
        chunk = room_ids[start : start + 1000]
        heads = store.room_heads(chunk)
        behind += [room_id for room_id, head in heads.items() if head.version > cursors.get(room_id, 0)]
    return catch_up_rooms(behind)


def _with_cursors(room_ids: list[int]) -> list[int]:
    """The rooms of the list that exist, each with its cursor (created at 0 when it has none)."""
    have = set(SearchCursor.objects.filter(room_id__in=room_ids).values_list("room_id", flat=True))
    missing = [r for r in room_ids if r not in have]
    if missing:
        existing = Room.objects.filter(pk__in=missing).values_list("pk", flat=True)
        SearchCursor.objects.bulk_create([SearchCursor(room_id=r) for r in existing], ignore_conflicts=True)
        have |= set(SearchCursor.objects.filter(room_id__in=missing).values_list("room_id", flat=True))
    return [r for r in room_ids if r in have]


@dataclass(frozen=True)
class _Change:
    message: store.StoredMessage
    previous: SearchEntry | None
    is_new_post: bool


def _apply_pass(room_ids: list[int]) -> tuple[int, list[int]]:
    """Up to BATCH changes of each room, applied with the cursors' advance in one transaction;
    returns how many messages were written and the rooms with more to do."""
    with transaction.atomic():
        # The row locks serialise workers on a room (taken in room order, so two passes over
        # overlapping rooms cannot deadlock); other rooms go on in parallel.
        cursors = list(SearchCursor.objects.select_for_update().filter(room_id__in=room_ids).order_by("room_id"))
        heads = store.room_heads(room_ids)
        behind = [c for c in cursors if c.room_id in heads and heads[c.room_id].version > c.version]
        if not behind:
            return 0, []
        upto = {c.room_id: min(heads[c.room_id].version, c.version + BATCH) for c in behind}
        messages = {c.room_id: store.messages_by_version(c.room_id, c.version, upto[c.room_id]) for c in behind}
        previous = SearchEntry.objects.in_bulk([m.id for found in messages.values() for m in found])
        changes = {
            c.room_id: [
                _Change(m, previous.get(m.id), is_new_post=c.version < m.created_version <= upto[c.room_id])
                for m in messages[c.room_id]
            ]
            for c in behind
        }
        every = [c for found in changes.values() for c in found]
        gone = [c.message.id for c in every if c.message.deleted]
        if gone:
            SearchEntry.objects.filter(message_id__in=gone).delete()
        live = [_entry(c.message) for c in every if not c.message.deleted]
        if live:
            SearchEntry.objects.bulk_create(
                live, update_conflicts=True, unique_fields=["message_id"], update_fields=_ENTRY_FIELDS
            )
        record_notices(_notices(changes))
        for cursor in behind:
            cursor.version = upto[cursor.room_id]
        SearchCursor.objects.bulk_update(behind, ["version"])
        return len(every), [c.room_id for c in behind if upto[c.room_id] < heads[c.room_id].version]


def _entry(message: store.StoredMessage) -> SearchEntry:
    return SearchEntry(
        message_id=message.id,
        room_id=message.room_id,
        seq=message.seq,
        author_id=message.author_id,
        posted_at=message.created_at,
        text=fold(message.body),
        has_file=bool(message.attachments),
        has_link=message.has_link,
        in_thread=message.parent_id is not None or message.reply_count > 0,
        mentions=message.mentioned_user_ids,
        mentions_room=message.mentions_room,
        version=message.version,
    )


def _notices(by_room: dict[int, list[_Change]]) -> dict[int, list[MessageNotice]]:
    """Mentions new since the last indexed state (edits included), replies to threads, and new posts
    (record_notices keeps those for the members who want every message), by room."""
    every = [c for changes in by_room.values() for c in changes]
    parents_wanted = {c.message.parent_id for c in every if c.is_new_post and c.message.parent_id}
    parent_authors = {m.id: m.author_id for m in store.get_messages(sorted(p for p in parents_wanted if p))}
    return {room_id: _room_notices(changes, parent_authors) for room_id, changes in by_room.items()}


def _room_notices(changes: list[_Change], parent_authors: dict[str, int]) -> list[MessageNotice]:
    notices: list[MessageNotice] = []
    for change in changes:
        message, previous = change.message, change.previous
        if message.deleted or (previous is None and not change.is_new_post):
            continue
        before = set(previous.mentions) if previous is not None else set()
        mentioned = set(message.mentioned_user_ids) - before - {message.author_id}
        room_wide = message.mentions_room and not (previous is not None and previous.mentions_room)
        if mentioned or room_wide:
            notices.append(_notice("mention", message, frozenset(mentioned), everyone=room_wide))
        parent_author = parent_authors.get(message.parent_id or "")
        # A reply notice unless the parent's author got a mention notice for this very message.
        already_told = parent_author in mentioned or room_wide
        if change.is_new_post and parent_author not in (None, message.author_id) and not already_told:
            notices.append(_notice("reply", message, frozenset({parent_author})))
        if change.is_new_post:  # for those who asked for every message (a DM's default)
            notices.append(_notice("message", message, frozenset(), everyone=True))
    return notices


def _notice(kind: str, message: store.StoredMessage, user_ids: frozenset[int], everyone: bool = False) -> MessageNotice:
    return MessageNotice(
        kind=kind,
        message_id=message.id,
        author_id=message.author_id,
        at=message.edited_at or message.created_at,
        user_ids=user_ids,
        everyone=everyone,
        excerpt=" ".join(message.body.split())[:200],
        seq=message.seq,
        thread_reply=message.parent_id is not None,
    )
