"""Each user's log of what changed for them outside rooms' messages, for the user stream.

Entries: `room.added`, `room.updated`, `room.removed` (with the reason), `read` (the read marker
moved) and `notification`. Each is written in the transaction of the change it describes,
numbered by the user's UserLogHead row, whose lock makes one user's entries commit in position
order: a reader that has seen position N has seen every entry up to N (the same argument as
accounts/revocations.py, per user instead of global, so users never wait on each other). After the
commit the channel layer tells the user's sockets at once; the hub's tick is the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import UserLogEntry, UserLogHead
from core import broadcast

ROOM_ADDED = "room.added"
ROOM_UPDATED = "room.updated"
ROOM_REMOVED = "room.removed"
READ = "read"
NOTIFICATION = "notification"

# Control event on the user's group (realtime/stream.py reads the log on from what it has).
USER_LOGGED = "user.logged"
# How many entries one read returns; a reader that gets this many reads again from the last.
READ_BATCH = 1_000


@dataclass(frozen=True)
class LogEntry:
    position: int
    kind: str
    room_id: int | None
    data: dict[str, Any]


def record(user_ids: Iterable[int], kind: str, room_id: int | None, data: dict[str, Any] | None = None) -> None:
    """Append one entry to each user's log, in the caller's transaction (three statements for any
    number of users: a big room's rename costs one statement per step, not one per member)."""
    users = sorted(set(user_ids))
    if not users:
        return
    head = UserLogHead._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {head} (user_id, position) SELECT u, 0 FROM unnest(%s::bigint[]) AS u "
                "ON CONFLICT (user_id) DO NOTHING",
                [users],
            )
            # Locked in user order, so two writers naming the same users cannot deadlock.
            cursor.execute(
                f"UPDATE {head} AS h SET position = h.position + 1 FROM ("
                f"SELECT user_id FROM {head} WHERE user_id = ANY(%s) ORDER BY user_id FOR UPDATE"
                ") AS locked WHERE h.user_id = locked.user_id RETURNING h.user_id, h.position",
                [users],
            )
            positions = cursor.fetchall()
        UserLogEntry.objects.bulk_create(
            UserLogEntry(user_id=user_id, position=position, kind=kind, room_id=room_id, data=data or {})
            for user_id, position in positions
        )

        def tell() -> None:
            for user_id, position in positions:
                broadcast.notify(broadcast.user_group(user_id), USER_LOGGED, position=position)

        transaction.on_commit(tell)


def head_positions(user_ids: Iterable[int]) -> dict[int, int]:
    """Each user's newest position (0 for a user with no entries yet), in one query."""
    ids = list(user_ids)
    found = dict(UserLogHead.objects.filter(user_id__in=ids).values_list("user_id", "position"))
    return {user_id: int(found.get(user_id, 0)) for user_id in ids}


def entries_after(user_id: int, position: int) -> list[LogEntry]:
    """The user's entries after `position`, oldest first (at most READ_BATCH): one index range."""
    rows = (
        UserLogEntry.objects.filter(user_id=user_id, position__gt=position)
        .order_by("position")
        .values_list("position", "kind", "room_id", "data")[:READ_BATCH]
    )
    return [LogEntry(position=p, kind=k, room_id=r, data=d) for p, k, r, d in rows]


def forget_user(user_id: int) -> None:
    """A deleted user's log goes with them (their sockets were closed by the revocation)."""
    UserLogEntry.objects.filter(user_id=user_id).delete()
    UserLogHead.objects.filter(user_id=user_id).delete()


def forget_older_than(age: timedelta) -> int:
    """Beat's clean-up; a cursor older than what is kept gets `cursor_expired` (docs/websocket.md)."""
    deleted, _ = UserLogEntry.objects.filter(created_at__lt=timezone.now() - age).delete()
    return deleted
