"""Upload writes: creation with limits, the last byte's finalisation into storage, termination.

Unfinished bytes live in a partial file (files/partials.py). The request that writes the last
byte finalises: it sniffs the type, checks images, and streams the file into Django's default
storage under a random name. Only then is the upload an attachment.

Attached to messages, a file lives as long as one of them does: deleting the last message that
carries it withdraws it (served to nobody), and the expiry task deletes its bytes (files/jobs.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import filetype
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from core.errors import Conflict, PayloadTooLarge, Unprocessable
from files import inspection
from files.models import MessageAttachment, Upload
from files.partials import current_offset, exclusive_partial, partial_path
from files.selectors import upload_for_owner
from files.tasks import make_thumbnail
from files.tus import parse_length
from rooms.selectors import room_require_member

COPY_CHUNK = 1024 * 1024


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
        name=inspection.clean_filename(name if isinstance(name, str) else None),
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


def finalize(upload: Upload) -> Upload:
    """Sniff, check and move a fully received upload into storage. Refused files are deleted."""
    if upload.is_complete:
        return upload
    path = partial_path(upload)
    if current_offset(upload) != upload.length:
        raise Conflict("The upload is not complete yet.", code="upload_incomplete")
    with path.open("rb") as fh:
        head = fh.read(inspection.SNIFF_BYTES)
        content_type = inspection.sniff_type(head)
        facts = None
        try:
            if content_type in inspection.INLINE_IMAGE_TYPES:
                facts = inspection.check_image(fh, content_type, upload.length)
        except inspection.FileRefused as refused:
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


def upload_terminate(*, user: User, upload_id: Any) -> None:
    """tus termination: the owner drops an unfinished upload."""
    upload = upload_for_owner(user, upload_id)
    if upload.is_complete:
        raise Conflict("A finished upload is an attachment; it cannot be terminated.", code="upload_complete")
    partial_path(upload).unlink(missing_ok=True)
    upload.delete()


def _upload_ids(raw: Iterable[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for value in raw:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return sorted(set(ids))


def attach_to_message(*, room_id: int, message_id: str, upload_ids: Iterable[str]) -> None:
    """Record which message carries these uploads, once MongoDB stored the post (again harmless).

    A crash before this leaves a post without its rows; its deletion still finds its files, from
    the ids on the message (withdraw_message_files).
    """
    ids = _upload_ids(upload_ids)
    if not ids:
        return
    present = Upload.objects.filter(pk__in=ids, room_id=room_id).values_list("pk", flat=True)
    MessageAttachment.objects.bulk_create(
        [MessageAttachment(upload_id=pk, message_id=message_id) for pk in present], ignore_conflicts=True
    )


def withdraw_message_files(*, room_id: int, message_id: str, upload_ids: Iterable[str], now: datetime) -> int:
    """A message carrying these uploads is being deleted: called before its tombstone is written.

    Its links are marked withdrawn, and each upload that no other live message carries is withdrawn
    (404 to everyone from this commit on). Returns how many uploads were withdrawn.
    """
    ids = _upload_ids(upload_ids)
    if not ids:
        return 0
    with transaction.atomic():
        # Locked in one order: two deletions of messages sharing a file each see the other's link.
        rows = Upload.objects.select_for_update().filter(pk__in=ids, room_id=room_id).order_by("pk")
        locked = list(rows.values_list("pk", flat=True))
        if not locked:
            return 0
        MessageAttachment.objects.bulk_create(
            [MessageAttachment(upload_id=pk, message_id=message_id, withdrawn_at=now) for pk in locked],
            update_conflicts=True,
            unique_fields=["upload", "message_id"],
            update_fields=["withdrawn_at"],
        )
        still_carried = set(
            MessageAttachment.objects.filter(upload_id__in=locked, withdrawn_at__isnull=True).values_list(
                "upload_id", flat=True
            )
        )
        orphaned = [pk for pk in locked if pk not in still_carried]
        return Upload.objects.filter(pk__in=orphaned, withdrawn_at__isnull=True).update(withdrawn_at=now)
