"""JWT authentication whose user look-up is remembered for a few seconds per process.

Every API request authenticates; reading the same user row on each of a client's requests was
one PostgreSQL round trip of every history page. A deactivated user is refused within
USER_CACHE_SECONDS (access tokens themselves live much longer and are not revocable).
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from django.conf import settings
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import User

_MAX_ENTRIES = 10_000
_lock = threading.Lock()
_users: dict[Any, tuple[float, User]] = {}


class CachedJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token: Any) -> Any:  # an accounts.User
        ttl = settings.USER_CACHE_SECONDS
        user_id = validated_token.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id"))
        now = time.monotonic()
        with _lock:
            cached = _users.get(user_id)
        if ttl > 0 and cached is not None and cached[0] > now:
            user = cached[1]
        else:
            found = super().get_user(validated_token)  # raises for unknown or inactive users
            assert isinstance(found, User)
            user = found
            if ttl > 0:
                with _lock:
                    if len(_users) >= _MAX_ENTRIES:
                        _users.clear()
                    _users[user_id] = (now + ttl, user)
        # Each request gets its own copy: nothing one request sets on it leaks into another.
        return copy.copy(user)


def forget_user(user_id: Any) -> None:
    """Drop a user from this process's cache (tests; deactivation in the same process)."""
    with _lock:
        _users.pop(user_id, None)
        _users.pop(str(user_id), None)
