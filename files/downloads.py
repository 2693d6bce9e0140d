"""Serving stored files: byte ranges (RFC 9110), streamed chunks, and the headers that keep a file
a download rather than a page of ours."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.http import HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from rest_framework.request import Request

DOWNLOAD_CHUNK = 1024 * 1024
# A file is a download, never a page of ours: no script, no plugins, no same-origin rights.
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


async def _stream(name: str, start: int, length: int) -> AsyncIterator[bytes]:
    handle = await sync_to_async(default_storage.open, thread_sensitive=False)(name, "rb")
    try:
        if start:
            await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(DOWNLOAD_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


# ASCII digits, at most 19 (a longer number names no byte of any file, and int() refuses 4,300+).
_BYTE_RANGE = re.compile(r"^bytes=([0-9]{0,19})-([0-9]{0,19})$")


class _RangeNotSatisfiable(Exception):
    pass


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range asked for, as (first, last) inclusive; None: send the whole file.

    Several ranges, other units and malformed values are ignored, as RFC 9110 allows (a full
    200 answers them); a range starting past the end is refused (416).
    """
    match = _BYTE_RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if not first_text:  # "-N": the last N bytes
        wanted = int(last_text)
        if wanted == 0 or size == 0:
            raise _RangeNotSatisfiable
        return max(0, size - wanted), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise _RangeNotSatisfiable
    return first, min(last, size - 1)


def file_response(
    request: Request, name: str, content_type: str, filename: str, *, inline: bool, head: bool
) -> HttpResponseBase:
    size = default_storage.size(name)
    # Stored files never change (random names, written once): the name is a strong validator.
    etag = '"' + hashlib.sha256(name.encode()).hexdigest()[:32] + '"'
    requested = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    wanted: tuple[int, int] | None = None
    if requested and not head and (if_range is None or if_range == etag):
        try:
            wanted = _byte_range(requested, size)
        except _RangeNotSatisfiable:
            refused = JsonResponse(
                {"code": "range_not_satisfiable", "detail": f"The file has {size} bytes."}, status=416
            )
            refused["Content-Range"] = f"bytes */{size}"
            return refused
    first, last = wanted if wanted is not None else (0, size - 1)
    # Async chunks: a sync iterator would make Django's ASGI handler read the whole file first.
    response: HttpResponseBase = (
        HttpResponse(b"")
        if head
        else StreamingHttpResponse(_stream(name, first, last - first + 1), status=206 if wanted else 200)
    )
    response["Content-Type"] = content_type or "application/octet-stream"
    response["Content-Length"] = str(last - first + 1)
    if wanted is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Content-Disposition"] = content_disposition_header(not inline, filename) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = "private, max-age=3600"
    return response
