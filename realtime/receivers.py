"""What the user stream replays, written to users' logs (accounts/user_log.py) by model signals, so
every way of changing a membership or a room (API, admin, cascades) is logged in its transaction."""

from __future__ import annotations

from typing import Any

from accounts import user_log
from messaging import store
from rooms.models import Membership, Room


def log_membership_saved(sender: Any, instance: Membership, created: bool = False, **_: Any) -> None:
    if not created:
        user_log.record([instance.user_id], user_log.ROOM_UPDATED, instance.room_id)
        return
    # The room's head when the member joined: their stream starts the room's messages right after it
    # (None, MongoDB away: at its head when the stream hears of the join).
    version = store.head_version_if_reachable(instance.room_id)
    user_log.record([instance.user_id], user_log.ROOM_ADDED, instance.room_id, {"version": version})


def log_membership_ended(sender: Any, instance: Membership, **_: Any) -> None:
    user_log.record([instance.user_id], user_log.ROOM_REMOVED, instance.room_id, {"reason": instance.removal_reason})


def log_room_changed(sender: Any, instance: Room, created: bool = False, **_: Any) -> None:
    if created:
        return  # its first member's room.added tells of it
    members = Membership.objects.filter(room_id=instance.pk).values_list("user_id", flat=True)
    user_log.record(list(members), user_log.ROOM_UPDATED, instance.pk)
