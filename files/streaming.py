"""The two upload paths that must not go through Django's request handling.

- tus `PATCH /api/uploads/{id}`: a raw ASGI handler that writes the body to the partial file as
  it arrives (Django's handler would spool the whole body first, and lose it all if the
  connection dropped half-way, which is the one thing resumable uploads exist for).
- `POST /api/rooms/{id}/files` and `PUT /api/auth/me/avatar` with a Content-Length over their
  limit (UPLOAD_MAX_SIZE, AVATAR_MAX_SIZE): refused (413) before a byte of the body is read.

Everything else is handed to Django. Authentication is the WebSocket handshake's (bearer header,
or the session cookie from one of our own origins), membership the same check as everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from accounts.ws_auth import SocketAuthError, SocketIdentity, authenticate_socket
from core.blocking import off_loop
from core.errors import ApiError, Conflict, PayloadTooLarge
from core.ids import parse_count
from core.raw_http import ASGIApp, Receive, Scope, Send, scope_header, send_json
from files import services
from files.models import Upload
from files.partials import exclusive_partial
from files.selectors import upload_for_owner
from files.tus import TUS_VERSION, offset_headers, require_tus_version, tus_headers

logger = logging.getLogger(__name__)

WRITE_BUFFER = 1024 * 1024

_PATCH_PATH = re.compile(r"^/api/uploads/([^/]+)/?$")
_FILES_PATH = re.compile(r"^/api/rooms/[^/]+/files/?$")
_AVATAR_PATH = re.compile(r"^/api/auth/me/avatar/?$")


def is_upload(scope: Scope) -> bool:
    """The requests whose bodies are files (limited by their own setting, not the request limit)."""
    method, path = scope.get("method", ""), scope.get("path", "")
    return (
        (method == "PATCH" and bool(_PATCH_PATH.match(path)))
        or (method == "POST" and bool(_FILES_PATH.match(path)))
        or (method == "PUT" and bool(_AVATAR_PATH.match(path)))
    )


def with_upload_routes(django_app: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        match = _PATCH_PATH.match(path) if method == "PATCH" else None
        if match is not None:
            await tus_patch(scope, receive, send, match.group(1))
        elif method == "POST" and _FILES_PATH.match(path):
            if _content_length(scope) > settings.UPLOAD_MAX_SIZE:
                await _reply(scope, send, 413, {"code": "file_too_large", "detail": _too_large_detail()})
            elif await _authenticated(scope, send) is not None:
                # Nobody unauthenticated gets to spool a file to this server's disk.
                await django_app(scope, receive, send)
        elif method == "PUT" and _AVATAR_PATH.match(path):
            if _content_length(scope) > settings.AVATAR_MAX_SIZE:
                detail = f"Avatars are limited to {settings.AVATAR_MAX_SIZE} bytes."
                await send_json(scope, send, 413, {"code": "file_too_large", "detail": detail}, {"Connection": "close"})
            elif await _authenticated(scope, send) is not None:
                await django_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app


async def _authenticated(scope: Scope, send: Send) -> SocketIdentity | None:
    """The caller, from the request's headers alone; else None, once 401/403 (or 503) is answered
    without a byte of the body read."""
    try:
        return await off_loop(authenticate_socket)(scope)
    except SocketAuthError as refused:
        status = 403 if refused.close_code == 4403 else 401
        code = "not_authenticated" if status == 401 else "forbidden"
        await _reply(scope, send, status, {"code": code, "detail": refused.reason})
    except DatabaseError:
        await _reply(scope, send, 503, {"code": "service_unavailable", "detail": "The database is unavailable."})
    return None


def _too_large_detail() -> str:
    return f"Files may be at most {settings.UPLOAD_MAX_SIZE} bytes."


def _content_length(scope: Scope) -> int:
    raw = scope_header(scope, b"content-length")
    length = parse_count(raw)
    return length if length is not None else -1


async def _reply(
    scope: Scope, send: Send, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> None:
    await send_json(scope, send, status, body, {**tus_headers(), **(headers or {})})


async def tus_patch(scope: Scope, receive: Receive, send: Send, upload_id: str) -> None:
    try:
        require_tus_version(scope_header(scope, b"tus-resumable"))
    except ApiError as error:
        await _reply(scope, send, error.status, error.payload(), {"Tus-Version": TUS_VERSION})
        return
    identity = await _authenticated(scope, send)
    if identity is None:
        return
    try:
        upload = await off_loop(upload_for_owner)(identity.user, upload_id)
    except ApiError as error:
        await _reply(scope, send, error.status, error.payload())
        return
    except DatabaseError:
        await _reply(scope, send, 503, {"code": "service_unavailable", "detail": "The database is unavailable."})
        return
    content_type = (scope_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/offset+octet-stream":
        await _reply(
            scope, send, 415, {"code": "unsupported_media_type", "detail": "Use application/offset+octet-stream."}
        )
        return
    offset = parse_count(scope_header(scope, b"upload-offset"))
    if offset is None:
        await _reply(
            scope, send, 400, {"code": "invalid_offset", "detail": "Upload-Offset must be a non-negative integer."}
        )
        return
    remaining = upload.length - offset
    if _content_length(scope) > remaining:
        await _reply(scope, send, 413, {"code": "file_too_large", "detail": "The body goes past Upload-Length."})
        return
    try:
        result = await _append(upload, offset, receive)
    except ApiError as error:
        await _reply(scope, send, error.status, error.payload(), offset_headers(upload))
        return
    if result is None:  # the client went away: what arrived is kept, nobody to answer
        return
    await _reply(scope, send, 204, None, offset_headers(upload, result))


async def _append(upload: Upload, offset: int, receive: Receive) -> int | None:
    """Write the body at `offset`; the new offset, or None when the client disconnected."""
    with exclusive_partial(upload) as fh:
        if fh.tell() != offset:
            raise Conflict(f"Upload-Offset is {fh.tell()}, not {offset}.", code="offset_mismatch")
        buffered: list[bytes] = []
        size = 0
        written = offset
        disconnected = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                break
            chunk = message.get("body", b"")
            if written + size + len(chunk) > upload.length:
                # Never store past the declared length: keep what fits, refuse the rest.
                chunk = chunk[: upload.length - written - size]
                buffered.append(chunk)
                await asyncio.to_thread(_write, fh, buffered)
                raise PayloadTooLarge("The body goes past Upload-Length.", code="file_too_large")
            buffered.append(chunk)
            size += len(chunk)
            if size >= WRITE_BUFFER:
                await asyncio.to_thread(_write, fh, buffered)
                written += size
                buffered, size = [], 0
            if not message.get("more_body", False):
                break
        await asyncio.to_thread(_write, fh, buffered)
        written += size
        if disconnected:
            return None
        if written == upload.length:
            await off_loop(services.finalize)(upload)
        return written


def _write(fh: Any, parts: list[bytes]) -> None:
    for part in parts:
        fh.write(part)
    fh.flush()
