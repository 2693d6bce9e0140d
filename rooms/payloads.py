"""The `Room` JSON shape: PostgreSQL for the room, one MongoDB read for every room's head."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accounts.models import User
from accounts.serializers import user_payload
from core.times import iso
from rooms.activity import RoomActivity, room_activity
from rooms.models import Membership, Room, RoomKind
from rooms.selectors import member_counts

_QUIET = RoomActivity(last_seq=0, unread_count=0)


def _direct_members(rooms: list[Room]) -> dict[int, list[User]]:
    """The people of each direct room among `rooms`, in one query."""
    direct = [room.pk for room in rooms if room.kind == RoomKind.DIRECT]
    people: dict[int, list[User]] = {pk: [] for pk in direct}
    if direct:
        for member in Membership.objects.filter(room_id__in=direct).select_related("user").order_by("user_id"):
            people[member.room_id].append(member.user)
    return people


def room_payloads(rooms: Iterable[tuple[Room, Membership | None]]) -> list[dict[str, Any]]:
    pairs = list(rooms)
    counts = member_counts([room.pk for room, _ in pairs])
    activity = room_activity([(room.pk, membership) for room, membership in pairs])
    direct = _direct_members([room for room, _ in pairs])
    results = []
    for room, membership in pairs:
        seen = activity.get(room.pk, _QUIET)
        extra: dict[str, Any] = {}
        name = room.name
        if room.pk in direct:
            # Named for the others, as the caller sees them.
            caller = membership.user_id if membership is not None else None
            others = [user for user in direct[room.pk] if user.pk != caller]
            name = ", ".join(user.display_name or user.username for user in others) or "just you"
            extra["members"] = [user_payload(user) for user in direct[room.pk]]
        results.append(
            {
                "id": str(room.pk),
                "kind": room.kind,
                **extra,
                "name": name,
                "description": room.description,
                "is_private": room.is_private,
                "created_by": user_payload(room.created_by),
                "created_at": iso(room.created_at),
                "member_count": counts.get(room.pk, 0),
                "role": membership.role if membership is not None else None,
                "unread_count": seen.unread_count,
                "last_seq": seen.last_seq,
                "last_read_seq": membership.last_read_seq if membership is not None else 0,
                "edit_history_visibility": room.edit_history_visibility,
                "slow_mode_seconds": room.slow_mode_seconds,
                "notify": membership.notify_level(room.kind) if membership is not None else None,
                "muted": membership.muted if membership is not None else False,
            }
        )
    return results


def room_payload(room: Room, membership: Membership | None) -> dict[str, Any]:
    return room_payloads([(room, membership)])[0]


def member_payload(membership: Membership) -> dict[str, Any]:
    return {"user": user_payload(membership.user), "role": membership.role, "joined_at": iso(membership.joined_at)}


def settings_payload(membership: Membership) -> dict[str, Any]:
    return {"notify": membership.notify_level(membership.room.kind), "muted": membership.muted}
