from __future__ import annotations

from typing import Any

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

    class Meta:
        constraints = [
            # "Alice" and "alice" are the same person to everyone reading a room.
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

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
