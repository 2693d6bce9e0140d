"""Request bodies bounded before Django sees them: 413 once DATA_UPLOAD_MAX_MEMORY_SIZE is passed.

Django's ASGI handler spools a whole body (to disk past FILE_UPLOAD_MAX_MEMORY_SIZE) before any
view runs, and DRF's JSON parser reads it whole: an anonymous `POST /api/auth/login` of 2 GB was
taken in full. Here a declared `Content-Length` over the limit is refused at once, and a chunked
body as soon as it passes the limit; what is below it is handed on to Django unchanged. File
uploads (files/streaming.py `is_upload`) have their own limit, UPLOAD_MAX_SIZE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings

from core.ids import parse_count
from core.raw_http import ASGIApp, Receive, Scope, Send, scope_header, send_json


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    body = {"code": "body_too_large", "detail": f"Request bodies are limited to {limit} bytes."}
    await send_json(scope, send, 413, body, {"Connection": "close"})


def with_body_limit(app: ASGIApp, *, exempt: Callable[[Scope], bool]) -> ASGIApp:
    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if scope.get("type") != "http" or limit is None or exempt(scope):
            await app(scope, receive, send)
            return
        declared = parse_count(scope_header(scope, b"content-length"))
        if declared is not None and declared > limit:
            await _too_large(scope, send, limit)
            return
        # Read the body here, never past the limit, then let Django read it from memory.
        received: list[Mapping[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(scope, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Mapping[str, Any]:
            return received.pop(0) if received else await receive()

        await app(scope, replay, send)

    return limited
