"""Avatars: an uploaded picture checked like any image, stored as one square WebP, served with
headers that let clients keep it; the initials of a person without one, drawn as an SVG.

The stored name is new for every upload and the URL carries it (`?v=`), so a client may cache a
versioned URL forever: a new picture is a new URL, in every payload that names the person.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
import warnings
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpResponse
from django.utils.html import escape
from PIL import Image, ImageOps

from accounts.models import User
from core.errors import InvalidInput, NotFound, PayloadTooLarge, Unprocessable
from core.ids import parse_positive_id
from files import inspection

logger = logging.getLogger(__name__)

AVATAR_TYPE = "image/webp"
# Served as an image, never as a page of ours (the SVG is ours, but a sandbox costs nothing).
AVATAR_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
VERSIONED_CACHE = "private, max-age=31536000, immutable"
UNVERSIONED_CACHE = "private, no-cache"  # revalidate: the ETag answers 304 while it is unchanged
# Colours with white text at a contrast of at least 4.5:1, picked by the user's id.
# White initials on each of these read at 4.5:1 or better; static/chat/chat.css has the same list (.hue-N).
_COLOURS = ("#1f6feb", "#8250df", "#bf3989", "#cf222e", "#9a6700", "#1a7f37", "#0969da", "#57606a", "#953800")


def square_avatar(fh: Any) -> bytes:
    """The picture turned upright (EXIF), cropped to its centre square, AVATAR_SIZE on a side."""
    side = settings.AVATAR_SIZE
    with Image.open(fh) as image:
        image.draft("RGB", (side * 2, side * 2))  # JPEG: decode at a fraction of its size
        upright = ImageOps.exif_transpose(image)  # the first frame of an animation
        frame = upright.convert("RGBA" if upright.mode in ("RGBA", "LA", "P", "PA") else "RGB")
        square = ImageOps.fit(frame, (side, side), method=Image.Resampling.LANCZOS)
        out = io.BytesIO()
        square.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


def _checked_square(uploaded: Any) -> bytes:
    if uploaded is None:
        raise InvalidInput("Send the picture as the multipart field `file`.", fields={"file": ["Required."]})
    size = int(getattr(uploaded, "size", 0) or 0)
    if size > settings.AVATAR_MAX_SIZE:
        raise PayloadTooLarge(f"Avatars are limited to {settings.AVATAR_MAX_SIZE} bytes.", code="file_too_large")
    if size == 0:
        raise InvalidInput("The file is empty.", fields={"file": ["Empty."]})
    uploaded.seek(0)
    content_type = inspection.sniff_type(uploaded.read(inspection.SNIFF_BYTES))
    if content_type not in inspection.INLINE_IMAGE_TYPES:
        raise InvalidInput(
            "An avatar must be a PNG, JPEG, GIF or WebP image.",
            code="invalid_image",
            fields={"file": ["Not an image."]},
        )
    try:
        inspection.check_image(uploaded, content_type, size)
        uploaded.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return square_avatar(uploaded)
    except inspection.FileRefused as refused:  # as for attachments: 422 with the check's code
        raise Unprocessable(refused.detail, code=refused.code)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # verify() passed but the full decode did not (a truncated file): refused, nothing stored.
        raise Unprocessable(f"The image does not decode: {error}", code="invalid_image")


def set_avatar(user: User, uploaded: Any) -> User:
    """Store the new square, then point the user at it; the old picture is deleted after commit."""
    data = _checked_square(uploaded)
    name = default_storage.save(f"avatars/{user.pk}/{uuid.uuid4().hex}.webp", ContentFile(data))
    try:
        with transaction.atomic():
            locked = User.objects.select_for_update().get(pk=user.pk)
            old = locked.avatar_name
            locked.avatar_name = name
            locked.save(update_fields=["avatar_name"])
            if old:
                transaction.on_commit(lambda: _delete_quietly(old))
    except BaseException:
        _delete_quietly(name)  # nothing points at it
        raise
    return locked


def remove_avatar(user: User) -> User:
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        old = locked.avatar_name
        if old:
            locked.avatar_name = ""
            locked.save(update_fields=["avatar_name"])
            transaction.on_commit(lambda: _delete_quietly(old))
    return locked


def _delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        # Nothing points at it any more: a leftover file, logged, never an error for the user.
        logger.warning("could not delete the replaced avatar %s", name, exc_info=True)


def initials(shown_name: str) -> str:
    """One or two letters: the first of the first and last words of the name shown (static/chat/js/dom.js
    draws the same)."""
    words = shown_name.split()
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def hue_of(user_id: int) -> int:
    return user_id % len(_COLOURS)


def colour_of(user_id: int) -> str:
    return _COLOURS[hue_of(user_id)]


def initials_svg(user: User) -> bytes:
    side = settings.AVATAR_SIZE
    text = escape(initials(user.display_name or user.username))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" viewBox="0 0 100 100">'
        f'<rect width="100" height="100" fill="{colour_of(user.pk)}"/>'
        f'<text x="50" y="50" dy=".35em" text-anchor="middle" fill="#fff" '
        f'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif" font-size="42" font-weight="600">'
        f"{text}</text></svg>"
    ).encode()


def avatar_response(request: Any, raw_user_id: Any) -> HttpResponse:
    """The picture (or the initials), with an ETag; a `?v=` that names the current one may be kept."""
    pk = parse_positive_id(raw_user_id)
    user = User.objects.filter(pk=pk).only("pk", "username", "display_name", "avatar_name").first() if pk else None
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if user.avatar_name:
        version = (user.avatar_url or "").rsplit("=", 1)[-1]
        etag = f'"{version}"'
        cache = VERSIONED_CACHE if request.GET.get("v") == version else UNVERSIONED_CACHE
        content_type = AVATAR_TYPE
        body: bytes | None = None
    else:
        body = initials_svg(user)
        etag = f'"i-{hashlib.blake2b(body, digest_size=8).hexdigest()}"'
        cache, content_type = UNVERSIONED_CACHE, "image/svg+xml"
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        if body is None:
            try:
                with default_storage.open(user.avatar_name, "rb") as fh:
                    body = fh.read()
            except FileNotFoundError:
                raise NotFound("The picture is gone.", code="avatar_not_found")
        response = HttpResponse(body, content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = cache
    response["Content-Security-Policy"] = AVATAR_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Vary"] = "Cookie, Authorization"
    return response
