"""Lost access, told to every server process: the log behind "removed means cut off within a second".

Every way of losing access (leaving or being removed from a room, in the API or the admin; an
account deactivated, deleted or given a new password) writes one AccessRevocation in the same
transaction, numbered by AccessEpoch, whose row lock makes revocations commit in epoch order.
A process that has read up to epoch N has therefore seen every revocation up to N. Sockets note
the epoch before they authenticate, and each process's hub asks for newer revocations every
REVOCATION_POLL_SECONDS (one indexed query that usually returns nothing) and closes the sockets
they name. After the commit the channel layer carries the same news at once (the fast path);
the poll is what makes a lost signal or a Redis outage cost at most a second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AccessEpoch, AccessRevocation
from core import broadcast

logger = logging.getLogger(__name__)

# Control event on the user's group (realtime/consumers.py closes the sockets it names).
ACCESS_REVOKED = "access.revoked"
# How many revocations one poll reads; the next poll reads on from there.
POLL_BATCH = 10_000


@dataclass(frozen=True)
class Revocation:
    epoch: int
    user_id: int
    room_id: int | None  # None: every room

    def covers(self, user_id: int, room_id: int) -> bool:
        return self.user_id == user_id and (self.room_id is None or self.room_id == room_id)


def record(user_id: int, room_id: int | None = None) -> None:
    """Log that `user_id` lost access to `room_id` (None: to everything), in the caller's transaction."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {AccessEpoch._meta.db_table} SET value = value + 1 WHERE id = 1 RETURNING value")
            row = cursor.fetchone()
        if row is None:  # the migration makes the row; a database restored without it gets one here
            AccessEpoch.objects.get_or_create(pk=1, defaults={"value": 0})
            record(user_id, room_id)
            return
        AccessRevocation.objects.create(epoch=row[0], user_id=user_id, room_id=room_id)
        transaction.on_commit(lambda: broadcast.notify(broadcast.user_group(user_id), ACCESS_REVOKED, room_id=room_id))


def current_epoch() -> int:
    value = AccessEpoch.objects.filter(pk=1).values_list("value", flat=True).first()
    return int(value or 0)


def revocations_after(epoch: int, *, user_id: int | None = None) -> list[Revocation]:
    """Revocations committed after `epoch`, oldest first (at most POLL_BATCH)."""
    rows = AccessRevocation.objects.filter(epoch__gt=epoch)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    return [
        Revocation(epoch=e, user_id=u, room_id=r)
        for e, u, r in rows.order_by("epoch").values_list("epoch", "user_id", "room_id")[:POLL_BATCH]
    ]


def forget_older_than(age: timedelta) -> int:
    """Beat's clean-up: a revocation matters only to sockets that authenticated before it."""
    deleted, _ = AccessRevocation.objects.filter(created_at__lt=timezone.now() - age).delete()
    return deleted
