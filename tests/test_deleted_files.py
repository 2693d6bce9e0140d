"""Files of deleted messages: withdrawn with the message (404 to everyone, thumbnail too), their
bytes deleted by the periodic expiry task; files other messages still carry stay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from pymongo.errors import AutoReconnect

from accounts.models import User
from files import tasks
from files.models import MessageAttachment, Upload
from messaging import store
from rooms.models import Membership, Role, Room
from tests.conftest import client_for
from tests.test_uploads import content_of, multipart, png_bytes
from tests.test_websocket import make_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(settings: Any, tmp_path: Path, alice: User, bob: User) -> Room:
    settings.UPLOAD_TEMP_DIR, settings.MEDIA_ROOT = str(tmp_path / "partial"), str(tmp_path / "media")
    return make_room(alice, bob)  # alice owns it, bob is a member


def upload(user: User, room: Room, name: str, data: bytes) -> dict[str, Any]:
    response = multipart(user, room.pk, name, data)
    assert response.status_code == 201, response.content
    return dict(response.json())


def post(user: User, room: Room, *attachments: dict[str, Any], body: str = "see attached") -> dict[str, Any]:
    response = client_for(user).post(
        f"/api/messages/{room.pk}", {"body": body, "attachments": [a["id"] for a in attachments]}, format="json"
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def delete(user: User, message: dict[str, Any]) -> int:
    return int(client_for(user).delete(f"/api/messages/{message['id']}").status_code)


def assert_gone(user: User, url: str) -> None:
    response = client_for(user).get(url)
    assert response.status_code == 404, (url, response.status_code)
    assert response.json()["code"] == "file_not_found", response.json()


def assert_served(user: User, url: str, data: bytes | None = None) -> None:
    response = client_for(user).get(url)
    assert response.status_code == 200, (url, response.status_code)
    if data is not None:
        assert content_of(response) == data


def test_the_authors_deletion_withdraws_the_files_and_thumbnail(room: Room, alice: User, bob: User) -> None:
    image = upload(alice, room, "cat.png", png_bytes())
    notes = upload(alice, room, "notes.txt", b"hello file")
    kept = upload(alice, room, "kept.txt", b"another message's file")
    message = post(alice, room, image, notes)
    other = post(alice, room, kept, body="keep this one")
    image = client_for(bob).get(f"/api/uploads/{image['id']}").json()  # now with its thumbnail
    assert image["thumbnail_url"] is not None
    for url in (image["url"], image["thumbnail_url"], notes["url"]):
        assert_served(bob, url)
    assert MessageAttachment.objects.filter(message_id=message["id"]).count() == 2  # linked in PostgreSQL
    # An edit changes the body only: the files stay.
    edited = client_for(alice).put(f"/api/messages/{message['id']}", {"body": "edited"}, format="json")
    assert edited.status_code == 200 and [a["id"] for a in edited.json()["attachments"]] == [image["id"], notes["id"]]
    assert_served(bob, notes["url"], b"hello file")

    assert delete(alice, message) == 204
    for user in (alice, bob):  # the uploader too
        for url in (image["url"], image["thumbnail_url"], notes["url"], f"/api/uploads/{notes['id']}"):
            assert_gone(user, url)
        assert client_for(user).head(notes["url"]).status_code == 404
    # The other message and its file are untouched.
    assert_served(bob, kept["url"], b"another message's file")
    history = {m["id"]: m for m in client_for(bob).get(f"/api/messages/{room.pk}").json()["results"]}
    assert history[message["id"]]["deleted"] is True and history[message["id"]]["attachments"] == []
    assert [a["id"] for a in history[other["id"]]["attachments"]] == [kept["id"]]
    assert delete(alice, message) == 204  # deleting twice is still harmless


def test_a_moderators_deletion_of_someone_elses_message_withdraws_its_files(
    room: Room, alice: User, bob: User, carol: User, make_user: Any
) -> None:
    Membership.objects.create(room=room, user=carol, role=Role.ADMIN)
    first = upload(bob, room, "bob.txt", b"bob's file")
    second = upload(bob, room, "bob2.txt", b"bob's other file")
    third = upload(bob, room, "bob3.txt", b"bob's third file")
    by_owner, by_admin, by_staff = post(bob, room, first), post(bob, room, second), post(bob, room, third)
    assert delete(alice, by_owner) == 204  # the room's owner
    assert_gone(bob, first["url"])
    assert_gone(alice, first["url"])
    assert_served(bob, second["url"], b"bob's other file")
    assert delete(carol, by_admin) == 204  # an admin of the room
    assert_gone(bob, second["url"])
    staff = make_user(is_staff=True)  # staff, not even a member
    assert delete(staff, by_staff) == 204
    assert_gone(bob, third["url"])


def test_a_file_two_messages_carry_goes_with_the_last_of_them(room: Room, alice: User, bob: User) -> None:
    shared = upload(alice, room, "shared.txt", b"shared")
    first, second = post(alice, room, shared), post(alice, room, shared, body="again")
    assert delete(alice, first) == 204
    assert_served(bob, shared["url"], b"shared")
    history = {m["id"]: m for m in client_for(bob).get(f"/api/messages/{room.pk}").json()["results"]}
    assert [a["id"] for a in history[second["id"]]["attachments"]] == [shared["id"]]
    assert delete(alice, second) == 204
    assert_gone(bob, shared["url"])


def test_a_withdrawn_file_cannot_be_attached_again(room: Room, alice: User) -> None:
    notes = upload(alice, room, "notes.txt", b"hello file")
    assert delete(alice, post(alice, room, notes)) == 204
    again = client_for(alice).post(
        f"/api/messages/{room.pk}", {"body": "once more", "attachments": [notes["id"]]}, format="json"
    )
    assert again.status_code == 400 and again.json()["code"] == "invalid_attachments"


def test_the_expiry_task_deletes_the_bytes_of_withdrawn_files(room: Room, alice: User, bob: User) -> None:
    image = upload(alice, room, "cat.png", png_bytes())
    kept = upload(alice, room, "kept.txt", b"kept")
    message = post(alice, room, image)
    post(alice, room, kept)
    withdrawn = Upload.objects.get(pk=image["id"])
    names = [withdrawn.storage_name, withdrawn.thumbnail_name]
    assert all(names) and all(default_storage.exists(n) for n in names)
    assert delete(alice, message) == 204
    assert all(default_storage.exists(n) for n in names)  # unreachable already, bytes not yet deleted
    assert tasks.expire_uploads() == 1  # the periodic task (Celery beat, every 15 minutes)
    assert not any(default_storage.exists(n) for n in names)
    assert not Upload.objects.filter(pk=image["id"]).exists()
    assert_gone(bob, image["url"])
    kept_row = Upload.objects.get(pk=kept["id"])
    assert default_storage.exists(kept_row.storage_name)
    assert_served(bob, kept["url"], b"kept")
    assert tasks.expire_uploads() == 0


def test_files_are_withdrawn_before_the_tombstone(
    room: Room, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MongoDB failing the tombstone: the delete answers 503 and the message stays, its files already
    withdrawn (the caller asked for them to go); deleting again completes it."""
    notes = upload(alice, room, "notes.txt", b"hello file")
    message = post(alice, room, notes)
    tombstone = store.delete_message

    def unavailable(**kwargs: Any) -> Any:
        raise AutoReconnect("primary went away")

    monkeypatch.setattr(store, "delete_message", unavailable)
    failed = client_for(alice).delete(f"/api/messages/{message['id']}")
    assert failed.status_code == 503 and failed.json()["code"] == "service_unavailable"
    assert_gone(bob, notes["url"])
    still = client_for(bob).get(f"/api/messages/{room.pk}").json()["results"][-1]
    assert still["id"] == message["id"] and still["deleted"] is False and still["attachments"] == []
    monkeypatch.setattr(store, "delete_message", tombstone)
    assert delete(alice, message) == 204
    assert client_for(bob).get(f"/api/messages/{room.pk}").json()["results"][-1]["deleted"] is True
