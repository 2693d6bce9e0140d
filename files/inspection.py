"""What a file is, judged from its bytes: names cleaned, types sniffed, images checked, thumbnails drawn.

Nothing here trusts what the client declared: the type comes from the content (filetype's
magic numbers, then a UTF-8 check), images must decode within a pixel budget, and an image
that also carries markup (a polyglot) is refused.
"""

from __future__ import annotations

import io
import os
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO

import filetype
from django.conf import settings
from PIL import Image, UnidentifiedImageError

SNIFF_BYTES = 8192
# Served inline (shown in the page) only when they are one of these, decoded and re-checked.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MARKUP = (b"<script", b"<html", b"<svg", b"<?php", b"<iframe", b"<body", b"javascript:")
MAX_NAME_LENGTH = 255


class FileRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def clean_filename(raw: str | None) -> str:
    """A display name: no directories, no control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name:
        return "file"
    if len(name) > MAX_NAME_LENGTH:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: MAX_NAME_LENGTH - len(ext)] + ext
    return name


def sniff_type(head: bytes) -> str:
    """The content type from the first bytes; text only when it decodes as UTF-8."""
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    sample = head[:SNIFF_BYTES]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the sample is still text.
        if error.start < len(sample) - 3:
            return "application/octet-stream"
    return "text/plain" if b"\x00" not in sample else "application/octet-stream"


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int


def check_image(fh: IO[bytes], content_type: str, size: int) -> ImageFacts:
    """Decode the image within the pixel budget and refuse markup hidden in it."""
    _refuse_markup(fh, size)
    fh.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(fh) as image:
                width, height = image.size
                if width * height > settings.IMAGE_MAX_PIXELS:
                    raise FileRefused("image_too_large", f"Images may have at most {settings.IMAGE_MAX_PIXELS} pixels.")
                image.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise FileRefused("image_too_large", "The image decompresses to too many pixels.")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise FileRefused("invalid_image", f"The file claims to be {content_type} but does not decode: {error}")
    return ImageFacts(width=width, height=height)


def _refuse_markup(fh: IO[bytes], size: int) -> None:
    # Markup can hide in an image's metadata or after its end: look at both ends of the file.
    windows = [(0, 65536)]
    if size > 65536:
        windows.append((max(65536, size - 65536), 65536))
    for start, length in windows:
        fh.seek(start)
        chunk = fh.read(length).lower()
        if any(marker in chunk for marker in _MARKUP):
            raise FileRefused("polyglot_file", "The image also contains markup or script: refused.")


def make_thumbnail(fh: IO[bytes]) -> tuple[bytes, str]:
    """A bounded-size WebP (PNG for images with a palette) of the image; (bytes, content type)."""
    with Image.open(fh) as image:
        image.draft("RGB", (settings.THUMBNAIL_SIZE * 2, settings.THUMBNAIL_SIZE * 2))  # JPEG: decode small
        frame = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        frame.thumbnail((settings.THUMBNAIL_SIZE, settings.THUMBNAIL_SIZE))
        out = io.BytesIO()
        frame.save(out, format="WEBP", quality=80)
    return out.getvalue(), "image/webp"
