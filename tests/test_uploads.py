"""Files: tus uploads through a real server, the small-file path, limits, safety, attachments."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from PIL import Image

from accounts.models import User
from chatproject.asgi import application
from files import jobs, partials, services
from files.models import Upload
from rooms.models import Room
from tests.conftest import client_for
from tests.live import ServerProcess, bearer, running_server
from tests.test_websocket import make_room, token

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def file_dirs(settings: Any, tmp_path: Path) -> dict[str, str]:
    dirs = {"UPLOAD_TEMP_DIR": str(tmp_path / "partial"), "MEDIA_ROOT": str(tmp_path / "media")}
    for name, value in dirs.items():
        setattr(settings, name, value)
    return dirs


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def content_of(response: Any) -> bytes:
    """The body of a streamed (async) file response, read the way the ASGI server does."""

    async def collect() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return asyncio.run(collect())


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


# --- through a real server process -------------------------------------------------------------


@pytest.fixture(params=["daphne", "uvicorn"])
def file_server(
    request: pytest.FixtureRequest, transactional_db: Any, mongo_url: str, tmp_path: Path, file_dirs: dict[str, str]
) -> Iterator[ServerProcess]:
    with running_server(tmp_path, server=request.param, UPLOAD_MAX_SIZE=str(8 * 1024 * 1024), **file_dirs) as server:
        yield server


@pytest.fixture
def streaming_server(
    transactional_db: Any, mongo_url: str, tmp_path: Path, file_dirs: dict[str, str]
) -> Iterator[ServerProcess]:
    """Uvicorn hands the application a request before its body (Daphne waits for all of it)."""
    with running_server(tmp_path, server="uvicorn", UPLOAD_MAX_SIZE=str(8 * 1024 * 1024), **file_dirs) as server:
        yield server


def send_partial_patch(server: ServerProcess, path: str, access: str, offset: int, total: int, part: bytes) -> None:
    """A PATCH that announces `total` bytes, sends `part` of them, and drops the connection."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {access}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {offset}\r\nContent-Length: {total}\r\n\r\n"
        )
        sock.sendall(head.encode() + part)


def settled_offset(client: httpx.Client, path: str) -> int:
    """HEAD until the offset stops moving: the server may still be writing what the dead connection sent."""
    previous = -1
    for _ in range(50):
        head = client.head(path)
        assert head.status_code == 200
        offset = int(head.headers["Upload-Offset"])
        if offset == previous:
            return offset
        previous = offset
        time.sleep(0.1)
    raise AssertionError("the offset never settled")


@pytest.mark.slow
def test_tus_upload_in_chunks_survives_a_dropped_connection(file_server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    data = os.urandom(3 * 1024 * 1024 + 123)
    chunk = 512 * 1024
    with httpx.Client(base_url=file_server.http, headers={**bearer(token(alice)), **TUS}, timeout=30) as client:
        created = client.post(
            f"/api/rooms/{room.pk}/uploads/",
            headers={"Upload-Length": str(len(data)), "Upload-Metadata": metadata(filename="big.bin")},
        )
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        path = httpx.URL(location).path
        patch_headers = {"Content-Type": "application/offset+octet-stream"}
        offset = 0
        for _ in range(2):
            sent = client.patch(
                path, content=data[offset : offset + chunk], headers={**patch_headers, "Upload-Offset": str(offset)}
            )
            assert sent.status_code == 204, sent.text
            offset = int(sent.headers["Upload-Offset"])
        assert offset == 2 * chunk
        # Half of the third chunk, then the connection dies.
        send_partial_patch(file_server, path, token(alice), offset, chunk, data[offset : offset + chunk // 2])
        offset = settled_offset(client, path)
        # Whatever the server kept (a server that streams keeps the half chunk), it is a prefix.
        assert 2 * chunk <= offset <= 2 * chunk + chunk // 2
        wrong = client.patch(path, content=b"x", headers={**patch_headers, "Upload-Offset": str(offset + 1)})
        assert wrong.status_code == 409
        while offset < len(data):
            sent = client.patch(
                path, content=data[offset : offset + chunk], headers={**patch_headers, "Upload-Offset": str(offset)}
            )
            assert sent.status_code == 204, sent.text
            offset = int(sent.headers["Upload-Offset"])
        attachment = client.get(path).json()
        assert attachment["size"] == len(data) and attachment["name"] == "big.bin"
        assert attachment["content_type"] == "application/octet-stream"

    with httpx.Client(base_url=file_server.http, headers=bearer(token(bob)), timeout=30) as reader:
        download = reader.get(attachment["url"])
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == hashlib.sha256(data).hexdigest()
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in download.headers["Content-Security-Policy"]
        # A download cut short resumes where it stopped, through the real server.
        rest = reader.get(attachment["url"], headers={"Range": f"bytes={len(data) - 12345}-"})
        assert rest.status_code == 206 and rest.content == data[-12345:]


@pytest.mark.slow
def test_non_members_get_404_for_upload_and_download(file_server: ServerProcess, alice: User, carol: User) -> None:
    room = make_room(alice)
    with httpx.Client(base_url=file_server.http, headers={**bearer(token(alice)), **TUS}, timeout=30) as owner:
        created = owner.post(f"/api/rooms/{room.pk}/uploads/", headers={"Upload-Length": "4"})
        path = httpx.URL(created.headers["Location"]).path
    with httpx.Client(base_url=file_server.http, headers={**bearer(token(carol)), **TUS}, timeout=30) as outsider:
        headers = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        assert outsider.patch(path, content=b"evil", headers=headers).status_code == 404
        assert outsider.head(path).status_code == 404
        assert outsider.get(path).status_code == 404
        assert outsider.post(f"/api/rooms/{room.pk}/uploads/", headers={"Upload-Length": "4"}).status_code == 403
    with httpx.Client(base_url=file_server.http, headers={**bearer(token(alice)), **TUS}, timeout=30) as owner:
        done = owner.patch(
            path, content=b"data", headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        )
        assert done.status_code == 204 and done.headers["Upload-Offset"] == "4"
        url = owner.get(path).json()["url"]
        assert owner.get(url).content == b"data"
    with httpx.Client(base_url=file_server.http, headers=bearer(token(carol)), timeout=30) as outsider:
        assert outsider.get(url).status_code == 404
        assert outsider.get(path).status_code == 404
    anonymous = httpx.patch(file_server.http + path, content=b"x", headers={**TUS, "Upload-Offset": "0"})
    assert anonymous.status_code == 401


@pytest.mark.slow
def test_oversized_multipart_is_refused_before_the_body_is_read(streaming_server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    with socket.create_connection(("127.0.0.1", streaming_server.port)) as sock:
        head = (
            f"POST /api/rooms/{room.pk}/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token(alice)}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 999999999\r\n\r\n"
        )
        sock.sendall(head.encode())  # and not one byte of the promised body
        sock.settimeout(10)
        answer = b""
        while b"file_too_large" not in answer and (part := sock.recv(4096)):
            answer += part
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"file_too_large" in answer


def raw_request(server: ServerProcess, head: str, body: bytes = b"", *, until: bytes) -> bytes:
    """Send a request's head (and maybe some body) and read the answer until `until` appears."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head.encode() + body)
        sock.settimeout(10)
        answer = b""
        while until not in answer and (part := sock.recv(4096)):
            answer += part
    return answer


@pytest.mark.slow
def test_request_bodies_are_bounded_before_they_are_read(streaming_server: ServerProcess, alice: User) -> None:
    # A declared 2 GB login: refused before a byte of it (Django would have spooled it all).
    declared = raw_request(
        streaming_server,
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 2147483648\r\n\r\n",
        until=b"body_too_large",
    )
    assert declared.startswith(b"HTTP/1.1 413"), declared
    # A chunked body that never says its size: refused once it passes the limit (1 MiB here).
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))  # 1.25 MiB, no end
    streamed = raw_request(
        streaming_server,
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        chunks,
        until=b"body_too_large",
    )
    assert streamed.startswith(b"HTTP/1.1 413"), streamed
    # An anonymous upload is refused before its body: nothing is spooled for someone unknown.
    room = make_room(alice)
    anonymous = raw_request(
        streaming_server,
        f"POST /api/rooms/{room.pk}/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n",
        until=b"not_authenticated",
    )
    assert anonymous.startswith(b"HTTP/1.1 401"), anonymous
    # Bodies under the limit reach the views as before.
    login = httpx.post(f"{streaming_server.http}/api/auth/login", json={"username": "alice", "password": "nope"})
    assert login.status_code == 401 and login.json()["code"] == "invalid_credentials"


# --- the PATCH handler at the ASGI level --------------------------------------------------------


def run_patch(
    user: User, upload: Upload, pieces: list[bytes], *, offset: int = 0, disconnect: bool = False, **headers: str
) -> tuple[int, dict[str, str]]:
    """Drive the ASGI app with a PATCH whose body arrives in pieces (and maybe never finishes)."""
    all_headers = {
        "authorization": f"Bearer {token(user)}",
        "tus-resumable": "1.0.0",
        "content-type": "application/offset+octet-stream",
        "upload-offset": str(offset),
        **{k.lower().replace("_", "-"): v for k, v in headers.items()},
    }
    scope = {
        "type": "http",
        "method": "PATCH",
        "path": f"/api/uploads/{upload.pk}",
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        "query_string": b"",
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": piece, "more_body": disconnect or i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    if not sent:
        return 0, {}
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


@pytest.fixture
def tus_room(transactional_db: Any, alice: User, bob: User, file_dirs: dict[str, str]) -> Room:
    return make_room(alice, bob)


def test_disconnect_mid_body_keeps_what_arrived(tus_room: Room, alice: User) -> None:
    upload = services.upload_create(user=alice, room_id=tus_room.pk, length=10, name="a.txt")
    status, _ = run_patch(alice, upload, [b"abcd"], disconnect=True)
    assert status == 0  # nobody left to answer
    assert partials.current_offset(upload) == 4
    status, headers = run_patch(alice, upload, [b"efg", b"hij"], offset=4)
    assert status == 204 and headers["upload-offset"] == "10"
    upload.refresh_from_db()
    assert upload.is_complete and upload.content_type == "text/plain"


def test_patch_refusals(tus_room: Room, alice: User, bob: User) -> None:
    upload = services.upload_create(user=alice, room_id=tus_room.pk, length=5, name="a.txt")
    assert run_patch(alice, upload, [b"x"], tus_resumable="0.2.2")[0] == 412
    assert run_patch(alice, upload, [b"x"], content_type="text/plain")[0] == 415
    assert run_patch(alice, upload, [b"x"], upload_offset="abc")[0] == 400
    assert run_patch(alice, upload, [b"x"], upload_offset="9" * 5000)[0] == 400  # was a 500
    assert run_patch(alice, upload, [b"x"], upload_offset="²")[0] == 400  # isdigit() but not int()
    assert run_patch(alice, upload, [b"x"], offset=3)[0] == 409
    assert run_patch(alice, upload, [b"x" * 9], content_length="9")[0] == 413
    assert run_patch(bob, upload, [b"x"])[0] == 404  # a member, but not the uploader
    # A body longer than announced is cut at Upload-Length and refused.
    status, _ = run_patch(alice, upload, [b"abc", b"defgh"])
    assert status == 413 and partials.current_offset(upload) == 5


# --- the REST side -------------------------------------------------------------------------------


@pytest.fixture
def room(db: Any, alice: User, bob: User, file_dirs: dict[str, str]) -> Room:
    return make_room(alice, bob)


def create(user: User, room_id: int, length: Any, **headers: str) -> Any:
    return client_for(user).post(
        f"/api/rooms/{room_id}/uploads/", HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_LENGTH=str(length), **headers
    )


def test_creation_limits(settings: Any, room: Room, alice: User) -> None:
    settings.UPLOAD_MAX_SIZE = 1000
    settings.UPLOAD_USER_QUOTA = 1500
    assert create(alice, room.pk, 1001).status_code == 413
    created = create(alice, room.pk, 1000, HTTP_UPLOAD_METADATA=metadata(filename="x"))
    assert created.status_code == 201 and created["Tus-Resumable"] == "1.0.0" and created["Upload-Offset"] == "0"
    over = create(alice, room.pk, 600)
    assert over.status_code == 413 and over.json()["code"] == "quota_exceeded"
    assert client_for(alice).post(f"/api/rooms/{room.pk}/uploads/", HTTP_TUS_RESUMABLE="1.0.0").status_code == 400
    assert create(alice, room.pk, "-5").status_code == 400
    for unreadable in ("9" * 5000, "²"):  # int() refuses the first and str.isdigit() accepts the second
        assert create(alice, room.pk, unreadable).json()["code"] == "invalid_length"
    assert create(alice, room.pk, 5, HTTP_UPLOAD_METADATA="filename !!notbase64").status_code == 400
    missing_version = client_for(alice).post(f"/api/rooms/{room.pk}/uploads/", HTTP_UPLOAD_LENGTH="5")
    assert missing_version.status_code == 412
    options = client_for(alice).options(f"/api/rooms/{room.pk}/uploads/")
    assert options.status_code == 204 and options["Tus-Version"] == "1.0.0" and "creation" in options["Tus-Extension"]


def test_filenames_are_cleaned(room: Room, alice: User) -> None:
    cases = {
        "../../etc/passwd": "passwd",
        "C:\\Users\\x\\report.pdf": "report.pdf",
        "bad\x00na\x1bme\n.txt": "badname.txt",
        "": "file",
        "a" * 1000 + ".jpeg": "a" * 250 + ".jpeg",
    }
    for raw, expected in cases.items():
        created = create(alice, room.pk, 3, HTTP_UPLOAD_METADATA=metadata(filename=raw))
        upload = Upload.objects.get(pk=created["Location"].rsplit("/", 1)[-1])
        assert upload.name == expected


def multipart(user: User, room_id: int, name: str, data: bytes, content_type: str = "application/octet-stream") -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client_for(user).post(
        f"/api/rooms/{room_id}/files", {"file": SimpleUploadedFile(name, data, content_type=content_type)}
    )


def test_image_gets_sniffed_type_thumbnail_and_inline_serving(room: Room, alice: User, bob: User) -> None:
    posted = multipart(alice, room.pk, "photo.txt", png_bytes(800, 600), content_type="text/plain")
    assert posted.status_code == 201, posted.content
    attachment = posted.json()
    assert attachment["content_type"] == "image/png"  # sniffed, the declared type is ignored
    assert (attachment["width"], attachment["height"]) == (800, 600)
    # The thumbnail task ran (inline in these tests); the API shows it once it is ready.
    attachment = client_for(bob).get(f"/api/uploads/{attachment['id']}").json()
    assert attachment["thumbnail_url"] is not None
    thumb = client_for(bob).get(attachment["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(content_of(thumb))) as image:
        assert max(image.size) <= 320
    served = client_for(bob).get(attachment["url"])
    assert served["Content-Disposition"].startswith("inline") and served["Content-Type"] == "image/png"


def test_markup_never_served_as_a_page(room: Room, alice: User) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    attachment = multipart(alice, room.pk, "cat.png", page, content_type="image/png").json()
    assert attachment["content_type"] == "text/plain"
    served = client_for(alice).get(attachment["url"])
    assert served["Content-Type"] == "text/plain" and served["Content-Disposition"].startswith("attachment")
    assert served["X-Content-Type-Options"] == "nosniff" and "sandbox" in served["Content-Security-Policy"]


def test_bombs_and_polyglots_are_refused(settings: Any, room: Room, alice: User) -> None:
    polyglot = png_bytes() + b"<script>alert(1)</script>"
    refused = multipart(alice, room.pk, "poly.png", polyglot)
    assert refused.status_code == 422 and refused.json()["code"] == "polyglot_file"
    settings.IMAGE_MAX_PIXELS = 100 * 100
    bomb = multipart(alice, room.pk, "bomb.png", png_bytes(200, 200))
    assert bomb.status_code == 422 and bomb.json()["code"] == "image_too_large"
    assert not Upload.objects.filter(owner=alice).exists()  # nothing half-kept
    truncated = multipart(alice, room.pk, "broken.png", png_bytes()[:60])
    assert truncated.status_code == 422 and truncated.json()["code"] == "invalid_image"


def test_messages_carry_attachments_and_search_finds_them(room: Room, alice: User, bob: User) -> None:
    attachment = multipart(alice, room.pk, "notes.txt", b"hello file").json()
    posted = client_for(alice).post(
        f"/api/messages/{room.pk}", {"body": "see attached", "attachments": [attachment["id"]]}, format="json"
    )
    assert posted.status_code == 201, posted.content
    assert posted.json()["attachments"] == [attachment]
    files_only = client_for(alice).post(f"/api/messages/{room.pk}", {"attachments": [attachment["id"]]}, format="json")
    assert files_only.status_code == 201 and files_only.json()["body"] == ""
    found = client_for(bob).get("/api/search", {"q": "has:file attached"}).json()["results"]
    assert [m["body"] for m in found] == ["see attached"]
    # Somebody else's upload, an unfinished one, or garbage: 400.
    other = multipart(bob, room.pk, "b.txt", b"bob's").json()
    unfinished = create(alice, room.pk, 10)["Location"].rsplit("/", 1)[-1]
    for bad in ([other["id"]], [unfinished], ["nope"], "x", [1]):
        refused = client_for(alice).post(f"/api/messages/{room.pk}", {"body": "x", "attachments": bad}, format="json")
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_attachments"


def test_unfinished_uploads_expire(room: Room, alice: User) -> None:
    upload = services.upload_create(user=alice, room_id=room.pk, length=10, name="late.bin")
    kept = services.upload_create(user=alice, room_id=room.pk, length=10, name="fresh.bin")
    Upload.objects.filter(pk=upload.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert partials.partial_path(upload).exists()
    assert jobs.expire_unfinished() == 1
    assert not partials.partial_path(upload).exists() and not Upload.objects.filter(pk=upload.pk).exists()
    assert Upload.objects.filter(pk=kept.pk).exists()
    # tus termination by the owner.
    response = client_for(alice).delete(f"/api/uploads/{kept.pk}", HTTP_TUS_RESUMABLE="1.0.0")
    assert response.status_code == 204 and not Upload.objects.filter(pk=kept.pk).exists()


def test_downloads_answer_byte_ranges(room: Room, alice: User, bob: User) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes, sniffed as application/octet-stream
    attachment = multipart(alice, room.pk, "blob.bin", data).json()
    client = client_for(bob)
    url = attachment["url"]

    whole = client.get(url)
    assert whole.status_code == 200 and content_of(whole) == data
    assert whole["Accept-Ranges"] == "bytes" and whole["Content-Length"] == "10240"
    etag = whole["ETag"]

    def ranged(value: str, **headers: str) -> Any:
        return client.get(url, headers={"Range": value, **headers})

    for asked, first, last in [
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-50", 10190, 10239),
        ("bytes=0-999999", 0, 10239),
        ("bytes=10239-10239", 10239, 10239),
    ]:
        response = ranged(asked)
        assert response.status_code == 206, asked
        assert response["Content-Range"] == f"bytes {first}-{last}/10240"
        assert response["Content-Length"] == str(last - first + 1)
        assert content_of(response) == data[first : last + 1], asked

    refused = ranged("bytes=10240-")
    assert refused.status_code == 416 and refused["Content-Range"] == "bytes */10240"
    assert refused.json()["code"] == "range_not_satisfiable"
    assert ranged("bytes=-0").status_code == 416
    # Several ranges, other units and nonsense: the whole file, as RFC 9110 allows.
    huge = "9" * 5000  # int() refuses strings this long: it was a 500
    for ignored in ("bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=-", "bytes=abc", f"bytes={huge}-", "bytes=²-"):
        response = ranged(ignored)
        assert response.status_code == 200 and content_of(response) == data, ignored
    # A resumed download names what it has: the same file gets the rest, another the whole.
    assert ranged("bytes=5000-", **{"If-Range": etag}).status_code == 206
    assert ranged("bytes=5000-", **{"If-Range": '"something-else"'}).status_code == 200
    # Ranges are for members only, like the file.
    assert client_for(alice).get(url, headers={"Range": "bytes=0-9"}).status_code == 206
