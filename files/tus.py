"""The tus 1.0 protocol's own rules (https://tus.io/protocols/resumable-upload), one place each.

Used by the Django views (creation, HEAD, termination) and by the raw PATCH handler alike.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings

from core.errors import InvalidInput, PayloadTooLarge
from core.ids import parse_count
from files.models import Upload
from files.partials import current_offset

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,expiration,termination"


def tus_headers(**extra: str) -> dict[str, str]:
    """What every tus answer carries, errors included."""
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def require_tus_version(header: str | None) -> None:
    """The client's `Tus-Resumable` must name the version this server speaks (412 otherwise)."""
    if header != TUS_VERSION:
        raise InvalidInput("Tus-Resumable: 1.0.0 is required.", code="tus_version", status=412)


def parse_length(raw: Any) -> int:
    """`Upload-Length`: a non-negative integer within UPLOAD_MAX_SIZE (413 past it)."""
    if raw is None or raw == "":
        raise InvalidInput("Upload-Length is required.", code="missing_length")
    length = parse_count(str(raw))
    if length is None:
        raise InvalidInput("Upload-Length must be a non-negative integer.", code="invalid_length")
    if length > settings.UPLOAD_MAX_SIZE:
        raise PayloadTooLarge(f"Files may be at most {settings.UPLOAD_MAX_SIZE} bytes.", code="file_too_large")
    return length


def parse_metadata(raw: Any) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs."""
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


def offset_headers(upload: Upload, offset: int | None = None) -> dict[str, str]:
    """`Upload-Offset`, and `Upload-Expires` (an RFC 9110 date) while unfinished."""
    headers = {"Upload-Offset": str(offset if offset is not None else current_offset(upload))}
    if not upload.is_complete:
        headers["Upload-Expires"] = upload.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers
