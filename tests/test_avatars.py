"""Avatars: a picture checked like any image, stored square, served with caching headers; initials
otherwise; every User payload names the picture."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from tests.conftest import client_for
from tests.live import ServerProcess, bearer, running_server
from tests.test_uploads import png_bytes, raw_request
from tests.test_websocket import make_room, token

RED, BLUE = (220, 20, 20), (20, 20, 220)


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.UPLOAD_TEMP_DIR = str(tmp_path / "partial")
    return tmp_path / "media"


def stored_avatars(media: Path) -> list[str]:
    folder = media / "avatars"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def sideways_jpeg() -> bytes:
    """A landscape photo taken with the phone turned: EXIF says rotate it upright (orientation 6).
    Left half red, right half blue as stored; upright, red is on top."""
    image = Image.new("RGB", (1200, 600), BLUE)
    image.paste(RED, (0, 0, 600, 600))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def put_avatar(user: User, data: bytes, name: str = "me.jpg") -> Any:
    upload = SimpleUploadedFile(name, data, content_type="image/jpeg")
    return client_for(user).put("/api/auth/me/avatar", {"file": upload}, format="multipart")


def test_an_avatar_is_stored_upright_square_and_cached_by_its_url(media: Path, alice: User, bob: User) -> None:
    answer = put_avatar(alice, sideways_jpeg())
    assert answer.status_code == 200, answer.content
    url = answer.json()["avatar_url"]
    assert url.startswith(f"/api/users/{alice.pk}/avatar?v=") and answer.json()["email"] == alice.email

    served = client_for(bob).get(url)  # anyone signed in sees faces
    assert served.status_code == 200 and served["Content-Type"] == "image/webp"
    assert served["Cache-Control"] == "private, max-age=31536000, immutable"
    assert served["X-Content-Type-Options"] == "nosniff" and "sandbox" in served["Content-Security-Policy"]
    with Image.open(io.BytesIO(served.content)) as picture:
        assert picture.size == (256, 256)
        rgb = picture.convert("RGB")
        # Turned upright before the crop: red on top, blue below (sideways it would be left/right).
        assert max(abs(a - b) for a, b in zip(rgb.getpixel((220, 30)), RED, strict=True)) < 40
        assert max(abs(a - b) for a, b in zip(rgb.getpixel((30, 220)), BLUE, strict=True)) < 40
    again = client_for(bob).get(url, HTTP_IF_NONE_MATCH=served["ETag"])
    assert again.status_code == 304 and not again.content

    # Every payload that names Alice names her picture: people, members, messages.
    assert client_for(bob).get(f"/api/users/{alice.pk}").json()["avatar_url"] == url
    room = make_room(alice, bob)
    members = client_for(bob).get(f"/api/rooms/{room.pk}/members").json()["results"]
    assert {m["user"]["username"]: m["user"]["avatar_url"] for m in members} == {"alice": url, "bob": None}
    posted = client_for(alice).post(f"/api/messages/{room.pk}/", {"body": "hello"}, format="json").json()
    assert posted["author"]["avatar_url"] == url


def test_a_new_picture_is_a_new_url_and_the_old_file_goes(
    media: Path, alice: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    first = put_avatar(alice, sideways_jpeg()).json()["avatar_url"]
    with django_capture_on_commit_callbacks(execute=True):  # the old file goes once the new one is committed
        second = put_avatar(alice, png_bytes(300, 300), "me.png").json()["avatar_url"]
    assert first != second and len(stored_avatars(media)) == 1
    stale = client_for(bob).get(first)  # an old URL still shows the person, but is not kept
    assert stale.status_code == 200 and stale["Cache-Control"] == "private, no-cache"
    assert stale["ETag"] == client_for(bob).get(second)["ETag"]


def test_removing_the_picture_leaves_initials(
    media: Path, make_user: Any, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    alice = make_user("alice", display_name="Alice  Liddell")
    put_avatar(alice, sideways_jpeg())
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(alice).delete("/api/auth/me/avatar").status_code == 204
    assert stored_avatars(media) == []
    assert client_for(bob).get(f"/api/users/{alice.pk}").json()["avatar_url"] is None
    initials = client_for(bob).get(f"/api/users/{alice.pk}/avatar")
    assert initials.status_code == 200 and initials["Content-Type"] == "image/svg+xml"
    assert b">AL</text>" in initials.content and b"<script" not in initials.content
    assert initials["Cache-Control"] == "private, no-cache"
    assert client_for(alice).delete("/api/auth/me/avatar").status_code == 204  # idempotent
    markup = make_user("zed", display_name="<img src=x>")
    assert b">&lt;S</text>" in client_for(bob).get(f"/api/users/{markup.pk}/avatar").content  # escaped


def test_avatar_refusals_store_nothing(settings: Any, media: Path, alice: User, anon: Any) -> None:
    me = client_for(alice)
    missing = me.put("/api/auth/me/avatar", {}, format="multipart")
    assert missing.status_code == 400 and missing.json()["fields"]["file"]
    text = put_avatar(alice, b"just some words, not a picture", "me.png")
    assert text.status_code == 400 and text.json()["code"] == "invalid_image"
    polyglot = put_avatar(alice, png_bytes() + b"<script>alert(1)</script>", "me.png")
    assert polyglot.status_code == 422 and polyglot.json()["code"] == "polyglot_file"
    truncated = put_avatar(alice, sideways_jpeg()[:2000])
    assert truncated.status_code == 422 and truncated.json()["code"] == "invalid_image"
    settings.IMAGE_MAX_PIXELS = 100 * 100
    bomb = put_avatar(alice, png_bytes(200, 200), "me.png")
    assert bomb.status_code == 422 and bomb.json()["code"] == "image_too_large"
    settings.AVATAR_MAX_SIZE = 1000
    big = put_avatar(alice, sideways_jpeg())
    assert big.status_code == 413 and big.json()["code"] == "file_too_large"
    assert stored_avatars(media) == [] and User.objects.get(pk=alice.pk).avatar_name == ""
    assert anon.put("/api/auth/me/avatar", {}, format="multipart").status_code == 401
    assert anon.get(f"/api/users/{alice.pk}/avatar").status_code == 401
    for unknown in ("999999", "abc", "0"):
        gone = me.get(f"/api/users/{unknown}/avatar")
        assert gone.status_code == 404 and gone.json()["code"] == "user_not_found"


def test_avatar_uploads_are_rate_limited(
    settings: Any, media: Path, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AVATAR_RATE_LIMIT = "2/h"
    with django_capture_on_commit_callbacks(execute=True):
        assert put_avatar(alice, png_bytes(), "a.png").status_code == 200
        assert put_avatar(alice, png_bytes(), "a.png").status_code == 200
        limited = put_avatar(alice, png_bytes(), "a.png")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert len(stored_avatars(media)) == 1


# --- through a real server process -------------------------------------------------------------


@pytest.fixture
def avatar_server(transactional_db: Any, mongo_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    dirs = {"MEDIA_ROOT": str(tmp_path / "media"), "UPLOAD_TEMP_DIR": str(tmp_path / "partial")}
    with running_server(tmp_path, server="uvicorn", AVATAR_MAX_SIZE=str(4 * 1024 * 1024), **dirs) as server:
        yield server


def test_a_phone_photo_over_the_request_limit_is_taken_and_a_huge_one_refused_unread(
    avatar_server: ServerProcess, alice: User
) -> None:
    noisy = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))  # ~3 MB as PNG: over the 1 MiB body limit
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert out.tell() > 2 * 1024 * 1024
    with httpx.Client(base_url=avatar_server.http, headers=bearer(token(alice)), timeout=30) as http:
        taken = http.put("/api/auth/me/avatar", files={"file": ("photo.png", out.getvalue(), "image/png")})
        assert taken.status_code == 200, taken.text
        assert http.get(taken.json()["avatar_url"]).headers["content-type"] == "image/webp"
    head = (
        f"PUT /api/auth/me/avatar HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token(alice)}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 999999999\r\n\r\n"
    )
    answer = raw_request(avatar_server, head, until=b"file_too_large")  # not one byte of the body sent
    assert answer.startswith(b"HTTP/1.1 413"), answer
