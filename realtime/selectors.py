"""The reads sockets make, run off the event loop (core.blocking.off_loop)."""

from __future__ import annotations

from django.conf import settings

from accounts.models import User
from core.expiring import ExpiringMap
from messaging import selectors
from messaging.payloads import message_payloads
from realtime import frames
from rooms.models import Membership
from rooms.selectors import room_has_at_most


def changes_as_frames(
    room_id: int, after: int, upto: int, known: int
) -> list[tuple[frames.MessageNewFrame | frames.MessageUpdatedFrame, int]]:
    """Frames for the changes in (after, upto]; a message posted after `known` is new to the client."""
    changed = selectors.changes_since(room_id, after, upto)
    payloads = message_payloads(changed)
    result: list[tuple[frames.MessageNewFrame | frames.MessageUpdatedFrame, int]] = []
    for message, payload in zip(changed, payloads, strict=True):
        is_new = message.created_version > known
        frame = frames.message_new(payload) if is_new else frames.message_updated(payload)
        result.append((frame, message.version))
    return result


# room id -> small?: a join storm into one room asks PostgreSQL once per WS_TICK_SECONDS, not
# once per socket (it was an eighth of a connect's time in a storm).
_room_sizes: ExpiringMap[int, bool] = ExpiringMap(max_entries=50_000)


def room_is_small(room_id: int) -> bool:
    """At most WS_PRESENCE_PUSH_LIMIT members, counted no further than that (a bounded query)."""
    known = _room_sizes.get(room_id)
    if known is not None:
        return known
    small = room_has_at_most(room_id, settings.WS_PRESENCE_PUSH_LIMIT)
    _room_sizes.put(room_id, small, settings.WS_TICK_SECONDS)
    return small


def users_by_id(ids: set[int]) -> list[User]:
    return list(User.objects.filter(pk__in=ids))


def presence_room_ids(user_id: int) -> list[int]:
    """The user's rooms small enough to push presence in (one query on the room's member count)."""
    return list(
        Membership.objects.filter(user_id=user_id, room__member_count__lte=settings.WS_PRESENCE_PUSH_LIMIT)
        .values_list("room_id", flat=True)
        .order_by()
    )


def co_member_ids(user_id: int, room_ids: list[int]) -> list[int]:
    """The other people in `room_ids` (the user's small rooms: whose presence the stream tells)."""
    return list(
        Membership.objects.filter(room_id__in=room_ids)
        .exclude(user_id=user_id)
        .values_list("user_id", flat=True)
        .distinct()
        .order_by()
    )
