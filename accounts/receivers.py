"""Accounts that lose access say so: deactivation, a new password, deletion (the admin included)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts import revocations, user_log
from accounts.authentication import forget_user
from accounts.models import User

_ACCESS_FIELDS = {"is_active", "password"}


def note_access_change(sender: Any, instance: User, update_fields: Any = None, **_: Any) -> None:
    """pre_save: compare with the stored row, so post_save knows whether access was lost."""
    instance._access_lost = False  # type: ignore[attr-defined]
    if instance.pk is None or (update_fields is not None and not _ACCESS_FIELDS & set(update_fields)):
        return
    stored = User.objects.filter(pk=instance.pk).values_list("is_active", "password").first()
    if stored is None:
        return
    was_active, old_password = stored
    instance._access_lost = (was_active and not instance.is_active) or old_password != instance.password  # type: ignore[attr-defined]


def revoke_if_access_lost(sender: Any, instance: User, **_: Any) -> None:
    """post_save, inside User.save's transaction."""
    if getattr(instance, "_access_lost", False):
        _revoke(instance.pk)


def revoke_deleted(sender: Any, instance: User, **_: Any) -> None:
    _revoke(instance.pk)
    user_log.forget_user(instance.pk)  # after the memberships' removals were logged for it


def _revoke(user_id: int) -> None:
    revocations.record(user_id)
    # This process's cached row goes at once; other processes' within USER_CACHE_SECONDS.
    transaction.on_commit(lambda: forget_user(user_id))
