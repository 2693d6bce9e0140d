"""Notices for what lower apps announce (connected in notifications/apps.py)."""

from __future__ import annotations

from typing import Any

from notifications.services import mark_read_up_to, notify_invite
from rooms.models import Membership


def on_member_added(sender: Any, *, membership: Membership, actor_id: int, **_: Any) -> None:
    notify_invite(user_id=membership.user_id, room_id=membership.room_id, actor_id=actor_id)


def on_read_marker_moved(sender: Any, *, room_id: int, user_id: int, seq: int, **_: Any) -> None:
    mark_read_up_to(user_id=user_id, room_id=room_id, seq=seq)
