"""A membership that ends, however it ends (API, admin, a deleted room or user), revokes access."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from accounts import revocations
from rooms.models import Membership, Room


def note_membership_move(sender: Any, instance: Membership, update_fields: Any = None, **_: Any) -> None:
    """pre_save: a membership given another room or user in the admin ends the old one."""
    if instance.pk is None or update_fields is not None:
        return
    stored = Membership.objects.filter(pk=instance.pk).values_list("room_id", "user_id").first()
    if stored is not None and stored != (instance.room_id, instance.user_id):
        revocations.record(stored[1], stored[0])


def revoke_membership(sender: Any, instance: Membership, **_: Any) -> None:
    """post_delete, inside the deletion's transaction."""
    revocations.record(instance.user_id, instance.room_id)
    Room.objects.filter(pk=instance.room_id, member_count__gt=0).update(member_count=F("member_count") - 1)


def count_new_member(sender: Any, instance: Membership, created: bool = False, **_: Any) -> None:
    """post_save: one more member, in the same transaction as the membership."""
    if created:
        Room.objects.filter(pk=instance.room_id).update(member_count=F("member_count") + 1)
