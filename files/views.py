"""tus creation/HEAD/termination, the small-file endpoint, and serving files to room members.

PATCH (the bytes) is handled before Django, in files/streaming.py.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import forget_user
from accounts.models import request_user
from accounts.serializers import MeSerializer
from core.errors import InvalidInput, NotFound, render_as_json
from core.ratelimit import enforce_for_user
from files import avatars, inspection, services
from files.downloads import file_response
from files.partials import current_offset
from files.selectors import attachment_payload, upload_for_member, upload_for_owner
from files.serializers import AttachmentSerializer, FileUploadSerializer
from files.tus import TUS_EXTENSIONS, TUS_VERSION, offset_headers, parse_metadata, require_tus_version, tus_headers


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


class RoomUploadsView(TusView):
    """tus creation: `POST /api/rooms/{room_id}/uploads/` with Upload-Length and Upload-Metadata."""

    @extend_schema(request=None, responses={201: None})
    def post(self, request: Request, room_id: str) -> Response:
        require_tus_version(request.headers.get("Tus-Resumable"))
        metadata = parse_metadata(request.headers.get("Upload-Metadata"))
        upload = services.upload_create(
            user=request_user(request),
            room_id=room_id,
            length=request.headers.get("Upload-Length"),
            name=metadata.get("filename") or metadata.get("name"),
            declared_type=metadata.get("filetype") or metadata.get("type"),
        )
        location = request.build_absolute_uri(f"/api/uploads/{upload.pk}")
        return Response(status=status.HTTP_201_CREATED, headers={"Location": location, **offset_headers(upload)})


class UploadView(TusView):
    """The tus upload URL: HEAD for the offset, DELETE to drop it, GET the Attachment once complete."""

    @extend_schema(responses={200: AttachmentSerializer})
    def get(self, request: Request, upload_id: str) -> Response:
        upload = upload_for_member(request_user(request), upload_id)
        if not upload.is_complete:
            render_as_json(request)  # an error: JSON whatever Accept says, as raised ones
            return Response(
                {"code": "upload_incomplete", "detail": "The upload is not complete yet."},
                status=status.HTTP_409_CONFLICT,
                headers={"Upload-Offset": str(current_offset(upload))},
            )
        return Response(attachment_payload(upload))

    def head(self, request: Request, upload_id: str) -> Response:
        require_tus_version(request.headers.get("Tus-Resumable"))
        upload = upload_for_owner(request_user(request), upload_id)
        return Response(
            status=status.HTTP_200_OK, headers={"Upload-Length": str(upload.length), **offset_headers(upload)}
        )

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, upload_id: str) -> Response:
        require_tus_version(request.headers.get("Tus-Resumable"))
        services.upload_terminate(user=request_user(request), upload_id=upload_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomFilesView(APIView):
    """`POST /api/rooms/{room_id}/files` multipart `file`: the simple path for small files."""

    parser_classes = [MultiPartParser]

    @extend_schema(request=FileUploadSerializer, responses={201: AttachmentSerializer})
    def post(self, request: Request, room_id: str) -> Response:
        uploaded = request.FILES.get("file")
        if uploaded is None:
            raise InvalidInput("Send the file as the multipart field `file`.", fields={"file": ["Required."]})
        upload = services.store_small_file(user=request_user(request), room_id=room_id, uploaded=uploaded)
        return Response(attachment_payload(upload), status=status.HTTP_201_CREATED)


class FileDownloadView(APIView):
    """`GET /api/files/{id}`: members of the room only (404 to everyone else)."""

    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, upload_id: str) -> HttpResponseBase:
        return self._serve(request, upload_id, head=False)

    def head(self, request: Request, upload_id: str) -> HttpResponseBase:
        return self._serve(request, upload_id, head=True)

    def _serve(self, request: Request, upload_id: str, *, head: bool) -> HttpResponseBase:
        upload = upload_for_member(request_user(request), upload_id)
        if not upload.is_complete:
            raise NotFound("No such file.", code="file_not_found")
        inline = upload.content_type in inspection.INLINE_IMAGE_TYPES
        return file_response(request, upload.storage_name, upload.content_type, upload.name, inline=inline, head=head)


class FileThumbnailView(APIView):
    @extend_schema(responses={(200, "image/webp"): bytes})
    def get(self, request: Request, upload_id: str) -> HttpResponseBase:
        upload = upload_for_member(request_user(request), upload_id)
        if not upload.thumbnail_name:
            raise NotFound("No thumbnail (yet).", code="thumbnail_not_found")
        return file_response(
            request, upload.thumbnail_name, "image/webp", f"thumb-{upload.name}", inline=True, head=False
        )


class MyAvatarView(APIView):
    """`PUT /api/auth/me/avatar` multipart `file`: the caller's picture; `DELETE`: back to initials."""

    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="auth_avatar_set", request=FileUploadSerializer, responses={200: MeSerializer})
    def put(self, request: Request) -> Response:
        user = request_user(request)
        enforce_for_user(user.pk, "auth.avatar", settings.AVATAR_RATE_LIMIT)
        updated = avatars.set_avatar(user, request.FILES.get("file"))
        forget_user(user.pk)
        return Response(MeSerializer(updated).data)

    @extend_schema(operation_id="auth_avatar_remove", responses={204: None})
    def delete(self, request: Request) -> Response:
        user = request_user(request)
        avatars.remove_avatar(user)
        forget_user(user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserAvatarView(APIView):
    """`GET /api/users/{id}/avatar`: the person's square picture, or their initials as an SVG."""

    @extend_schema(operation_id="users_avatar", responses={(200, "image/*"): OpenApiTypes.BINARY, 304: None})
    def get(self, request: Request, user_id: str) -> HttpResponseBase:
        return avatars.avatar_response(request, user_id)
