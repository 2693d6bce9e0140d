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
    # Members who are not moderators post at most once in this many seconds (0: off).
    slow_mode_seconds = models.PositiveIntegerField(default=0)
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
    # A moderator's mute (rooms/moderation.py), copied from its RoomMute so a post reads it with the
    # membership it reads anyway; FOREVER for a mute without end.
    posting_muted_until = models.DateTimeField(null=True, blank=True)
    # Not stored: why a deletion ends it, for the user's log ("left", "removed" or "banned").
    removal_reason = "removed"

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="rooms_membership_room_user_unique")]
        indexes = [
            models.Index(fields=["room", "joined_at", "id"]),
            # Who asked for every post of a room (notifications/services.py): a few rows of a big room.
            models.Index(fields=["room"], name="membership_notify_all", condition=models.Q(notify="all")),
        ]

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


class RoomBan(models.Model):
    """A user kept out of a room (they cannot join, be added or accept an invitation) until
    `expires_at` (None: until lifted). Expiry is read from the end time, so it is exact; beat only
    clears the old rows."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="room_ban_once")]

    def __str__(self) -> str:
        return f"{self.user_id} banned from {self.room_id}"


class RoomMute(models.Model):
    """A member who still reads but cannot post, edit or react until `expires_at` (None: until lifted).
    It outlives leaving and joining again (the new membership takes it over)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="mutes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="room_mute_once")]

    def __str__(self) -> str:
        return f"{self.user_id} muted in {self.room_id}"


class AuditAction(models.TextChoices):
    BAN = "ban"
    UNBAN = "unban"
    MUTE = "mute"
    UNMUTE = "unmute"
    ROLE_CHANGE = "role_change"
    MEMBER_REMOVE = "member_remove"
    MESSAGE_DELETE = "message_delete"
    SETTING_CHANGE = "setting_change"
    REPORT_RESOLVE = "report_resolve"
    USER_DEACTIVATE = "user_deactivate"


class AuditEntry(models.Model):
    """One moderation action, written in the same transaction as the action; nothing in the API
    changes or deletes it (the admin shows it read-only)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message_id = models.CharField(max_length=24, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)  # what changed: {"role": "admin"}, {"slow_mode_seconds": 30}
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["room", "-created_at", "-id"], name="audit_room_newest")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id}"
