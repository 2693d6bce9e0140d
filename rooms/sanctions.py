"""What bans and mutes forbid, asked by the paths that create memberships and post (rooms/services.py,
rooms/invites.py, messaging/services.py); rooms/moderation.py makes and lifts them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import Forbidden
from rooms.models import Membership, RoomBan, RoomMute

FOREVER = datetime(9999, 12, 31, tzinfo=UTC)  # a mute without end, as Membership.posting_muted_until


def active(query: QuerySet[Any], now: datetime | None = None) -> QuerySet[Any]:
    """Bans or mutes still in force: no end, or an end still to come."""
    return query.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now()))


def refuse_if_banned(room_id: int, user_id: int) -> None:
    """Joining, being added and accepting an invitation all ask this (one indexed read)."""
    if active(RoomBan.objects.filter(room_id=room_id, user_id=user_id)).exists():
        raise Forbidden("You are banned from this room.", code="banned")


def carry_standing_mute(membership: Membership) -> None:
    """A new membership takes over a mute still in force: leaving and joining again ends nothing."""
    found = list(
        active(RoomMute.objects.filter(room_id=membership.room_id, user_id=membership.user_id)).values_list(
            "expires_at", flat=True
        )[:1]
    )
    if found:
        until = found[0] or FOREVER
        Membership.objects.filter(pk=membership.pk).update(posting_muted_until=until)
        membership.posting_muted_until = until


def refuse_if_muted(membership: Membership) -> None:
    """Posts, edits and reactions: read from the membership the caller's request read anyway."""
    until = membership.posting_muted_until
    if until is not None and until > timezone.now():
        raise Forbidden("A moderator muted you in this room.", code="muted")
