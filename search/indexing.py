"""Follows each room's changes into the PostgreSQL search index and the mention/reply notices.

It runs after delivery (a Celery task per room, search/tasks.py, scheduled once the message is
published), so sending never waits for it. Per room it reads the changes after its cursor in
`version` order from MongoDB, a bounded index range, and applies them with the cursor's advance
in one PostgreSQL transaction: every change is indexed, and every notice created, exactly once,
whatever the number of workers, retries or lost task messages. A periodic sweep catches up any
room whose task was lost (broker down).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from core.textfold import fold
from messaging import store
from notifications.services import MessageNotice, record_notices
from rooms.models import Room
from search.models import SearchCursor, SearchEntry

BATCH = 500

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
    SearchCursor.objects.get_or_create(room_id=room_id)
    total = 0
    while True:
        applied, more = _apply_batch(room_id)
        total += applied
        if not more:
            return total


def catch_up_all() -> int:
    """The sweep: every room whose head is ahead of its cursor."""
    cursors = dict(SearchCursor.objects.values_list("room_id", "version"))
    room_ids = list(Room.objects.values_list("pk", flat=True))
    total = 0
    for start in range(0, len(room_ids), 1000):
        chunk = room_ids[start : start + 1000]
        for room_id, head in store.room_heads(chunk).items():
            if head.version > cursors.get(room_id, 0):
                total += catch_up_room(room_id)
    return total


@dataclass(frozen=True)
class _Change:
    message: store.StoredMessage
    previous: SearchEntry | None
    is_new_post: bool


def _apply_batch(room_id: int) -> tuple[int, bool]:
    with transaction.atomic():
        # The row lock serialises workers on one room; other rooms go on in parallel.
        cursor = SearchCursor.objects.select_for_update().get(room_id=room_id)
        head = store.room_heads([room_id]).get(room_id)
        if head is None or head.version <= cursor.version:
            return 0, False
        upto = min(head.version, cursor.version + BATCH)
        messages = store.messages_by_version(room_id, cursor.version, upto)
        previous = SearchEntry.objects.in_bulk([m.id for m in messages])
        changes = [
            _Change(message=m, previous=previous.get(m.id), is_new_post=cursor.version < m.created_version <= upto)
            for m in messages
        ]
        gone = [c.message.id for c in changes if c.message.deleted]
        if gone:
            SearchEntry.objects.filter(message_id__in=gone).delete()
        live = [_entry(c.message) for c in changes if not c.message.deleted]
        if live:
            SearchEntry.objects.bulk_create(
                live, update_conflicts=True, unique_fields=["message_id"], update_fields=_ENTRY_FIELDS
            )
        record_notices(room_id, _notices(changes))
        cursor.version = upto
        cursor.save(update_fields=["version"])
        return len(messages), upto < head.version


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


def _notices(changes: list[_Change]) -> list[MessageNotice]:
    """Mentions new since the last indexed state (edits included), replies to threads, and new posts
    (record_notices keeps those for the members who want every message)."""
    notices: list[MessageNotice] = []
    parents_wanted = {c.message.parent_id for c in changes if c.is_new_post and c.message.parent_id}
    parent_authors = {m.id: m.author_id for m in store.get_messages(sorted(p for p in parents_wanted if p))}
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
