"""The search index, in PostgreSQL. Messages themselves live in MongoDB (messaging/store/).

Why PostgreSQL holds the index: MongoDB's `$text` finds whole stemmed words only (no parts of
words, URLs or code tokens) and SecantusDB has none at all, while PostgreSQL's `pg_trgm` GIN
index answers `LIKE '%part%'` from trigrams on any substring, runs on this machine and in every
production PostgreSQL, and lets one SQL statement join the caller's memberships (no message
from a room the caller is not in can come back).
"""

from __future__ import annotations

from django.db import models


class SearchEntry(models.Model):
    """One row per live message, written after delivery by search/indexing.py."""

    message_id = models.CharField(max_length=24, primary_key=True)
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.BigIntegerField()
    author_id = models.BigIntegerField()
    posted_at = models.DateTimeField()
    # Case-folded, accents removed (core/textfold.py), so one LIKE matches what a reader means.
    text = models.TextField()
    has_file = models.BooleanField(default=False)
    has_link = models.BooleanField(default=False)
    in_thread = models.BooleanField(default=False)
    # What was indexed last: an edit that adds a mention notifies only the new names.
    mentions = models.JSONField(default=list)
    mentions_room = models.BooleanField(default=False)
    version = models.BigIntegerField()

    class Meta:
        db_table = "messaging_searchentry"  # the table keeps the name it had under `messaging`
        indexes = [
            models.Index(fields=["room", "-posted_at", "-message_id"], name="search_room_time"),
            models.Index(fields=["-posted_at", "-message_id"], name="search_time"),
            models.Index(fields=["author_id", "-posted_at", "-message_id"], name="search_author_time"),
        ]
        # The trigram GIN index on `text` is created by messaging's migration 0002 (PostgreSQL only).

    def __str__(self) -> str:
        return f"{self.message_id} in {self.room_id}"


class SearchCursor(models.Model):
    """How far (in room `version`) the index has followed each room."""

    room = models.OneToOneField("rooms.Room", on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "messaging_searchcursor"

    def __str__(self) -> str:
        return f"room {self.room_id} indexed to {self.version}"
