"""Room writes: creation, joining, membership and roles. Every rule about roles lives here."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts import user_log
from accounts.blocking import refuse_if_blocked
from accounts.models import User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.ids import parse_positive_id
from core.ratelimit import enforce_for_user
from rooms.audit import audit
from rooms.models import MANAGER_ROLES, AuditAction, Membership, Role, Room, RoomKind
from rooms.sanctions import carry_standing_mute, refuse_if_banned
from rooms.selectors import room_get_visible, room_require_member
from rooms.signals import member_added, read_marker_moved


def room_create(*, creator: User, name: str, description: str = "", is_private: bool = False) -> Membership:
    """The creator's owner membership (its `room` is the new room)."""
    enforce_for_user(creator.pk, "room.create", settings.ROOM_CREATE_RATE_LIMIT)
    with transaction.atomic():
        room = Room.objects.create(name=name, description=description, is_private=is_private, created_by=creator)
        return Membership.objects.create(room=room, user=creator, role=Role.OWNER)


MAX_DIRECT_OTHERS = 8


def direct_room_open(*, actor: User, user_ids: Any) -> tuple[Membership, bool]:
    """The direct room of the actor and 1 to 8 others (the caller's membership, and whether it is
    new). One set of people has one room, whoever asks and however many ask at the same moment:
    the unique `direct_key` decides a race, and the loser answers with the winner's room."""
    enforce_for_user(actor.pk, "room.direct", settings.DIRECT_ROOM_RATE_LIMIT)
    if not isinstance(user_ids, list):
        raise InvalidInput("user_ids must be a list of user ids.", fields={"user_ids": ["A list of 1 to 8 user ids."]})
    parsed = [parse_positive_id(raw) for raw in user_ids]
    wanted = {pk for pk in parsed if pk is not None} - {actor.pk}
    if None in parsed or not 1 <= len(wanted) <= MAX_DIRECT_OTHERS:
        raise InvalidInput(
            f"A direct room is for you and 1 to {MAX_DIRECT_OTHERS} other people.",
            fields={"user_ids": [f"1 to {MAX_DIRECT_OTHERS} other users' ids."]},
        )
    others = {int(pk) for pk in User.objects.filter(pk__in=wanted, is_active=True).values_list("pk", flat=True)}
    if others != wanted:
        raise InvalidInput("No such user.", code="user_not_found", fields={"user_ids": ["No such user."]})
    refuse_if_blocked(actor, others)
    key = "-".join(str(pk) for pk in sorted({*others, actor.pk}))
    existing = _direct_membership(key, actor)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            room = Room.objects.create(name="", kind=RoomKind.DIRECT, is_private=True, created_by=actor, direct_key=key)
            for pk in sorted({*others, actor.pk}):
                Membership.objects.create(room=room, user_id=pk, role=Role.MEMBER)
    except IntegrityError:
        found = _direct_membership(key, actor)  # someone else made it first: theirs is ours
        if found is None:
            raise
        return found, False
    membership = Membership.objects.select_related("room", "room__created_by").get(room=room, user=actor)
    return membership, True


def _direct_membership(key: str, actor: User) -> Membership | None:
    return (
        Membership.objects.select_related("room", "room__created_by")
        .filter(room__direct_key=key, user_id=actor.pk)
        .first()
    )


def refuse_direct(room: Room, what: str) -> None:
    if room.kind == RoomKind.DIRECT:
        raise Forbidden(f"A direct room cannot {what}.", code="direct_room")


def room_update(*, actor: User, room_id: Any, **changes: Any) -> Membership:
    """Rename, describe, or choose who sees edit history: owners and admins only."""
    membership = require_manager(actor, room_id, direct_refusal="be renamed or changed" if changes else None)
    room = membership.room
    fields = [name for name in ROOM_SETTINGS if name in changes and changes[name] != getattr(room, name)]
    if "name" in changes and not str(changes["name"]).strip():
        raise InvalidInput("The name may not be blank.", fields={"name": ["May not be blank."]})
    for name in fields:
        setattr(room, name, changes[name].strip() if name == "name" else changes[name])
    if fields:
        with transaction.atomic():
            room.save(update_fields=fields)
            audit(
                AuditAction.SETTING_CHANGE,
                actor=actor,
                room_id=room.pk,
                data={name: getattr(room, name) for name in fields},
            )
    return membership


ROOM_SETTINGS = ("name", "description", "edit_history_visibility", "slow_mode_seconds")


def room_join(*, user: User, room_id: Any) -> Membership:
    """The caller's membership, its `room` already loaded (with `created_by`)."""
    room, membership = room_get_visible(user, room_id)
    if membership is None:
        if room.is_private:  # unreachable for non-members (404 above), kept for clarity of the rule
            raise NotFound("No such room.", code="room_not_found")
        refuse_if_banned(room.pk, user.pk)
        membership, created = Membership.objects.get_or_create(room=room, user=user, defaults={"role": Role.MEMBER})
        if created:
            carry_standing_mute(membership)
    membership.room = room  # joining twice is harmless
    return membership


def require_manager(actor: User, room_id: Any, *, direct_refusal: str | None = None) -> Membership:
    """The actor's membership if they own or administer the room; with `direct_refusal`, a direct
    room refuses first (nobody manages one), from the same read."""
    membership = room_require_member(actor, room_id)
    if direct_refusal is not None:
        refuse_direct(membership.room, direct_refusal)
    if membership.role not in MANAGER_ROLES:
        raise Forbidden("Only the room's owners and admins can do this.", code="not_a_manager")
    return membership


def _parse_role(raw: Any) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise InvalidInput("Unknown role.", fields={"role": ["Must be one of owner, admin, member."]})


def _other_owner_exists(room_id: int, excluding_user_id: int) -> bool:
    return Membership.objects.filter(room_id=room_id, role=Role.OWNER).exclude(user_id=excluding_user_id).exists()


def member_add(
    *, actor: User, room_id: Any, user_id: Any = None, username: Any = None, role: Any = Role.MEMBER
) -> Membership:
    actor_membership = require_manager(actor, room_id, direct_refusal="be given members")
    new_role = _parse_role(role)
    if new_role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise Forbidden("Only an owner can make owners.", code="owner_required")
    target = _user_by_id(user_id) if user_id is not None else _user_by_name(username)
    refuse_if_banned(actor_membership.room_id, target.pk)
    enforce_for_user(actor.pk, "room.member_add", settings.INVITE_RATE_LIMIT)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(room_id=actor_membership.room_id, user=target, role=new_role)
            carry_standing_mute(membership)
            member_added.send(sender=Membership, membership=membership, actor_id=actor.pk)
            return membership
    except IntegrityError:
        raise Conflict("That user is already a member.", code="already_member")


def member_set_role(*, actor: User, room_id: Any, user_id: Any, role: Any) -> Membership:
    actor_membership = require_manager(actor, room_id)
    new_role = _parse_role(role)
    rid = actor_membership.room_id
    with transaction.atomic():
        target = _membership_for_update(rid, user_id)
        if actor_membership.role != Role.OWNER and Role.OWNER in (new_role, target.role):
            raise Forbidden("Only an owner can make or unmake owners.", code="owner_required")
        if target.role == Role.OWNER and new_role != Role.OWNER and not _other_owner_exists(rid, target.user_id):
            raise Conflict("A room always keeps an owner; name another owner first.", code="last_owner")
        if target.role != new_role:
            audit(
                AuditAction.ROLE_CHANGE,
                actor=actor,
                room_id=rid,
                target_user_id=target.user_id,
                data={"from": target.role, "to": new_role},
            )
        target.role = new_role
        target.save(update_fields=["role"])
    return target


def member_remove(*, actor: User, room_id: Any, user_id: Any) -> None:
    actor_membership = room_require_member(actor, room_id)
    rid = actor_membership.room_id
    with transaction.atomic():
        target = _membership_for_update(rid, user_id)
        leaving = target.user_id == actor.pk
        if not leaving:
            if actor_membership.role not in MANAGER_ROLES:
                raise Forbidden("Only the room's owners and admins can remove members.", code="not_a_manager")
            if target.role == Role.OWNER and actor_membership.role != Role.OWNER:
                raise Forbidden("Only an owner can remove an owner.", code="owner_required")
        if target.role == Role.OWNER and not _other_owner_exists(rid, target.user_id):
            raise Conflict("A room always keeps an owner; name another owner first.", code="last_owner")
        # rooms/receivers.py revokes the access in this transaction: the removed user's sockets
        # close at once (channel layer), at the latest within REVOCATION_POLL_SECONDS.
        target.removal_reason = "left" if leaving else "removed"  # for the user's log (realtime/receivers.py)
        target.delete()
        if not leaving:
            audit(AuditAction.MEMBER_REMOVE, actor=actor, room_id=rid, target_user_id=target.user_id)


def mark_read(*, user: User, room_id: Any, seq: int) -> None:
    membership = room_require_member(user, room_id)
    # Never move the marker backwards: two devices may report out of order.
    with transaction.atomic():
        if Membership.objects.filter(pk=membership.pk, last_read_seq__lt=seq).update(last_read_seq=seq):
            user_log.record([user.pk], user_log.READ, membership.room_id, {"seq": seq})
            read_marker_moved.send(sender=Membership, room_id=membership.room_id, user_id=user.pk, seq=seq)


def room_settings_update(*, user: User, room_id: Any, changes: dict[str, Any]) -> Membership:
    """The caller's own notification level and mute for the room (their other devices hear of it
    through the membership's room.updated)."""
    membership = room_require_member(user, room_id)
    if not changes:
        return membership
    with transaction.atomic():
        row = Membership.objects.select_for_update().get(pk=membership.pk)
        for name, value in changes.items():
            setattr(row, name, value)
        row.save(update_fields=list(changes))
    row.room = membership.room
    return row


def _membership_for_update(room_id: int, user_id: Any) -> Membership:
    uid = parse_positive_id(user_id)
    if uid is None:
        raise NotFound("No such user.", code="user_not_found")
    # Row locks on the room's owners serialise concurrent demotions, so two owners
    # demoting each other cannot leave the room without one.
    list(Membership.objects.select_for_update().filter(room_id=room_id, role=Role.OWNER).values_list("id"))
    target = Membership.objects.select_for_update().filter(room_id=room_id, user_id=uid).first()
    if target is None:
        raise NotFound("That user is not a member of this room.", code="member_not_found")
    return target


def _user_by_name(raw: Any) -> User:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("Give user_id or username.", fields={"user_id": ["Required (or username)."]})
    user = User.objects.filter(username__iexact=raw.strip(), is_active=True).first()
    if user is None:
        raise InvalidInput("No such user.", code="user_not_found", fields={"username": ["No such user."]})
    return user


def _user_by_id(raw: Any) -> User:
    uid = parse_positive_id(raw)
    if uid is None:
        raise InvalidInput("Invalid user id.", fields={"user_id": ["Must be a user id."]})
    user = User.objects.filter(pk=uid, is_active=True).first()
    if user is None:
        raise InvalidInput("No such user.", code="user_not_found", fields={"user_id": ["No such user."]})
    return user
