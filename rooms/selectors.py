"""Room reads, and the one membership check every interface (REST, WebSocket, pages) calls."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import Lower

from accounts.models import User
from chatproject.errors import Forbidden, NotFound
from rooms.models import Membership, Room


def parse_room_id(raw: Any) -> int:
    """Room ids are positive integers; anything else names no room (404, not a crash)."""
    try:
        room_id = int(str(raw))
    except (TypeError, ValueError):
        raise NotFound("No such room.", code="room_not_found")
    if room_id <= 0 or room_id > 2**63 - 1:
        raise NotFound("No such room.", code="room_not_found")
    return room_id


def membership_get(user: User, room_id: int) -> Membership | None:
    return Membership.objects.filter(room_id=room_id, user_id=user.pk).select_related("room").first()


def room_require_member(user: User, room_id: Any) -> Membership:
    """The membership, or the refusal the contract names.

    A private room the caller is not in is indistinguishable from a missing one (404);
    a public room answers 403 `not_a_member`.
    """
    rid = parse_room_id(room_id)
    membership = membership_get(user, rid)
    if membership is not None:
        return membership
    is_private = Room.objects.filter(pk=rid).values_list("is_private", flat=True).first()
    if is_private is None or is_private:
        raise NotFound("No such room.", code="room_not_found")
    raise Forbidden("Join this room first.", code="not_a_member")


def room_get_visible(user: User, room_id: Any) -> tuple[Room, Membership | None]:
    """A room the caller may know about: every public room, and private rooms they are in."""
    rid = parse_room_id(room_id)
    room = Room.objects.select_related("created_by").filter(pk=rid).first()
    if room is None:
        raise NotFound("No such room.", code="room_not_found")
    membership = Membership.objects.filter(room_id=rid, user_id=user.pk).first()
    if room.is_private and membership is None:
        raise NotFound("No such room.", code="room_not_found")
    return room, membership


def rooms_of_user(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user.pk).select_related("room", "room__created_by").order_by("room_id")


def member_counts(room_ids: list[int]) -> dict[int, int]:
    rows = Membership.objects.filter(room_id__in=room_ids).values("room_id").annotate(n=Count("id"))
    return {row["room_id"]: row["n"] for row in rows}


def members_of_room(room_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(room_id=room_id).select_related("user")


MAX_MENTIONS_RESOLVED = 50


def member_ids_by_username(room_id: int, lowercase_names: set[str]) -> dict[str, int]:
    """{lower-cased username: user id} for the room's members among the names (one query)."""
    names = sorted(lowercase_names)[:MAX_MENTIONS_RESOLVED]
    rows = (
        Membership.objects.filter(room_id=room_id)
        .annotate(name=Lower("user__username"))
        .filter(name__in=names)
        .values_list("name", "user_id")
    )
    return {name: user_id for name, user_id in rows}
