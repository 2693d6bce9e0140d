"""The API against its own OpenAPI schema: schemathesis generates requests from /api/schema/ and
every answer must be documented (status code, content type, body shape) and never a 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import User
from tests.live import running_server
from tests.push_endpoint import vapid_key_pair
from tests.test_websocket import make_room, rest, token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_every_answer_is_what_the_schema_documents(tmp_path: Path, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    make_room(bob, private=True)
    # Push is on (a VAPID key): without one its routes answer 503, which schemathesis counts as a failure.
    with running_server(tmp_path, RATELIMIT_ENABLE="false", VAPID_PRIVATE_KEY=vapid_key_pair()[0]) as server:
        api = rest(server, alice)
        message = api.post(f"/api/messages/{room.pk}", json={"body": "hello @bob", "client_id": "c1"}).json()
        api.post(f"/api/messages/{room.pk}", json={"body": "a reply", "parent_id": message["id"]})
        upload = api.post(f"/api/rooms/{room.pk}/files", files={"file": ("a.txt", b"some text")}).json()
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            f"""
[generation]
max-examples = 12
allow-x00 = false

[parameters]
room_id = "{room.pk}"
message_id = "{message["id"]}"
upload_id = "{upload["id"]}"
"""
        )
        result = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"),
                f"{server.http}/api/schema/",
                *("--checks", CHECKS),
                *("--header", f"Authorization: Bearer {token(alice)}"),
                # The tus PATCH body (application/offset+octet-stream) is tested by tests/test_uploads.py.
                *("--exclude-operation-id", "uploads_append"),
                "--seed=1",
                "--workers=1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # its example cache stays out of the checkout
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
