"""Uploads and attachments: creation with limits, the bytes' way into storage, the Attachment shape.

Unfinished bytes live in a partial file under UPLOAD_TEMP_DIR whose size is the upload's
offset (so a dropped connection keeps everything that arrived). The request that writes the
last byte finalises: it sniffs the type, checks images, and streams the file into Django's
default storage under a random name. Only then is the upload an attachment.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import filetype
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from chatproject.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, Unprocessable
from messaging import files
from messaging.models import Upload
from rooms.selectors import membership_get, room_require_member

logger = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10
COPY_CHUNK = 1024 * 1024


# --- creation ---------------------------------------------------------------------------------


def parse_length(raw: Any) -> int:
    if raw is None or raw == "":
        raise InvalidInput("Upload-Length is required.", code="missing_length")
    text = str(raw).strip()
    if not text.isdigit():
        raise InvalidInput("Upload-Length must be a non-negative integer.", code="invalid_length")
    length = int(text)
    if length > settings.UPLOAD_MAX_SIZE:
        raise PayloadTooLarge(f"Files may be at most {settings.UPLOAD_MAX_SIZE} bytes.", code="file_too_large")
    return length


def parse_metadata(raw: Any) -> dict[str, str]:
    """tus `Upload-Metadata`: comma-separated `key base64value` pairs."""
    metadata: dict[str, str] = {}
    if not raw:
        return metadata
    for pair in str(raw).split(","):
        key, _, value = pair.strip().partition(" ")
        if not key:
            continue
        try:
            metadata[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata value of {key!r} is not base64 UTF-8.", code="invalid_metadata")
    return metadata


def _require_quota(user: User, length: int) -> None:
    now = timezone.now()
    used = (
        Upload.objects.filter(owner=user)
        .exclude(completed_at__isnull=True, expires_at__lt=now)
        .aggregate(total=Sum("length"))["total"]
        or 0
    )
    if used + length > settings.UPLOAD_USER_QUOTA:
        raise PayloadTooLarge(
            f"This upload would take you over your quota of {settings.UPLOAD_USER_QUOTA} bytes.",
            code="quota_exceeded",
        )


def upload_create(*, user: User, room_id: Any, length: Any, name: Any, declared_type: Any = "") -> Upload:
    membership = room_require_member(user, room_id)
    size = parse_length(length)
    _require_quota(user, size)
    upload = Upload.objects.create(
        room_id=membership.room_id,
        owner=user,
        name=files.clean_filename(name if isinstance(name, str) else None),
        declared_type=str(declared_type or "")[:255],
        length=size,
        expires_at=timezone.now() + timedelta(hours=settings.UPLOAD_EXPIRE_HOURS),
    )
    path = partial_path(upload)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    if size == 0:
        finalize(upload)
    return upload


# --- reading and writing the bytes ------------------------------------------------------------


def partial_path(upload: Upload) -> Path:
    return Path(settings.UPLOAD_TEMP_DIR) / f"{upload.pk}.part"


def current_offset(upload: Upload) -> int:
    if upload.is_complete:
        return upload.length
    try:
        return min(partial_path(upload).stat().st_size, upload.length)
    except FileNotFoundError:
        return 0


def offset_headers(upload: Upload, offset: int | None = None) -> dict[str, str]:
    """tus `Upload-Offset`, and `Upload-Expires` (an RFC 9110 date) while unfinished."""
    headers = {"Upload-Offset": str(offset if offset is not None else current_offset(upload))}
    if not upload.is_complete:
        headers["Upload-Expires"] = upload.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


def parse_upload_id(raw: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("No such upload.", code="upload_not_found")


def upload_for_owner(user: User, upload_id: Any) -> Upload:
    """An upload its owner may continue: 404 for anyone else, and once they left the room."""
    upload = Upload.objects.filter(pk=parse_upload_id(upload_id), owner_id=user.pk).first()
    if upload is None or membership_get(user, upload.room_id) is None:
        raise NotFound("No such upload.", code="upload_not_found")
    return upload


def upload_for_member(user: User, upload_id: Any) -> Upload:
    """A complete upload seen by a member of its room; 404 to everyone else (no hint it exists)."""
    upload = Upload.objects.filter(pk=parse_upload_id(upload_id)).first()
    if upload is None or membership_get(user, upload.room_id) is None:
        raise NotFound("No such file.", code="file_not_found")
    if not upload.is_complete and upload.owner_id != user.pk:
        raise NotFound("No such file.", code="file_not_found")
    return upload


@contextlib.contextmanager
def exclusive_partial(upload: Upload) -> Iterator[IO[bytes]]:
    """The partial file, opened for appending under an exclusive lock (one writer at a time)."""
    path = partial_path(upload)
    try:
        fh = path.open("r+b")
    except FileNotFoundError:
        raise NotFound("That upload expired.", code="upload_expired")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("Another request is writing this upload.", code="upload_locked")
        fh.seek(0, os.SEEK_END)
        yield fh
    finally:
        fh.close()


def finalize(upload: Upload) -> Upload:
    """Sniff, check and move a fully received upload into storage. Refused files are deleted."""
    if upload.is_complete:
        return upload
    path = partial_path(upload)
    if current_offset(upload) != upload.length:
        raise Conflict("The upload is not complete yet.", code="upload_incomplete")
    with path.open("rb") as fh:
        head = fh.read(files.SNIFF_BYTES)
        content_type = files.sniff_type(head)
        facts = None
        try:
            if content_type in files.INLINE_IMAGE_TYPES:
                facts = files.check_image(fh, content_type, upload.length)
        except files.FileRefused as refused:
            path.unlink(missing_ok=True)
            upload.delete()
            raise Unprocessable(refused.detail, code=refused.code)
        fh.seek(0)
        kind = filetype.get_type(mime=content_type)
        extension = f".{kind.extension}" if kind is not None else (".txt" if content_type == "text/plain" else "")
        name = f"attachments/{upload.room_id}/{uuid.uuid4().hex}{extension}"
        stored_name = default_storage.save(name, File(fh, name=name))
    upload.storage_name = stored_name
    upload.content_type = content_type
    upload.completed_at = timezone.now()
    if facts is not None:
        upload.width, upload.height = facts.width, facts.height
    upload.save(update_fields=["storage_name", "content_type", "completed_at", "width", "height"])
    path.unlink(missing_ok=True)
    if facts is not None:
        from messaging.tasks import make_thumbnail  # tasks import this module

        make_thumbnail.delay(str(upload.pk))
    return upload


def store_small_file(*, user: User, room_id: Any, uploaded: Any) -> Upload:
    """The multipart endpoint: same limits and checks, the file already spooled by Django."""
    size = int(getattr(uploaded, "size", 0) or 0)
    upload = upload_create(user=user, room_id=room_id, length=size, name=getattr(uploaded, "name", ""))
    if upload.is_complete:
        return upload
    with exclusive_partial(upload) as fh:
        for chunk in uploaded.chunks(COPY_CHUNK):
            fh.write(chunk)
        fh.flush()
        return finalize(upload)


def write_thumbnail(upload_id: str) -> None:
    upload = Upload.objects.filter(pk=upload_id, completed_at__isnull=False).first()
    if upload is None or upload.thumbnail_name or upload.content_type not in files.INLINE_IMAGE_TYPES:
        return
    with default_storage.open(upload.storage_name, "rb") as fh:
        data, _ = files.make_thumbnail(fh)
    name = default_storage.save(f"thumbnails/{upload.room_id}/{uuid.uuid4().hex}.webp", ContentFile(data))
    Upload.objects.filter(pk=upload.pk).update(thumbnail_name=name)


def expire_unfinished() -> int:
    """Delete unfinished uploads past their expiry, bytes and rows (a periodic task)."""
    expired = list(Upload.objects.filter(completed_at__isnull=True, expires_at__lt=timezone.now()))
    for upload in expired:
        partial_path(upload).unlink(missing_ok=True)
    Upload.objects.filter(pk__in=[u.pk for u in expired]).delete()
    return len(expired)


def upload_terminate(*, user: User, upload_id: Any) -> None:
    """tus termination: the owner drops an unfinished upload."""
    upload = upload_for_owner(user, upload_id)
    if upload.is_complete:
        raise Conflict("A finished upload is an attachment; it cannot be terminated.", code="upload_complete")
    partial_path(upload).unlink(missing_ok=True)
    upload.delete()


# --- attachments on messages ------------------------------------------------------------------


def validate_attachments(*, user: User, room_id: int, raw: Any) -> list[str]:
    """Attachment ids for a post: the author's own finished uploads to this room."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS or not all(isinstance(i, str) for i in raw):
        raise InvalidInput(
            f"attachments must be a list of at most {MAX_ATTACHMENTS} upload ids.",
            code="invalid_attachments",
            fields={"attachments": [f"At most {MAX_ATTACHMENTS} upload ids."]},
        )
    ids: list[str] = []
    for raw_id in raw:
        try:
            ids.append(str(uuid.UUID(raw_id)))
        except ValueError:
            ids.append("")
    found = set(
        str(pk)
        for pk in Upload.objects.filter(
            pk__in=[i for i in ids if i], owner_id=user.pk, room_id=room_id, completed_at__isnull=False
        ).values_list("pk", flat=True)
    )
    if not ids or any(i not in found for i in ids):
        raise InvalidInput(
            "Every attachment must be a finished upload of yours to this room.",
            code="invalid_attachments",
            fields={"attachments": ["Unknown, unfinished or foreign upload."]},
        )
    return list(dict.fromkeys(ids))


def attachment_payload(upload: Upload) -> dict[str, Any]:
    return {
        "id": str(upload.pk),
        "name": upload.name,
        "size": upload.length,
        "content_type": upload.content_type,
        "url": f"/api/files/{upload.pk}",
        "thumbnail_url": f"/api/files/{upload.pk}/thumbnail" if upload.thumbnail_name else None,
        "width": upload.width,
        "height": upload.height,
    }


def attachment_payloads(ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    return {str(u.pk): attachment_payload(u) for u in Upload.objects.filter(pk__in=wanted, completed_at__isnull=False)}
