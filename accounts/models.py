from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    display_name = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        constraints = [
            # "Alice" and "alice" are the same person to everyone reading a room.
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username


def request_user(request: Any) -> User:
    """The authenticated caller of a DRF view (IsAuthenticated has already run)."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("request_user() needs an authenticated request")
    return user
