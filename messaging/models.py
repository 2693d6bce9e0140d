"""PostgreSQL side of messaging: the search index. Messages themselves live in MongoDB (store.py).

Why PostgreSQL holds the index: MongoDB's `$text` finds whole stemmed words only (no parts of
words, URLs or code tokens) and SecantusDB has none at all, while PostgreSQL's `pg_trgm` GIN
index answers `LIKE '%part%'` from trigrams on any substring, runs on this machine and in every
production PostgreSQL, and lets one SQL statement join the caller's memberships (no message
from a room the caller is not in can come back).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class SearchEntry(models.Model):
    """One row per live message, written after delivery by messaging.indexing."""

    message_id = models.CharField(max_length=24, primary_key=True)
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.BigIntegerField()
    author_id = models.BigIntegerField()
    posted_at = models.DateTimeField()
    # Case-folded, accents removed (messaging.textnorm), so one LIKE matches what a reader means.
    text = models.TextField()
    has_file = models.BooleanField(default=False)
    has_link = models.BooleanField(default=False)
    in_thread = models.BooleanField(default=False)
    # What was indexed last: an edit that adds a mention notifies only the new names.
    mentions = models.JSONField(default=list)
    mentions_room = models.BooleanField(default=False)
    version = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["room", "-posted_at", "-message_id"], name="search_room_time"),
            models.Index(fields=["-posted_at", "-message_id"], name="search_time"),
            models.Index(fields=["author_id", "-posted_at", "-message_id"], name="search_author_time"),
        ]
        # The trigram GIN index on `text` is created by migration 0002 (PostgreSQL only).

    def __str__(self) -> str:
        return f"{self.message_id} in {self.room_id}"


class SearchCursor(models.Model):
    """How far (in room `version`) the index has followed each room."""

    room = models.OneToOneField("rooms.Room", on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"room {self.room_id} indexed to {self.version}"


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

    class Meta:
        indexes = [
            models.Index(fields=["owner", "completed_at"], name="upload_owner"),
            models.Index(fields=["completed_at", "expires_at"], name="upload_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.length} bytes)"

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None
