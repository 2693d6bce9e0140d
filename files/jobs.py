"""Work done after an upload, by Celery (files/tasks.py): thumbnails, expiring unfinished uploads,
and deleting the bytes of withdrawn files (those of deleted messages)."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from files import inspection
from files.models import Upload
from files.partials import partial_path


def write_thumbnail(upload_id: str) -> None:
    upload = Upload.objects.filter(pk=upload_id, completed_at__isnull=False, withdrawn_at__isnull=True).first()
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


def purge_withdrawn() -> int:
    """Delete withdrawn files (every message that carried them is deleted): bytes, thumbnail, row.

    They are served to nobody from the moment they are withdrawn; this only frees the storage. A
    storage error stops the run, and the next one (the same periodic task) picks up the rest.
    """
    withdrawn = list(Upload.objects.filter(withdrawn_at__isnull=False).order_by("withdrawn_at")[:1000])
    for upload in withdrawn:
        for name in (upload.storage_name, upload.thumbnail_name):
            if name:
                default_storage.delete(name)
        upload.delete()
    return len(withdrawn)
