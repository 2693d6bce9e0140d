from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from core.textfold import fold


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class EditHistoryVisibility(models.TextChoices):
    EVERYONE = "everyone"
    MODERATORS = "moderators"


class RoomKind(models.TextChoices):
    ROOM = "room"
    DIRECT = "direct"


class Room(models.Model):
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=6, choices=RoomKind.choices, default=RoomKind.ROOM)
    # A direct room's people, as their sorted ids ("3-8-21"): unique, so one set of people has one
    # room however many ask at once (the database decides, not a read before the write).
    direct_key = models.CharField(max_length=200, null=True, blank=True, unique=True, editable=False)
    description = models.TextField(blank=True, default="", max_length=2000)
    is_private = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    edit_history_visibility = models.CharField(
        max_length=12, choices=EditHistoryVisibility.choices, default=EditHistoryVisibility.EVERYONE
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="rooms")
    # Kept with every membership added or ended (rooms/receivers.py): the directory's order.
    member_count = models.PositiveIntegerField(default=0, editable=False)
    # Name and description, case-folded without accents (core/textfold.py): what the directory matches.
    search_key = models.TextField(default="", editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["is_private", "name"]),
            # The directory: public rooms, most members first.
            models.Index(
                fields=["-member_count", "id"], name="room_directory_order", condition=models.Q(is_private=False)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.search_key = fold(f"{self.name}\n{self.description}")
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"name", "description"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "search_key"}
        super().save(*args, **kwargs)


class NotifyLevel(models.TextChoices):
    ALL = "all"
    MENTIONS = "mentions"
    NOTHING = "nothing"


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    last_read_seq = models.BigIntegerField(default=0)
    # What the member is told of; "" = the default of the room's kind (notify_level).
    notify = models.CharField(max_length=8, choices=NotifyLevel.choices, blank=True, default="")
    # A muted room makes no notices (and no badge), but its unread_count stays true.
    muted = models.BooleanField(default=False)
    # Not stored: why a deletion ends it, for the user's log ("left", "removed" or "banned").
    removal_reason = "removed"

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="rooms_membership_room_user_unique")]
        indexes = [models.Index(fields=["room", "joined_at", "id"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.role})"

    def notify_level(self, room_kind: str) -> str:
        if self.notify:
            return self.notify
        return NotifyLevel.ALL if room_kind == RoomKind.DIRECT else NotifyLevel.MENTIONS


class Invite(models.Model):
    """A link that lets whoever holds it join the room (private rooms too) until it is revoked,
    expires or is used up. `uses` only grows, under the row's lock (rooms.invites)."""

    code = models.CharField(max_length=32, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invites")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["room", "-created_at"], name="invite_room_newest")]

    def __str__(self) -> str:
        return f"invite to {self.room_id}"
