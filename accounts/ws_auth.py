"""Who is opening a WebSocket: bearer header, single-use ticket, or the session cookie.

Plain sync functions; the consumer calls them through `core.blocking.off_loop`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.core.cache import cache
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import remembered_user, token_matches_password
from accounts.models import User
from core.raw_http import scope_header

TICKET_TTL_SECONDS = 60
_TICKET_PREFIX = "ws-ticket:"


@dataclass(frozen=True)
class SocketIdentity:
    user: User
    method: str  # "bearer" | "ticket" | "session"
    expires_at: datetime | None  # when the credential stops being valid (token, ticket, session)


class SocketAuthError(Exception):
    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


def ticket_issue(user: User, expires_at: datetime | None) -> str:
    ticket = secrets.token_urlsafe(32)
    cache.set(
        _TICKET_PREFIX + ticket,
        {"user_id": user.pk, "exp": expires_at.timestamp() if expires_at else None},
        TICKET_TTL_SECONDS,
    )
    return ticket


def _ticket_consume(ticket: str) -> tuple[int, datetime | None] | None:
    key = _TICKET_PREFIX + ticket
    data = cache.get(key)
    # `delete` answers whether this caller removed it: of two racing uses, only one wins.
    if not isinstance(data, dict) or not cache.delete(key):
        return None
    exp = data.get("exp")
    return int(data["user_id"]), datetime.fromtimestamp(exp, UTC) if exp else None


def _active_user(user_id: Any) -> User | None:
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        return None
    return remembered_user(pk, lambda: User.objects.filter(pk=pk, is_active=True).first())


def _from_bearer(raw: str) -> SocketIdentity:
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except TokenError:
        raise SocketAuthError(4401, "invalid or expired token")
    user = _active_user(token.payload.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id")))
    if user is None:
        raise SocketAuthError(4401, "unknown user")
    if not token_matches_password(token.payload, user):
        raise SocketAuthError(4401, "the password changed; sign in again")
    return SocketIdentity(user=user, method="bearer", expires_at=datetime.fromtimestamp(int(token["exp"]), UTC))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normalized_origin(origin: str) -> str | None:
    """`scheme://host[:port]`, lower-cased, the default port left out; None for anything else."""
    try:
        parts = urlparse(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _origin_allowed(origin: str | None, scope: dict[str, Any]) -> bool:
    """A cookie-authenticated socket must come from a page of ours: the same origin as the socket
    itself (scheme, host and port), or one named in CSRF_TRUSTED_ORIGINS. Never a wildcard: a page on
    any other site could otherwise ride the visitor's session cookie."""
    wanted = _normalized_origin(origin) if origin else None
    if wanted is None:
        return False
    trusted = {_normalized_origin(o) for o in settings.CSRF_TRUSTED_ORIGINS if "*" not in o}
    host = scope_header(scope, b"host")
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    own = _normalized_origin(f"{scheme}://{host}") if host else None
    return wanted == own or wanted in trusted


def _from_session(session_key: str) -> tuple[User, datetime] | None:
    """The session's user and when the session ends (the socket closes then, as a bearer's does)."""
    engine = import_string(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    user_id = session.get(SESSION_KEY)
    backend_path = session.get(BACKEND_SESSION_KEY)
    if user_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if not isinstance(user, User) or not user.is_active:
        return None
    # The session stays valid only while the password it was made with does (Django's rule).
    if not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return None
    return user, session_end(session)


def session_end(session: Any) -> datetime:
    """The stored end of a database-backed session; else its age from now (cookie/cache engines)."""
    model_class = getattr(session, "get_model_class", None)
    if model_class is not None:
        stored = (
            model_class().objects.filter(session_key=session.session_key).values_list("expire_date", flat=True).first()
        )
        if isinstance(stored, datetime):
            return stored
    end = session.get_expiry_date()
    assert isinstance(end, datetime)
    return end


def authenticate_socket(scope: dict[str, Any]) -> SocketIdentity:
    """The caller of a WebSocket handshake, or SocketAuthError with the close code to use."""
    authorization = scope_header(scope, b"authorization")
    if authorization:
        kind, _, raw = authorization.partition(" ")
        if kind.lower() != "bearer" or not raw.strip():
            raise SocketAuthError(4401, "malformed Authorization header")
        return _from_bearer(raw.strip())

    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "ticket" in query:
        consumed = _ticket_consume(query["ticket"][0])
        if consumed is None:
            raise SocketAuthError(4401, "unknown, used or expired ticket")
        user = _active_user(consumed[0])
        if user is None:
            raise SocketAuthError(4401, "unknown user")
        return SocketIdentity(user=user, method="ticket", expires_at=consumed[1])

    cookie_header = scope_header(scope, b"cookie")
    if cookie_header:
        cookies = SimpleCookie()
        cookies.load(cookie_header)
        morsel = cookies.get(settings.SESSION_COOKIE_NAME)
        if morsel is not None:
            signed_in = _from_session(morsel.value)
            if signed_in is not None:
                # A cookie rides along on any page's request: only our own pages may use it.
                if not _origin_allowed(scope_header(scope, b"origin"), scope):
                    raise SocketAuthError(4403, "origin not allowed for cookie authentication")
                return SocketIdentity(user=signed_in[0], method="session", expires_at=signed_in[1])
    raise SocketAuthError(4401, "not authenticated")
