"""Raw ASGI HTTP for the paths answered before Django: the types, header look-up, a JSON reply
(with the X-Request-ID every response carries, core.request_id)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from core.request_id import HEADER, request_id

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def scope_header(scope: Scope, name: bytes) -> str | None:
    """A header of an ASGI scope (HTTP or WebSocket) by its lower-case name."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def send_json(
    scope: Scope,
    send: Send,
    status: int,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """A whole response to the request of `scope`: `body` as JSON (or empty), with Content-Length
    and X-Request-ID (the caller's when it sent a sane one, as Django's answers)."""
    payload = json.dumps(body).encode() if body is not None else b""
    all_headers = {**(headers or {}), HEADER: request_id(scope_header(scope, HEADER.lower().encode()))}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers["Content-Length"] = str(len(payload))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": payload})
