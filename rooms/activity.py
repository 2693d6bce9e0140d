"""What the `Room` shape says about a room's messages (last `seq`, unread count).

Messages live in the message core, which sits above rooms: rooms cannot import it, so the core
hands over its reader when Django starts (messaging/apps.py) and rooms asks through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from rooms.models import Membership


@dataclass(frozen=True)
class RoomActivity:
    last_seq: int
    unread_count: int


class ActivityReader(Protocol):
    def __call__(self, memberships: list[tuple[int, Membership | None]]) -> dict[int, RoomActivity]: ...


_reader: ActivityReader | None = None


def provide(reader: ActivityReader) -> None:
    global _reader
    _reader = reader


def room_activity(memberships: list[tuple[int, Membership | None]]) -> dict[int, RoomActivity]:
    """For each (room id, the caller's membership or None): its activity, in one batch."""
    if _reader is None:
        raise ImproperlyConfigured("No message app is installed to tell rooms' activity (INSTALLED_APPS).")
    return _reader(memberships)
