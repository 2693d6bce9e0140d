"""Uploads, in PostgreSQL. The table keeps the name it had when this model lived in `messaging`."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Upload(models.Model):
    """A file on its way in (tus or multipart) and, once complete, an attachment of the room.

    The bytes of an unfinished upload sit in UPLOAD_TEMP_DIR (the partial file's size is the
    offset); a complete one lives in Django's default storage under a random name.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    name = models.CharField(max_length=255)  # cleaned for display and Content-Disposition
    declared_type = models.CharField(max_length=255, blank=True, default="")  # what the client said
    length = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    storage_name = models.CharField(max_length=255, blank=True, default="")
    content_type = models.CharField(max_length=100, blank=True, default="")  # sniffed, never declared
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    thumbnail_name = models.CharField(max_length=255, blank=True, default="")
    # Every message it was attached to is deleted (files/services.py): from then on it is served to
    # nobody, thumbnail included, and the periodic expiry task deletes its bytes and this row.
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "messaging_upload"
        indexes = [
            models.Index(fields=["owner", "completed_at"], name="upload_owner"),
            models.Index(fields=["completed_at", "expires_at"], name="upload_expiry"),
            # The purge of withdrawn files (files/jobs.py) reads only these: few rows, a small index.
            models.Index(fields=["withdrawn_at"], name="upload_withdrawn", condition=Q(withdrawn_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.length} bytes)"

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None


class MessageAttachment(models.Model):
    """An upload attached to a message. Messages live in MongoDB; which ones carry a file is known
    here, so deleting the last live message that carries it withdraws the file in PostgreSQL.

    A post writes these rows after MongoDB stored it; a deletion writes (or completes) its rows
    before the tombstone, from the attachment ids on the message itself.
    """

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="message_links")
    message_id = models.CharField(max_length=24)  # the MongoDB ObjectId, hex
    attached_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)  # the message was deleted

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "message_id"], name="attachment_once")]

    def __str__(self) -> str:
        return f"{self.upload_id} on {self.message_id}"
