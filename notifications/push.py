"""Web Push from the server itself: VAPID (RFC 8292) signs, pywebpush encrypts (RFC 8291,
aes128gcm) and posts to the browser's push service (RFC 8030). No vendor relay.

A subscription's endpoint is a URL this server will call, so it is checked twice: when it is
stored and again before every send (a name may resolve elsewhere later). By default only https on
public addresses; PUSH_ALLOW_INSECURE_ENDPOINTS also admits http and loopback (development, tests).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from py_vapid import Vapid02, b64urlencode
from pywebpush import WebPushException, webpush

from accounts.models import User
from core.errors import ApiError, InvalidInput
from core.ratelimit import enforce_for_user
from notifications.models import PushSubscription


class PushUnavailable(ApiError):
    status = 503
    code = "push_unavailable"


class PushGone(Exception):
    """The push service says the subscription no longer exists (404/410): forget it."""


class PushRefused(Exception):
    """A refusal that will not change by trying again (400, 401, 403, 413, or an endpoint not allowed)."""


class PushFailed(Exception):
    """Worth trying again later: 429, 5xx, a timeout, a connection refused."""


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid02:
    return Vapid02.from_raw(private_key.encode())


def vapid() -> Vapid02:
    if not settings.VAPID_PRIVATE_KEY:
        raise PushUnavailable("This server has no VAPID key: push is off (see manage.py vapid_keys).")
    return _vapid(settings.VAPID_PRIVATE_KEY)


def public_key() -> str:
    """The applicationServerKey browsers subscribe with: the uncompressed P-256 point, URL-safe base64."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    point = vapid().public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return b64urlencode(point)


def _b64url_bytes(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _refuse(detail: str, field: str = "endpoint") -> InvalidInput:
    return InvalidInput(detail, code="invalid_subscription", fields={field: [detail]})


def _public_addresses_only(host: str, port: int) -> None:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _refuse("The endpoint's host cannot be resolved.")
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            raise _refuse("Push endpoints must be on public addresses.")


def check_endpoint(endpoint: Any) -> str:
    """The endpoint, if this server may call it; else 400 `invalid_subscription`."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 2000:
        raise _refuse("An endpoint URL (at most 2,000 characters) is required.")
    parts = urlsplit(endpoint)
    insecure_ok = settings.PUSH_ALLOW_INSECURE_ENDPOINTS
    if parts.scheme != "https" and not (insecure_ok and parts.scheme == "http"):
        raise _refuse("Push endpoints must be https URLs.")
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refuse("The endpoint's port is not a number.")
    if not host or parts.username or parts.password:
        raise _refuse("The endpoint must name a host (and no credentials).")
    if not insecure_ok:
        _public_addresses_only(host, port)
    return endpoint


def subscribe(*, user: User, data: Any) -> PushSubscription:
    """Store (or move to this user) a browser's subscription; a user keeps the newest few."""
    if not isinstance(data, dict):
        raise InvalidInput("Send the browser's PushSubscription as JSON.", code="invalid_subscription")
    endpoint = check_endpoint(data.get("endpoint"))
    keys = data.get("keys")
    p256dh, auth = (keys.get("p256dh"), keys.get("auth")) if isinstance(keys, dict) else (None, None)
    point = _b64url_bytes(p256dh)
    if not isinstance(p256dh, str) or point is None or len(point) != 65 or point[0] != 4:
        raise _refuse("keys.p256dh must be an uncompressed P-256 point in URL-safe base64.", "keys")
    secret = _b64url_bytes(auth)
    if not isinstance(auth, str) or secret is None or len(secret) != 16:
        raise _refuse("keys.auth must be 16 bytes in URL-safe base64.", "keys")
    enforce_for_user(user.pk, "push.subscribe", settings.PUSH_SUBSCRIBE_RATE_LIMIT)
    with transaction.atomic():
        subscription, _ = PushSubscription.objects.update_or_create(
            endpoint=endpoint, defaults={"user": user, "p256dh": p256dh, "auth": auth}
        )
        keep = settings.PUSH_MAX_SUBSCRIPTIONS_PER_USER
        stale = (
            PushSubscription.objects.filter(user=user)
            .order_by("-created_at", "-id")
            .values_list("pk", flat=True)[keep:]
        )
        PushSubscription.objects.filter(pk__in=list(stale)).delete()
    return subscription


def unsubscribe(*, user: User, endpoint: Any) -> None:
    if not isinstance(endpoint, str) or not endpoint:
        raise _refuse("Name the endpoint to forget.")
    PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()


def send(subscription: PushSubscription, payload: str) -> None:
    """Encrypt and post one push; raises PushGone, PushRefused or PushFailed."""
    try:
        check_endpoint(subscription.endpoint)
    except InvalidInput as refused:
        raise PushRefused(refused.detail) from refused
    info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
    try:
        webpush(
            subscription_info=info,
            data=payload,
            vapid_private_key=vapid(),
            vapid_claims={"sub": settings.VAPID_SUBJECT},  # a fresh dict: webpush writes aud and exp into it
            ttl=settings.PUSH_TTL_SECONDS,
            timeout=settings.PUSH_TIMEOUT_SECONDS,
            headers={"Urgency": "high"},
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (404, 410):
            raise PushGone(str(status)) from exc
        if status is None or status == 429 or status >= 500:
            raise PushFailed(f"push service answered {status}") from exc
        raise PushRefused(f"push service answered {status}") from exc
    except requests.RequestException as exc:
        raise PushFailed(type(exc).__name__) from exc
