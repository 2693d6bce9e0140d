"""Notices for people: created by search/indexing.py (mentions, replies) and on rooms' member_added (invites)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts import user_log
from accounts.models import User
from core.errors import InvalidInput
from notifications.models import Notification, NotificationType
from rooms.models import Membership

EXCERPT_LENGTH = 200


@dataclass(frozen=True)
class MessageNotice:
    kind: str  # "mention" or "reply"
    message_id: str
    author_id: int
    at: datetime  # when the message said it (its edit, for a mention added by an edit)
    user_ids: frozenset[int]
    everyone: bool = False  # @room: every member but the author
    excerpt: str = ""  # the start of the message's text


def record_notices(room_id: int, notices: list[MessageNotice]) -> None:
    """Create the notices for current members only; a repeated one is ignored (unique per message)."""
    if not notices:
        return
    wanted = set().union(*(n.user_ids for n in notices))
    everyone = any(n.everyone for n in notices)
    members_query = Membership.objects.filter(room_id=room_id)
    if not everyone:
        members_query = members_query.filter(user_id__in=wanted)
    members = set(members_query.values_list("user_id", flat=True))
    rows = [
        (user_id, notice.kind, room_id, notice.message_id, notice.author_id, notice.at, notice.excerpt[:EXCERPT_LENGTH])
        for notice in notices
        for user_id in sorted((members if notice.everyone else notice.user_ids & members) - {notice.author_id})
    ]
    if not rows:
        return
    table = Notification._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Only the notices really made (a repeated one is skipped by the unique index) are
            # logged for the user stream, so nobody is told of one twice.
            cursor.execute(
                f"INSERT INTO {table} (user_id, type, room_id, message_id, actor_id, created_at, read, excerpt) "
                f"SELECT u, t, r, m, a, c, false, e FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[], "
                f"%s::varchar[], %s::bigint[], %s::timestamptz[], %s::varchar[]) AS rows(u, t, r, m, a, c, e) "
                "ON CONFLICT DO NOTHING RETURNING id, user_id",
                [list(column) for column in zip(*rows, strict=True)],
            )
            made = cursor.fetchall()
        for notification_id, user_id in made:
            user_log.record([user_id], user_log.NOTIFICATION, room_id, {"id": notification_id})


def forget_message(message_id: str) -> None:
    """A deleted message's words leave its notices too."""
    Notification.objects.filter(message_id=message_id).exclude(excerpt="").update(excerpt="")


def notify_invite(*, user_id: int, room_id: int, actor_id: int) -> None:
    with transaction.atomic():
        notice = Notification.objects.create(
            user_id=user_id, type=NotificationType.INVITE, room_id=room_id, actor_id=actor_id, created_at=timezone.now()
        )
        user_log.record([user_id], user_log.NOTIFICATION, room_id, {"id": notice.pk})


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
