"""Account writes: registration, credential checks and token life cycle."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.authentication import PASSWORD_STAMP_CLAIM, forget_user, password_stamp, token_matches_password
from accounts.models import User
from core.errors import ApiError, Conflict, InvalidInput
from core.ratelimit import enforce, enforce_for_user


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def tokens_for(user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    refresh[PASSWORD_STAMP_CLAIM] = password_stamp(user)  # copied into the access token too
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def access_token_for(user: User, lifetime: timedelta | None = None) -> str:
    """An access token alone (benchmarks, tests), valid `lifetime` or the configured time."""
    token = AccessToken.for_user(user)
    token[PASSWORD_STAMP_CLAIM] = password_stamp(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


USERNAME_MAX_LENGTH = 150
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _nfkc(raw: Any) -> str:
    return unicodedata.normalize("NFKC", raw).strip() if isinstance(raw, str) else ""


def normalize_username(raw: Any) -> str:
    """The one username rule, for the API and the sign-up page alike.

    NFKC first, so full-width or other compatibility look-alikes of a name become that name (and are
    then refused as taken, case-insensitively); what is left must be 1-150 ASCII letters, digits,
    `.`, `_` or `-`, which keeps zero-width and other invisible characters out.
    """
    name = _nfkc(raw)
    if not name or len(name) > USERNAME_MAX_LENGTH or not _USERNAME.match(name):
        raise InvalidInput(
            "Usernames are 1 to 150 letters, digits, '.', '_' or '-'.",
            code="invalid_username",
            fields={"username": ["Use 1 to 150 letters, digits, '.', '_' or '-'."]},
        )
    return name


def user_register(*, username: Any, password: str, email: str = "", display_name: str = "") -> User:
    username = normalize_username(username)
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(
            "That username is taken.", code="username_taken", fields={"username": ["That username is taken."]}
        )
    candidate = User(username=username, email=email, display_name=display_name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise InvalidInput("The password is too weak.", code="weak_password", fields={"password": list(exc.messages)})
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError:
        # Lost a race with another registration of the same name: the unique index decided.
        raise Conflict(
            "That username is taken.", code="username_taken", fields={"username": ["That username is taken."]}
        )
    return candidate


def profile_update(user: User, changes: dict[str, Any]) -> User:
    """Apply validated `PATCH /api/auth/me` fields (MeUpdateSerializer) in one save."""
    fields = [name for name in ("display_name", "email", "email_notifications", "dnd_until") if name in changes]
    for name in fields:
        value = changes[name]
        setattr(user, name, value.strip() if isinstance(value, str) else value)
    if fields:
        user.save(update_fields=fields)
    return user


def password_change(request: Any, user: User, *, old_password: str, new_password: str) -> None:
    """A new password: every token issued before stops working and every socket of the account
    closes (accounts/receivers.py revokes); a session that asked keeps going (Django's rule)."""
    enforce_for_user(user.pk, "auth.password", settings.LOGIN_NAME_RATE_LIMIT)
    if not user.check_password(old_password):
        raise InvalidInput(
            "The current password is wrong.", code="wrong_password", fields={"old_password": ["Wrong password."]}
        )
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise InvalidInput(
            "The new password is too weak.", code="weak_password", fields={"new_password": list(exc.messages)}
        )
    user.set_password(new_password)
    user.save(update_fields=["password"])
    forget_user(user.pk)  # this process refuses the old tokens from this request on
    if getattr(request, "session", None) is not None and request.session.session_key:
        update_session_auth_hash(request, user)


def user_login(request: Any, *, username: Any, password: Any) -> User:
    """Check credentials under the failed-login limits, per address and per account name.

    Only failures count, so someone signing in on many devices is never locked out; the per-name
    limit stops a slow guess at one account spread over many addresses (behind a proxy, the address
    is the client's only when the proxy is trusted: FORWARDED_ALLOW_IPS).
    """
    login_allowed(request, username)
    user = user_authenticate(username=username, password=password) if isinstance(password, str) else None
    if user is None:
        login_failed(request, username)
        raise ApiError("Wrong username or password.", code="invalid_credentials", status=401)
    return user


def _login_limits(username: Any) -> list[tuple[str, str, Any]]:
    name = _nfkc(username).casefold()
    return [
        ("auth.login.failed", settings.LOGIN_RATE_LIMIT, "ip"),
        ("auth.login.failed.name", settings.LOGIN_NAME_RATE_LIMIT, lambda _group, _request: f"name:{name}"),
    ]


def login_allowed(request: Any, username: Any) -> None:
    """Raise RateLimited (429) when this address or this account name failed too often."""
    for group, rate, key in _login_limits(username):
        enforce(request, group, rate, key=key, increment=False)


def login_failed(request: Any, username: Any) -> None:
    """Count one failed attempt against both limits (raises RateLimited once one is passed)."""
    for group, rate, key in _login_limits(username):
        enforce(request, group, rate, key=key)


def user_authenticate(*, username: str, password: str) -> User | None:
    # Log-in is case-insensitive like the uniqueness rule; the stored spelling is kept.
    username = _nfkc(username)
    stored = User.objects.filter(username__iexact=username).values_list("username", flat=True).first()
    user = authenticate(username=stored or username, password=password)
    return user if isinstance(user, User) else None


def token_refresh(raw_refresh: str) -> TokenPair:
    """Rotate: a new pair, and the old refresh token is blacklisted."""
    try:
        refresh = RefreshToken(raw_refresh)  # type: ignore[arg-type]
        refresh.check_blacklist()
        user = User.objects.filter(pk=str(refresh.payload.get("user_id")), is_active=True).first()
        if user is None:
            raise ApiError("The user is gone or inactive.", code="token_not_valid", status=401)
        if not token_matches_password(refresh.payload, user):
            raise ApiError("The password changed; sign in again.", code="token_not_valid", status=401)
        # The blacklist row is unique per token: of two refreshes racing with one token, exactly one
        # creates it and gets a new pair; the other finds it made and is refused.
        refresh.outstand()  # the token's row, made if it was never stored
        outstanding = OutstandingToken.objects.get(jti=refresh.payload["jti"])
        _, first_use = BlacklistedToken.objects.get_or_create(token=outstanding)
        if not first_use:
            raise ApiError("Token is blacklisted", code="token_not_valid", status=401)
    except TokenError as exc:
        raise ApiError(str(exc), code="token_not_valid", status=401)
    return tokens_for(user)


def token_revoke(raw_refresh: str) -> None:
    """Holding a valid refresh token is proof enough to end that session; repeating it is harmless."""
    try:
        refresh = RefreshToken(raw_refresh)  # type: ignore[arg-type]
    except TokenError as exc:
        if _already_revoked(raw_refresh):
            return
        raise ApiError(str(exc), code="token_not_valid", status=401)
    refresh.blacklist()


def _already_revoked(raw_refresh: str) -> bool:
    try:
        payload = token_backend.decode(raw_refresh, verify=True)  # type: ignore[arg-type]
    except TokenBackendError:
        return False
    return BlacklistedToken.objects.filter(token__jti=payload.get("jti")).exists()
