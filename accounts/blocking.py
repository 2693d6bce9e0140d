"""Blocking: a person one blocked cannot open a direct room with one, nor post in one they share
(403 `blocked`). Public rooms are not affected: blocking hides nobody from a team's rooms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from accounts.models import Block, User
from core.errors import Forbidden, InvalidInput, NotFound
from core.ids import parse_positive_id


def _other_user(actor: User, raw_id: Any) -> User:
    pk = parse_positive_id(raw_id)
    if pk is None:
        raise NotFound("No such user.", code="user_not_found")
    if pk == actor.pk:
        raise InvalidInput("You cannot block yourself.", fields={"user_id": ["Not yourself."]})
    target = User.objects.filter(pk=pk).first()
    if target is None:
        raise NotFound("No such user.", code="user_not_found")
    return target


def block(*, actor: User, user_id: Any) -> None:
    """Idempotent: blocking twice is one block."""
    Block.objects.get_or_create(blocker=actor, blocked=_other_user(actor, user_id))


def unblock(*, actor: User, user_id: Any) -> None:
    Block.objects.filter(blocker=actor, blocked=_other_user(actor, user_id)).delete()


def blocked_by(actor: User) -> QuerySet[User]:
    """The people the actor blocked, by name."""
    return User.objects.filter(blocked_by__blocker=actor).order_by("username")


def refuse_if_blocked(actor: User, others: Iterable[int]) -> None:
    """403 `blocked` when any of `others` blocked the actor (one indexed query)."""
    if Block.objects.filter(blocked_id=actor.pk, blocker_id__in=list(others)).exists():
        raise Forbidden("Someone in this conversation has blocked you.", code="blocked")


def refuse_if_blocked_in_room(actor: User, room_id: int) -> None:
    """403 `blocked` when a member of the room blocked the actor (for direct rooms; one query)."""
    if Block.objects.filter(blocked_id=actor.pk, blocker__memberships__room_id=room_id).exists():
        raise Forbidden("Someone in this conversation has blocked you.", code="blocked")
