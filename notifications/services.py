"""Notices for people: created by search/indexing.py (mentions, replies, every post where asked) and on
rooms' member_added (invites), within the members' notification preferences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from accounts import user_log
from accounts.models import User
from core.errors import InvalidInput
from notifications import metrics
from notifications.models import Notification, NotificationType
from rooms.models import Membership, NotifyLevel, Room, RoomKind

EXCERPT_LENGTH = 200


@dataclass(frozen=True)
class MessageNotice:
    kind: str  # "mention", "reply" or "message" (a new post: "dm" in a direct room)
    message_id: str
    author_id: int
    at: datetime  # when the message said it (its edit, for a mention added by an edit)
    user_ids: frozenset[int]
    everyone: bool = False  # @room, or a new post: every member but the author
    excerpt: str = ""  # the start of the message's text
    seq: int | None = None
    thread_reply: bool = False  # a reply in a thread: a room's `all` level is not told of it (a DM's is)


# One notice per message and person: the most pointed kind wins.
_RANK = {NotificationType.MENTION: 0, NotificationType.REPLY: 1, NotificationType.DM: 2, NotificationType.MESSAGE: 2}


@dataclass(frozen=True)
class _Member:
    notify: str
    muted: bool


def _members_to_tell(by_room: Mapping[int, list[MessageNotice]]) -> dict[int, tuple[dict[int, _Member], bool]]:
    """For each room, the members its notices may reach, with their preferences, and whether the
    room is direct.

    Two indexed reads for all the rooms (their kinds, the members concerned). A new post in a room
    reaches only those who asked for every message (the default there is mentions), so a big
    room's posts do not read its whole member list.
    """
    kinds = dict(Room.objects.filter(pk__in=list(by_room)).values_list("pk", "kind"))
    reach = Q(pk__in=[])
    for room_id, notices in by_room.items():
        wanted = set().union(*(n.user_ids for n in notices))
        room_wide = any(n.everyone and n.kind != NotificationType.MESSAGE for n in notices)
        posts = any(n.kind == NotificationType.MESSAGE for n in notices)
        in_room = Q(room_id=room_id)
        if not (room_wide or (posts and kinds.get(room_id) == RoomKind.DIRECT)):
            some = Q(user_id__in=wanted)
            if posts:
                some |= Q(notify=NotifyLevel.ALL)
            in_room &= some
        reach |= in_room
    found: dict[int, tuple[dict[int, _Member], bool]] = {
        room_id: ({}, kinds.get(room_id) == RoomKind.DIRECT) for room_id in by_room
    }
    for room_id, user_id, notify, muted in Membership.objects.filter(reach).values_list(
        "room_id", "user_id", "notify", "muted"
    ):
        members, direct = found[room_id]
        members[user_id] = _Member(notify or (NotifyLevel.ALL if direct else NotifyLevel.MENTIONS), muted)
    return found


def _rows(
    room_id: int, notices: list[MessageNotice], members: dict[int, _Member], direct: bool
) -> list[tuple[Any, ...]]:
    best: dict[tuple[int, str], tuple[str, MessageNotice]] = {}
    for notice in notices:
        kind = NotificationType.DM if (notice.kind == NotificationType.MESSAGE and direct) else notice.kind
        targets = members.keys() if notice.everyone else notice.user_ids & members.keys()
        for user_id in targets:
            member = members[user_id]
            if user_id == notice.author_id or member.muted or member.notify == NotifyLevel.NOTHING:
                continue
            if kind == NotificationType.MESSAGE and notice.thread_reply:
                continue
            if kind in (NotificationType.MESSAGE, NotificationType.DM) and member.notify != NotifyLevel.ALL:
                continue
            key = (user_id, notice.message_id)
            if key not in best or _RANK[NotificationType(kind)] < _RANK[NotificationType(best[key][0])]:
                best[key] = (kind, notice)
    return [
        (user_id, kind, room_id, n.message_id, n.author_id, n.at, n.excerpt[:EXCERPT_LENGTH], n.seq)
        for (user_id, _), (kind, n) in sorted(best.items())
    ]


def record_notices(by_room: Mapping[int, list[MessageNotice]]) -> None:
    """Create the notices the members' preferences allow (a muted room or `nothing`: none; `all`:
    every new post too), for any number of rooms in one statement; a repeated one is ignored
    (unique per message, person and kind). Each new one goes to the user's stream in this
    transaction, and to their browsers once it commits."""
    by_room = {room_id: notices for room_id, notices in by_room.items() if notices}
    if not by_room:
        return
    rows = [
        row
        for room_id, (members, direct) in _members_to_tell(by_room).items()
        for row in _rows(room_id, by_room[room_id], members, direct)
    ]
    if not rows:
        return
    table = Notification._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Only the notices really made (a repeated one is skipped by the unique index) are
            # logged for the user stream and pushed, so nobody is told of one twice.
            cursor.execute(
                f"INSERT INTO {table} (user_id, type, room_id, message_id, actor_id, created_at, read, excerpt, seq) "
                f"SELECT u, t, r, m, a, c, false, e, s FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[], "
                f"%s::varchar[], %s::bigint[], %s::timestamptz[], %s::varchar[], %s::bigint[]) "
                "AS rows(u, t, r, m, a, c, e, s) ON CONFLICT DO NOTHING RETURNING id, user_id, type, room_id",
                [list(column) for column in zip(*rows, strict=True)],
            )
            made = cursor.fetchall()
        for notification_id, user_id, _, room_id in made:
            user_log.record([user_id], user_log.NOTIFICATION, room_id, {"id": notification_id})
        _after_commit([notification_id for notification_id, *_ in made], [kind for _, _, kind, _ in made])


def _after_commit(notification_ids: list[int], kinds: list[str]) -> None:
    if not notification_ids:
        return

    def counted_and_pushed() -> None:
        for kind in set(kinds):
            metrics.notices_created(kind, kinds.count(kind))
        from notifications.tasks import queue_pushes

        queue_pushes(notification_ids)

    transaction.on_commit(counted_and_pushed)


def forget_message(message_id: str) -> None:
    """A deleted message's words leave its notices too, and no e-mail will tell of it."""
    Notification.objects.filter(message_id=message_id).update(excerpt="", emailed_at=Coalesce("emailed_at", Now()))


def notify_invite(*, user_id: int, room_id: int, actor_id: int) -> None:
    with transaction.atomic():
        notice = Notification.objects.create(
            user_id=user_id, type=NotificationType.INVITE, room_id=room_id, actor_id=actor_id, created_at=timezone.now()
        )
        user_log.record([user_id], user_log.NOTIFICATION, room_id, {"id": notice.pk})
        _after_commit([notice.pk], [NotificationType.INVITE])


def mark_read_up_to(*, user_id: int, room_id: int, seq: int) -> int:
    """The room read on some device up to `seq`: its DM and post notices up to there are read on
    every device (mentions, replies and invites stay until opened)."""
    kinds = [NotificationType.DM, NotificationType.MESSAGE]
    return Notification.objects.filter(
        user_id=user_id, room_id=room_id, read=False, type__in=kinds, seq__lte=seq
    ).update(read=True)


def mark_read(*, user: User, ids: Any = None, everything: Any = False) -> int:
    """Mark the caller's notices read: a list of ids, or all of them."""
    query = Notification.objects.filter(user_id=user.pk, read=False)
    if everything is True:
        return query.update(read=True)
    if not (isinstance(ids, list) and ids and all(isinstance(i, str | int) and str(i).isdigit() for i in ids)):
        raise InvalidInput(
            "Give `ids` (a list of notification ids) or `all: true`.",
            fields={"ids": ["A non-empty list of notification ids."]},
        )
    return query.filter(pk__in=[int(i) for i in ids[:500]]).update(read=True)
