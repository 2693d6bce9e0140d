"""Invite links: owners and admins make codes; anyone signed in who holds one may look at the room
and join it, private rooms included, until the code is revoked, expires or is used up.

A use is counted under the invite's row lock, in the transaction that adds the membership: two
people accepting the last use at once get one membership between them, never two.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.serializers import UserPayload, user_payload
from core.errors import InvalidInput, NotFound
from core.ratelimit import enforce_for_user
from rooms.models import Invite, Membership, Role, Room
from rooms.sanctions import carry_standing_mute, refuse_if_banned
from rooms.services import refuse_direct, require_manager

MAX_EXPIRY_SECONDS = 365 * 24 * 3600
MAX_USES = 1_000_000


class InvitePayload(TypedDict):
    code: str
    url: str
    room_id: str
    created_by: UserPayload
    expires_at: str | None
    max_uses: int | None
    uses: int


class InvitePreview(TypedDict):
    room: dict[str, Any]


def invite_path(code: str) -> str:
    """The web page that shows the invitation (chatproject/urls.py)."""
    return f"/invite/{code}/"


def invite_payload(invite: Invite, site: str) -> InvitePayload:
    """`site`: the scheme and host the caller reached us by, for the link's `url`."""
    return {
        "code": invite.code,
        "url": site.rstrip("/") + invite_path(invite.code),
        "room_id": str(invite.room_id),
        "created_by": user_payload(invite.created_by),
        "expires_at": invite.expires_at.isoformat() if invite.expires_at else None,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
    }


def _bounded_int(raw: Any, field: str, low: int, high: int) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise InvalidInput(f"{field} must be a whole number from {low} to {high}.", fields={field: [f"{low}-{high}"]})
    return raw


def invite_create(*, actor: User, room_id: Any, max_uses: Any = None, expires_in: Any = None) -> Invite:
    membership = require_manager(actor, room_id, direct_refusal="be joined by invitation")
    uses = _bounded_int(max_uses, "max_uses", 1, MAX_USES)
    seconds = _bounded_int(expires_in, "expires_in", 60, MAX_EXPIRY_SECONDS)
    enforce_for_user(actor.pk, "room.invite_create", settings.INVITE_LINK_RATE_LIMIT)
    return Invite.objects.create(
        code=secrets.token_urlsafe(16),  # 128 random bits: a code cannot be guessed
        room_id=membership.room_id,
        created_by=actor,
        max_uses=uses,
        expires_at=timezone.now() + timedelta(seconds=seconds) if seconds is not None else None,
    )


def _usable() -> Q:
    now = timezone.now()
    return (
        Q(revoked_at__isnull=True)
        & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        & (Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
    )


def invites_of_room(*, actor: User, room_id: Any) -> QuerySet[Invite]:
    """The room's usable invites, newest first (owners and admins)."""
    membership = require_manager(actor, room_id)
    return (
        Invite.objects.filter(_usable(), room_id=membership.room_id)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )


def invite_revoke(*, actor: User, room_id: Any, code: Any) -> None:
    membership = require_manager(actor, room_id)
    revoked = Invite.objects.filter(room_id=membership.room_id, code=str(code)[:64], revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not revoked:
        raise NotFound("No such invite.", code="invite_not_found")


def _usable_invite(code: Any, *, lock: bool = False) -> Invite:
    if not isinstance(code, str) or not code or len(code) > 64:
        raise NotFound("No such invite.", code="invite_not_found")
    invites = Invite.objects.select_related("room", "room__created_by").filter(_usable(), code=code)
    invite = (invites.select_for_update(of=("self",)) if lock else invites).first()
    if invite is None:
        raise NotFound("No such invite.", code="invite_not_found")
    return invite


def invite_preview(*, user: User, code: Any) -> InvitePreview:
    enforce_for_user(user.pk, "room.invite_lookup", settings.INVITE_LOOKUP_RATE_LIMIT)
    room = _usable_invite(code).room
    summary = {
        "id": str(room.pk),
        "name": room.name,
        "description": room.description,
        "member_count": room.member_count,
    }
    return {"room": summary}


def invite_accept(*, user: User, code: Any) -> Membership:
    """Join the invite's room (a member already: their membership, and no use is counted)."""
    enforce_for_user(user.pk, "room.invite_lookup", settings.INVITE_LOOKUP_RATE_LIMIT)
    with transaction.atomic():
        invite = _usable_invite(code, lock=True)
        room: Room = invite.room
        refuse_direct(room, "be joined by invitation")
        refuse_if_banned(room.pk, user.pk)
        membership, created = Membership.objects.get_or_create(room=room, user=user, defaults={"role": Role.MEMBER})
        if created:
            Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
            carry_standing_mute(membership)
    membership.room = room
    return membership
