"""FILE_STORAGE=s3: the same upload paths against an S3-compatible server (moto's, run as a process).

S3 itself cannot run here; moto's server speaks the S3 HTTP API that django-storages and boto3
use against AWS, MinIO or Ceph, so nothing in the application is replaced.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from accounts.models import User
from files import partials, services
from tests.conftest import client_for, free_port
from tests.test_uploads import content_of, png_bytes
from tests.test_websocket import make_room

pytestmark = pytest.mark.django_db

BUCKET = "chat-files"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(Bucket=BUCKET)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_storage(settings: Any, s3_endpoint: str, tmp_path: Path) -> Any:
    settings.UPLOAD_TEMP_DIR = str(tmp_path / "partial")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "region_name": CREDENTIALS["region_name"],
                "file_overwrite": False,
            },
        },
    }
    return boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)


def stored_keys(s3: Any) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_files_and_thumbnails_go_to_the_bucket(s3_storage: Any, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    from django.core.files.uploadedfile import SimpleUploadedFile

    image = png_bytes(640, 480)
    posted = client_for(alice).post(f"/api/rooms/{room.pk}/files", {"file": SimpleUploadedFile("p.png", image)})
    assert posted.status_code == 201, posted.content
    attachment = client_for(bob).get(f"/api/uploads/{posted.json()['id']}").json()
    keys = stored_keys(s3_storage)
    assert any(k.startswith(f"attachments/{room.pk}/") and k.endswith(".png") for k in keys)
    assert any(k.startswith(f"thumbnails/{room.pk}/") for k in keys)
    assert attachment["thumbnail_url"] is not None
    assert content_of(client_for(bob).get(attachment["url"])) == image
    tail = client_for(bob).get(attachment["url"], headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and content_of(tail) == image[-100:]


def test_tus_finish_streams_into_the_bucket(s3_storage: Any, alice: User) -> None:
    room = make_room(alice)
    data = bytes(range(256)) * 4096  # 1 MiB
    upload = services.upload_create(user=alice, room_id=room.pk, length=len(data), name="blob.bin")
    with partials.exclusive_partial(upload) as fh:
        fh.write(data)
        fh.flush()
        services.finalize(upload)
    assert not partials.partial_path(upload).exists()
    body = s3_storage.get_object(Bucket=BUCKET, Key=upload.storage_name)["Body"].read()
    assert body == data
