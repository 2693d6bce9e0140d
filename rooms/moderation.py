"""Moderation of rooms: bans, mutes, slow mode, the audit log, and staff deactivating an account.

Moderators of a room are its owners and admins; staff moderate every room. Owners cannot be
banned or muted; admins cannot ban or mute admins. Every action writes its AuditEntry in the
action's own transaction. Ends (`expires_at`) are read at the time of each check, so a ban or a
mute ends exactly on time without a cron job; beat only clears the old rows.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from core.errors import ApiError, Forbidden, InvalidInput, NotFound
from core.ids import parse_positive_id
from rooms.audit import audit
from rooms.models import MANAGER_ROLES, AuditAction, AuditEntry, Membership, Role, Room, RoomBan, RoomMute
from rooms.sanctions import FOREVER, active
from rooms.selectors import membership_get, parse_room_id
from rooms.services import refuse_direct, require_manager

logger = logging.getLogger(__name__)

MAX_DURATION = 10 * 365 * 24 * 3600
REASON_MAX = 500


class SlowMode(ApiError):
    status = 429
    code = "slow_mode"


def is_moderator(user: User, membership: Membership | None) -> bool:
    return user.is_staff or (membership is not None and membership.role in MANAGER_ROLES)


def moderated_room(actor: User, room_id: Any, *, direct_refusal: str | None = None) -> tuple[Room, Membership | None]:
    """The room and the actor's membership, if the actor moderates it (staff: every room); with
    `direct_refusal`, a direct room (which nobody moderates) is refused first."""
    if actor.is_staff:
        rid = parse_room_id(room_id)
        room = Room.objects.filter(pk=rid).first()
        if room is None:
            raise NotFound("No such room.", code="room_not_found")
        if direct_refusal is not None:
            refuse_direct(room, direct_refusal)
        return room, membership_get(actor, rid)
    membership = require_manager(actor, room_id, direct_refusal=direct_refusal)
    return membership.room, membership


def _target(raw_user_id: Any) -> User:
    uid = parse_positive_id(raw_user_id)
    if uid is None:
        raise InvalidInput("Give the user's id.", fields={"user_id": ["Must be a user id."]})
    user = User.objects.filter(pk=uid).first()
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


def _check_rank(
    actor: User, actor_membership: Membership | None, target: User, target_role: str | None, what: str
) -> None:
    if target.pk == actor.pk:
        raise InvalidInput(f"You cannot {what} yourself.", fields={"user_id": [f"You cannot {what} yourself."]})
    if target_role == Role.OWNER:
        raise Forbidden(
            f"Owners cannot be {what}ned." if what == "ban" else "Owners cannot be muted.", code="owner_protected"
        )
    if target.is_staff and not actor.is_staff:
        raise Forbidden("Only staff moderate staff.", code="staff_protected")
    actor_role = actor_membership.role if actor_membership is not None else None
    if not actor.is_staff and actor_role == Role.ADMIN and target_role == Role.ADMIN:
        raise Forbidden(f"Admins cannot {what} admins: ask an owner.", code="admin_protected")


def _ends(duration_seconds: Any, now: datetime) -> datetime | None:
    if duration_seconds is None:
        return None
    if (
        isinstance(duration_seconds, bool)
        or not isinstance(duration_seconds, int)
        or not 1 <= duration_seconds <= MAX_DURATION
    ):
        raise InvalidInput(
            "duration_seconds must be a whole number of seconds from 1 to ten years (or absent: until lifted).",
            fields={"duration_seconds": ["1 to 315360000 seconds."]},
        )
    return now + timedelta(seconds=duration_seconds)


def _reason(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > REASON_MAX:
        raise InvalidInput(f"reason must be text of at most {REASON_MAX} characters.", fields={"reason": ["Too long."]})
    return raw.strip()


# --- bans ---------------------------------------------------------------------------------------


def ban_user(*, actor: User, room_id: Any, user_id: Any, reason: Any = "", duration_seconds: Any = None) -> RoomBan:
    """Ban and remove: the member's sockets (room socket and user stream, every process) stop
    receiving at once through the removal's revocation."""
    room, actor_membership = moderated_room(actor, room_id, direct_refusal="have bans")
    target = _target(user_id)
    why, now = _reason(reason), timezone.now()
    ends = _ends(duration_seconds, now)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(room=room, user=target).first()
        _check_rank(actor, actor_membership, target, membership.role if membership else None, "ban")
        ban, _ = RoomBan.objects.update_or_create(
            room=room, user=target, defaults={"created_by": actor, "reason": why, "expires_at": ends, "created_at": now}
        )
        if membership is not None:
            membership.removal_reason = "banned"  # the user's log says why (room.removed)
            membership.delete()
        audit(
            AuditAction.BAN,
            actor=actor,
            room_id=room.pk,
            target_user_id=target.pk,
            reason=why,
            data={"expires_at": ends.isoformat() if ends else None},
        )
    return ban


def unban_user(*, actor: User, room_id: Any, user_id: Any) -> None:
    room, _ = moderated_room(actor, room_id)
    target = _target(user_id)
    with transaction.atomic():
        deleted, _ = active(RoomBan.objects.filter(room=room, user=target)).delete()
        if not deleted:
            raise NotFound("That user is not banned here.", code="ban_not_found")
        audit(AuditAction.UNBAN, actor=actor, room_id=room.pk, target_user_id=target.pk)


def bans_of_room(*, actor: User, room_id: Any) -> QuerySet[RoomBan]:
    room, _ = moderated_room(actor, room_id)
    return active(RoomBan.objects.filter(room=room)).select_related("user").order_by("-created_at", "-id")


# --- mutes --------------------------------------------------------------------------------------


def mute_user(*, actor: User, room_id: Any, user_id: Any, duration_seconds: Any = None) -> RoomMute:
    room, actor_membership = moderated_room(actor, room_id, direct_refusal="have mutes")
    target = _target(user_id)
    now = timezone.now()
    ends = _ends(duration_seconds, now)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(room=room, user=target).first()
        if membership is None:
            raise NotFound("That user is not a member of this room.", code="member_not_found")
        _check_rank(actor, actor_membership, target, membership.role, "mute")
        mute, _ = RoomMute.objects.update_or_create(
            room=room, user=target, defaults={"created_by": actor, "expires_at": ends, "created_at": now}
        )
        Membership.objects.filter(pk=membership.pk).update(posting_muted_until=ends or FOREVER)
        audit(
            AuditAction.MUTE,
            actor=actor,
            room_id=room.pk,
            target_user_id=target.pk,
            data={"expires_at": ends.isoformat() if ends else None},
        )
    return mute


def unmute_user(*, actor: User, room_id: Any, user_id: Any) -> None:
    room, _ = moderated_room(actor, room_id)
    target = _target(user_id)
    with transaction.atomic():
        deleted, _ = active(RoomMute.objects.filter(room=room, user=target)).delete()
        if not deleted:
            raise NotFound("That user is not muted here.", code="mute_not_found")
        Membership.objects.filter(room=room, user=target).update(posting_muted_until=None)
        audit(AuditAction.UNMUTE, actor=actor, room_id=room.pk, target_user_id=target.pk)


def mutes_of_room(*, actor: User, room_id: Any) -> QuerySet[RoomMute]:
    room, _ = moderated_room(actor, room_id)
    return active(RoomMute.objects.filter(room=room)).select_related("user").order_by("-created_at", "-id")


# --- slow mode ----------------------------------------------------------------------------------


def refuse_if_too_soon(user: User, membership: Membership) -> None:
    """Slow mode: members who are not moderators post at most once per `slow_mode_seconds`. A room's
    own rule, so it holds whatever RATELIMIT_ENABLE says; a cache outage lets posts through."""
    seconds = membership.room.slow_mode_seconds
    if not seconds or is_moderator(user, membership):
        return
    key = f"slow-mode:{membership.room_id}:{user.pk}"
    now = time.time()
    try:
        if cache.add(key, now + seconds, timeout=seconds):
            return
        free_at = cache.get(key)
    except Exception:
        logger.warning("slow mode of room %s not checked: the cache is away", membership.room_id, exc_info=True)
        return
    left = (free_at - now) if isinstance(free_at, float) else seconds
    raise SlowMode(f"Slow mode: one message every {seconds} s in this room.", retry_after=max(1, math.ceil(left)))


# --- staff --------------------------------------------------------------------------------------


def deactivate_user(*, actor: User, user_id: Any) -> None:
    """Staff only: every token stops working and every socket closes (accounts/receivers.py revokes
    on the save), and the audit log says who did it."""
    if not actor.is_staff:
        raise Forbidden("Only staff can deactivate accounts.", code="staff_only")
    target = _target(user_id)
    if target.pk == actor.pk:
        raise InvalidInput("You cannot deactivate yourself.", fields={"user_id": ["Not yourself."]})
    if not target.is_active:
        return
    with transaction.atomic():
        target.is_active = False
        target.save(update_fields=["is_active"])
        audit(AuditAction.USER_DEACTIVATE, actor=actor, room_id=None, target_user_id=target.pk)


def audit_of_room(*, actor: User, room_id: Any) -> QuerySet[AuditEntry]:
    room, _ = moderated_room(actor, room_id)
    return AuditEntry.objects.filter(room=room).select_related("actor", "target_user").order_by("-created_at", "-id")


def forget_ended(now: datetime | None = None) -> int:
    """Beat: clear bans and mutes that have ended (their ends were already honoured when read)."""
    moment = now or timezone.now()
    bans, _ = RoomBan.objects.filter(expires_at__lte=moment).delete()
    mutes, _ = RoomMute.objects.filter(expires_at__lte=moment).delete()
    Membership.objects.filter(posting_muted_until__lte=moment).update(posting_muted_until=None)
    return bans + mutes
