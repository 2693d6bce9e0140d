from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.db.models.functions import Lower

from core.textfold import fold


class User(AbstractUser):
    display_name = models.CharField(max_length=150, blank=True, default="")
    # Case-folded, accents removed (core/textfold.py): what the people search compares prefixes of.
    username_key = models.CharField(max_length=150, default="", editable=False)
    display_name_key = models.CharField(max_length=150, default="", editable=False)
    email_notifications = models.BooleanField(default=True)
    dnd_until = models.DateTimeField(null=True, blank=True)  # do not disturb until then
    # The storage name of the square avatar (files/avatars.py), "" when there is none. Each upload
    # gets a new random name, so the URL built from it changes with the picture (cached forever).
    avatar_name = models.CharField(max_length=200, blank=True, default="", editable=False)

    class Meta:
        constraints = [
            # "Alice" and "alice" are the same person to everyone reading a room.
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def avatar_url(self) -> str | None:
        return avatar_url(self.pk, self.avatar_name)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # One transaction with what the save signals write: a deactivation or a new password and
        # its access revocation (accounts/receivers.py) commit together or not at all.
        self.username_key = fold(self.username)[:150]
        self.display_name_key = fold(self.display_name)[:150]
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"username", "display_name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "username_key", "display_name_key"}
        with transaction.atomic():
            super().save(*args, **kwargs)


def avatar_url(user_id: int, avatar_name: str) -> str | None:
    """`/api/users/{id}/avatar?v=<version>`: a new picture is a new URL (so a cached one is never stale)."""
    if not avatar_name:
        return None
    version = avatar_name.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"/api/users/{user_id}/avatar?v={version}"


def request_user(request: Any) -> User:
    """The authenticated caller of a DRF view (IsAuthenticated has already run)."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("request_user() needs an authenticated request")
    return user


class AccessEpoch(models.Model):
    """One row: a counter raised, under its row lock, by every revocation (accounts/revocations.py).

    Revocations therefore commit in epoch order, so a reader that has seen epoch N has seen every
    revocation up to N: the property per-process caches need to miss none.
    """

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"access epoch {self.value}"


class AccessRevocation(models.Model):
    """Someone lost access: to one room (`room_id`), or to everything (`room_id` null: deactivated,
    password changed, deleted). Read by every server process within REVOCATION_POLL_SECONDS."""

    epoch = models.BigIntegerField(unique=True)
    user_id = models.BigIntegerField()
    room_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"user {self.user_id} lost {'everything' if self.room_id is None else f'room {self.room_id}'}"


class UserLogHead(models.Model):
    """Per user: the position of the newest entry of their log (accounts/user_log.py), raised under
    this row's lock by every entry, so a user's entries commit in position order."""

    # No foreign key: deleting a user deletes their memberships first, whose removals are logged in
    # the same transaction; accounts/receivers.py drops the log once the user is gone.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+"
    )
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"log of {self.user_id} at {self.position}"


class UserLogEntry(models.Model):
    """One change of what a user sees outside rooms' messages: a room added, changed or lost, the
    read marker moved, a notification made. The user stream (WS /api/ws) replays them on resume."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    position = models.BigIntegerField()
    kind = models.CharField(max_length=20)
    room_id = models.BigIntegerField(null=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "position"], name="user_log_position")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id} at {self.position}"


class Block(models.Model):
    """`blocker` blocked `blocked`: the blocked one cannot open or post in a direct room with them."""

    blocker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocked_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blocker", "blocked"], name="accounts_block_once")]
        indexes = [models.Index(fields=["blocked", "blocker"], name="block_by_blocked")]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"
