"""JWT authentication whose user look-up is remembered for a few seconds per process.

Every API request and socket connect authenticates; reading the same user row on each of a
client's requests was one PostgreSQL round trip of every history page, and the largest part of
a socket connect (one socket per open room, reconnects after every network change). A
deactivated user is refused within USER_CACHE_SECONDS; a token issued before the password last
changed is refused at once (its password stamp no longer matches).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from accounts.models import User
from core.expiring import ExpiringMap

_users: ExpiringMap[str, User] = ExpiringMap(max_entries=10_000)


def remembered_user(user_id: Any, load: Callable[[], User | None]) -> User | None:
    """The active user with this id, reused for USER_CACHE_SECONDS, else `load()` (not kept if None).

    Each caller gets its own copy: nothing one request or socket sets on it leaks into another.
    """
    ttl = settings.USER_CACHE_SECONDS
    key = str(user_id)
    user = _users.get(key) if ttl > 0 else None
    if user is None:
        user = load()
        if user is None:
            return None
        _users.put(key, user, ttl)
    return copy.copy(user)


# The claim every token carries: a new password makes every token issued before it worthless,
# as Django does for sessions (tokens are otherwise valid until they expire).
PASSWORD_STAMP_CLAIM = "pwd"


def password_stamp(user: User) -> str:
    return salted_hmac("accounts.token-password-stamp", user.password, algorithm="sha256").hexdigest()[:20]


def token_matches_password(payload: Any, user: User) -> bool:
    return constant_time_compare(str(payload.get(PASSWORD_STAMP_CLAIM, "")), password_stamp(user))


class CachedJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token: Any) -> Any:  # an accounts.User
        user_id = validated_token.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id"))
        load = super().get_user  # raises for unknown or inactive users: nothing is kept then

        def found() -> User:
            user = load(validated_token)
            assert isinstance(user, User)
            return user

        user = remembered_user(user_id, found)
        if user is None or not token_matches_password(validated_token, user):
            raise AuthenticationFailed("The password changed; sign in again.", code="token_not_valid")
        return user


def forget_user(user_id: Any) -> None:
    """Drop a user from this process's cache (tests; deactivation in the same process)."""
    _users.pop(str(user_id))
