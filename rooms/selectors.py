"""Room reads, and the one membership check every interface (REST, WebSocket, pages) calls."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import Lower

from accounts.models import User
from core.errors import Forbidden, InvalidInput, NotFound
from core.ids import parse_positive_id
from core.textfold import fold
from rooms.models import Membership, Room


def parse_room_id(raw: Any) -> int:
    """Room ids are positive integers; anything else names no room (404, not a crash)."""
    room_id = parse_positive_id(raw)
    if room_id is None:
        raise NotFound("No such room.", code="room_not_found")
    return room_id


def _membership_query() -> tuple[str, list[str], list[str]]:
    member_fields = [f.attname for f in Membership._meta.concrete_fields]
    room_fields = [f.attname for f in Room._meta.concrete_fields]
    columns = [f"m.{f.column}" for f in Membership._meta.concrete_fields]
    columns += [f"r.{f.column}" for f in Room._meta.concrete_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {Membership._meta.db_table} m "
        f"JOIN {Room._meta.db_table} r ON r.id = m.room_id WHERE m.room_id = %s AND m.user_id = %s"
    )
    return sql, member_fields, room_fields


# Every REST call on a room, every socket join and every page asks this; building the query
# with the ORM each time cost 0.5-0.7 ms of Python, three times the query itself. The statement
# is made once, from the models' own field lists, and rows become models the way the ORM does.
_MEMBERSHIP_SQL, _MEMBER_FIELDS, _ROOM_FIELDS = _membership_query()


def membership_get(user: User, room_id: int) -> Membership | None:
    """The caller's membership of the room, with `.room` loaded, in one indexed read."""
    if connection.vendor != "postgresql":
        # Other backends hand back raw column values (SQLite: datetimes as text) that only the
        # ORM converts; they serve development, where the ORM's cost does not matter.
        return Membership.objects.filter(room_id=room_id, user_id=user.pk).select_related("room").first()
    with connection.cursor() as cursor:
        cursor.execute(_MEMBERSHIP_SQL, [room_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_MEMBER_FIELDS)
    membership = Membership.from_db(connection.alias, _MEMBER_FIELDS, row[:split])
    membership.room = Room.from_db(connection.alias, _ROOM_FIELDS, row[split:])
    return membership


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


def room_has_at_most(room_id: int, limit: int) -> bool:
    """Whether the room has at most `limit` members, counted no further than that (bounded)."""
    return Membership.objects.filter(room_id=room_id).values("id")[: limit + 1].count() <= limit


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


DIRECTORY_QUERY_MAX_LENGTH = 100


def room_directory(raw_query: Any) -> QuerySet[Room]:
    """Public rooms whose name or description contains the text (case and accents ignored), most
    members first: the partial index room_directory_order gives the order, and on PostgreSQL a
    trigram index (rooms/migrations/0003_room_directory.py) finds the text. Private rooms never."""
    text = raw_query.strip() if isinstance(raw_query, str) else ""
    if len(text) > DIRECTORY_QUERY_MAX_LENGTH:
        raise InvalidInput(
            f"q is at most {DIRECTORY_QUERY_MAX_LENGTH} characters.", fields={"q": ["Part of a room's name."]}
        )
    rooms = Room.objects.filter(is_private=False).select_related("created_by")
    return rooms.filter(search_key__contains=fold(text)) if text else rooms


def joined_rooms(user: User, room_ids: list[int]) -> dict[int, Membership]:
    return {m.room_id: m for m in Membership.objects.filter(user_id=user.pk, room_id__in=room_ids)}
