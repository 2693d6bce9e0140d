"""tus creation/HEAD/termination, the small-file endpoint, and serving files to room members.

PATCH (the bytes) is handled before Django, in messaging/tus.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import request_user
from chatproject.errors import InvalidInput, NotFound
from messaging import files, uploads
from messaging.tus import TUS_EXTENSIONS, TUS_VERSION, tus_headers

DOWNLOAD_CHUNK = 1024 * 1024
# A file is a download, never a page of ours: no script, no plugins, no same-origin rights.
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


class AttachmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class TusView(APIView):
    """Every tus answer carries `Tus-Resumable`, errors included."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        for key, value in tus_headers().items():
            response.setdefault(key, value)
        response["Access-Control-Expose-Headers"] = (
            "Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable, Tus-Version, Tus-Extension"
        )
        return response

    def options(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        return Response(
            status=status.HTTP_204_NO_CONTENT,
            headers={
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(settings.UPLOAD_MAX_SIZE),
            },
        )

    def require_tus_version(self, request: Request) -> None:
        if request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise InvalidInput("Tus-Resumable: 1.0.0 is required.", code="tus_version", status=412)


class RoomUploadsView(TusView):
    """tus creation: `POST /api/rooms/{room_id}/uploads/` with Upload-Length and Upload-Metadata."""

    @extend_schema(request=None, responses={201: None})
    def post(self, request: Request, room_id: str) -> Response:
        self.require_tus_version(request)
        metadata = uploads.parse_metadata(request.headers.get("Upload-Metadata"))
        upload = uploads.upload_create(
            user=request_user(request),
            room_id=room_id,
            length=request.headers.get("Upload-Length"),
            name=metadata.get("filename") or metadata.get("name"),
            declared_type=metadata.get("filetype") or metadata.get("type"),
        )
        location = request.build_absolute_uri(f"/api/uploads/{upload.pk}")
        return Response(
            status=status.HTTP_201_CREATED, headers={"Location": location, **uploads.offset_headers(upload)}
        )


class UploadView(TusView):
    """The tus upload URL: HEAD for the offset, DELETE to drop it, GET the Attachment once complete."""

    @extend_schema(responses={200: AttachmentSerializer})
    def get(self, request: Request, upload_id: str) -> Response:
        upload = uploads.upload_for_member(request_user(request), upload_id)
        if not upload.is_complete:
            return Response(
                {"code": "upload_incomplete", "detail": "The upload is not complete yet."},
                status=status.HTTP_409_CONFLICT,
                headers={"Upload-Offset": str(uploads.current_offset(upload))},
            )
        return Response(uploads.attachment_payload(upload))

    def head(self, request: Request, upload_id: str) -> Response:
        self.require_tus_version(request)
        upload = uploads.upload_for_owner(request_user(request), upload_id)
        return Response(
            status=status.HTTP_200_OK, headers={"Upload-Length": str(upload.length), **uploads.offset_headers(upload)}
        )

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, upload_id: str) -> Response:
        self.require_tus_version(request)
        uploads.upload_terminate(user=request_user(request), upload_id=upload_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomFilesView(APIView):
    """`POST /api/rooms/{room_id}/files` multipart `file`: the simple path for small files."""

    parser_classes = [MultiPartParser]

    @extend_schema(request=FileUploadSerializer, responses={201: AttachmentSerializer})
    def post(self, request: Request, room_id: str) -> Response:
        uploaded = request.FILES.get("file")
        if uploaded is None:
            raise InvalidInput("Send the file as the multipart field `file`.", fields={"file": ["Required."]})
        upload = uploads.store_small_file(user=request_user(request), room_id=room_id, uploaded=uploaded)
        return Response(uploads.attachment_payload(upload), status=status.HTTP_201_CREATED)


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


_BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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


def _file_response(
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


class FileDownloadView(APIView):
    """`GET /api/files/{id}`: members of the room only (404 to everyone else)."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, upload_id: str) -> HttpResponseBase:
        return self._serve(request, upload_id, head=False)

    def head(self, request: Request, upload_id: str) -> HttpResponseBase:
        return self._serve(request, upload_id, head=True)

    def _serve(self, request: Request, upload_id: str, *, head: bool) -> HttpResponseBase:
        upload = uploads.upload_for_member(request_user(request), upload_id)
        if not upload.is_complete:
            raise NotFound("No such file.", code="file_not_found")
        inline = upload.content_type in files.INLINE_IMAGE_TYPES
        return _file_response(request, upload.storage_name, upload.content_type, upload.name, inline=inline, head=head)


class FileThumbnailView(APIView):
    @extend_schema(responses={(200, "image/webp"): bytes})
    def get(self, request: Request, upload_id: str) -> HttpResponseBase:
        upload = uploads.upload_for_member(request_user(request), upload_id)
        if not upload.thumbnail_name:
            raise NotFound("No thumbnail (yet).", code="thumbnail_not_found")
        return _file_response(
            request, upload.thumbnail_name, "image/webp", f"thumb-{upload.name}", inline=True, head=False
        )
