"""Work done after an upload, by Celery (files/tasks.py): thumbnails, and expiring unfinished uploads."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from files import inspection
from files.models import Upload
from files.partials import partial_path


def write_thumbnail(upload_id: str) -> None:
    upload = Upload.objects.filter(pk=upload_id, completed_at__isnull=False).first()
    if upload is None or upload.thumbnail_name or upload.content_type not in inspection.INLINE_IMAGE_TYPES:
        return
    with default_storage.open(upload.storage_name, "rb") as fh:
        data, _ = inspection.make_thumbnail(fh)
    name = default_storage.save(f"thumbnails/{upload.room_id}/{uuid.uuid4().hex}.webp", ContentFile(data))
    Upload.objects.filter(pk=upload.pk).update(thumbnail_name=name)


def expire_unfinished() -> int:
    """Delete unfinished uploads past their expiry, bytes and rows (a periodic task)."""
    expired = list(Upload.objects.filter(completed_at__isnull=True, expires_at__lt=timezone.now()))
    for upload in expired:
        partial_path(upload).unlink(missing_ok=True)
    Upload.objects.filter(pk__in=[u.pk for u in expired]).delete()
    return len(expired)
