"""The reads a user stream makes, run off the event loop (core.blocking.off_loop). Each is a fixed
number of queries, whatever the number of rooms that did not change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts import user_log
from accounts.models import User
from messaging import store
from messaging.payloads import MessagePayload, message_payloads
from notifications.models import Notification
from notifications.views import notification_payload
from realtime import frames
from realtime.cursor import Cursor
from realtime.hub import now_ms
from rooms.activity import room_activity
from rooms.models import Membership
from rooms.payloads import room_payload


@dataclass(frozen=True)
class Start:
    position: int  # the user's log position, read before the rooms
    room_ids: list[int]


def stream_start(user_id: int) -> Start:
    """Where the user's log is, then their rooms: a room joined after the first read is in the log."""
    position = user_log.head_positions([user_id])[user_id]
    rooms = list(Membership.objects.filter(user_id=user_id).values_list("room_id", flat=True))
    return Start(position=position, room_ids=rooms)


def fresh_cursor(user_id: int) -> str | None:
    """A cursor for a client that reads its state another way right after (the chat page renders
    it before its rooms and messages): what changes after this moment is replayed on its first
    connect, and only that (what it also read is no news; its handlers are idempotent). None while
    MongoDB is away: the client then starts its stream afresh."""
    start = stream_start(user_id)
    read_ms = now_ms()
    heads = store.room_heads_if_reachable(start.room_ids)
    if heads is None:
        return None
    stamp = read_ms - int(settings.STREAM_CURSOR_MARGIN_SECONDS * 1000)
    versions = {room_id: head.version for room_id, head in heads.items() if head.stamp >= stamp}
    return Cursor(stamp=stamp, position=start.position, versions=versions).encode()


def changed_rooms(room_ids: set[int], stamp: int) -> dict[int, store.RoomHead]:
    """Heads of the rooms among `room_ids` changed at or after `stamp`: one range of the counters'
    stamp index (bounded by the rooms changed since), or one lookup by id when that is smaller."""
    if not room_ids:
        return {}
    recent = store.rooms_changed_since(stamp, limit=len(room_ids))
    if recent is None:
        recent = store.room_heads(room_ids)
    return {room_id: head for room_id, head in recent.items() if room_id in room_ids and head.stamp >= stamp}


@dataclass(frozen=True)
class Change:
    kind: str  # message.new or message.updated
    message: MessagePayload
    version: int
    stamp: int


def room_changes(room_id: int, after: int, upto: int, is_new: Callable[[store.StoredMessage], bool]) -> list[Change]:
    """The room's changes in (after, upto], ascending by version."""
    changed = store.messages_by_version(room_id, after, upto)
    return [
        Change(
            kind=frames.MESSAGE_NEW if is_new(message) else frames.MESSAGE_UPDATED,
            message=payload,
            version=message.version,
            stamp=message.stamp,
        )
        for message, payload in zip(changed, message_payloads(changed), strict=True)
    ]


@dataclass(frozen=True)
class LogFrame:
    """One frame made from the user's log (its cursor is added by the socket)."""

    position: int
    kind: str
    room_id: int | None
    body: dict[str, Any]  # the frame's fields but `type` and `cursor`
    start_version: int | None = None  # room.added: the room's messages start after this version


def log_frames(user: User, entries: list[user_log.LogEntry]) -> list[LogFrame]:
    """The frames for a batch of log entries, each change once: a room's membership entries become
    one frame at the last of them (its state now), a room's read entries the last one."""
    last_membership: dict[int, int] = {}
    added: set[int] = set()
    last_read: dict[int, int] = {}
    for entry in entries:
        if entry.room_id is None:
            continue
        if entry.kind in (user_log.ROOM_ADDED, user_log.ROOM_UPDATED, user_log.ROOM_REMOVED):
            last_membership[entry.room_id] = entry.position
            if entry.kind == user_log.ROOM_ADDED:
                added.add(entry.room_id)
            elif entry.kind == user_log.ROOM_REMOVED:
                added.discard(entry.room_id)
        elif entry.kind == user_log.READ:
            last_read[entry.room_id] = entry.position
    rooms = set(last_membership) | set(last_read)
    memberships = {
        m.room_id: m
        for m in Membership.objects.select_related("room", "room__created_by").filter(
            user_id=user.pk, room_id__in=rooms
        )
    }
    notice_ids = [int(e.data.get("id", 0)) for e in entries if e.kind == user_log.NOTIFICATION]
    notices = {n.pk: n for n in Notification.objects.select_related("actor").filter(user_id=user.pk, pk__in=notice_ids)}
    reads = [rid for rid, position in last_read.items() if rid in memberships]
    activity = room_activity([(rid, memberships[rid]) for rid in reads]) if reads else {}
    result: list[LogFrame] = []
    for entry in entries:
        rid = entry.room_id
        if entry.kind == user_log.NOTIFICATION:
            notice = notices.get(int(entry.data.get("id", 0)))
            if notice is not None:
                result.append(
                    LogFrame(entry.position, frames.NOTIFICATION, rid, {"notification": notification_payload(notice)})
                )
        elif rid is None:
            continue
        elif entry.kind == user_log.READ:
            if last_read.get(rid) == entry.position and rid in memberships:
                seen = activity.get(rid)
                unread = seen.unread_count if seen is not None else 0
                body = {"room_id": str(rid), "seq": int(entry.data.get("seq", 0)), "unread_count": unread}
                result.append(LogFrame(entry.position, frames.READ, rid, body))
        elif last_membership.get(rid) == entry.position:
            membership = memberships.get(rid)
            if membership is None:
                reason = entry.data.get("reason") if entry.kind == user_log.ROOM_REMOVED else None
                if reason not in ("left", "removed", "banned"):
                    reason = "removed"
                result.append(
                    LogFrame(entry.position, frames.ROOM_REMOVED, rid, {"room_id": str(rid), "reason": reason})
                )
                continue
            kind = frames.ROOM_ADDED if rid in added else frames.ROOM_UPDATED
            version = _join_version(entries, rid) if kind == frames.ROOM_ADDED else None
            room = room_payload(membership.room, membership)
            result.append(LogFrame(entry.position, kind, rid, {"room": room}, start_version=version))
    return result


def _join_version(entries: list[user_log.LogEntry], room_id: int) -> int | None:
    """The room's head when the user last joined it (None: unknown, start at its head now)."""
    version = None
    for entry in entries:
        if entry.room_id == room_id and entry.kind == user_log.ROOM_ADDED:
            raw = entry.data.get("version")
            version = int(raw) if isinstance(raw, int) else None
    return version
