"""The typed shapes of frames and payloads: one definition each, held to what is really sent.

Every frame received in the socket tests is checked against realtime/frames.py by tests/live.py;
this file checks the checker, and that the REST serializers document the very TypedDicts the
payload builders return (the REST side and the socket share one Message shape).
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
from rest_framework import serializers

from accounts.models import User
from accounts.serializers import UserPayload, UserSerializer
from files.selectors import AttachmentPayload
from files.serializers import AttachmentSerializer
from messaging.payloads import MessagePayload
from messaging.serializers import MessageSerializer
from tests.conftest import client_for
from tests.frame_schemas import FrameMismatch, check, check_server_frame
from tests.test_rooms import create_room

USER = {"id": "1", "username": "alice", "display_name": "", "avatar_url": None}


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "pong", "extra": 1},  # an unknown key
        {"type": "sync.done"},  # a missing key
        {"type": "sync.done", "version": "3"},  # a string for an int
        {"type": "sync.done", "version": True},  # a bool is not an int
        {"type": "typing", "user": USER, "state": "paused"},  # not one of the states
        {"type": "presence", "user": {"id": "1"}, "status": "online"},  # a partial user
        {"type": "error", "code": "x", "detail": "y", "client_id": None},  # client_id is left out, never null
        {"type": "no.such.frame"},
        ["not", "an", "object"],
    ],
)
def test_the_frame_check_refuses_what_the_schemas_do_not_allow(frame: Any) -> None:
    with pytest.raises(FrameMismatch):
        check_server_frame(frame)


def test_the_frame_check_accepts_each_kind() -> None:
    for frame in (
        {"type": "pong"},
        {"type": "sync.done", "version": 0},
        {"type": "typing", "user": USER, "state": "start"},
        {"type": "presence", "user": USER, "status": "offline"},
        {"type": "error", "code": "invalid_json", "detail": "no", "client_id": "c1"},
    ):
        check_server_frame(frame)


def _documented(serializer: serializers.Serializer) -> tuple[set[str], set[str]]:
    fields = serializer.fields
    return set(fields), {name for name, field in fields.items() if field.required or field.read_only}


@pytest.mark.parametrize(
    ("serializer", "payload"),
    [
        (MessageSerializer(), MessagePayload),
        (UserSerializer(), UserPayload),
        (AttachmentSerializer(), AttachmentPayload),
    ],
)
def test_rest_serializers_document_the_payload_types(serializer: serializers.Serializer, payload: Any) -> None:
    names, required = _documented(serializer)
    assert names == set(typing.get_type_hints(payload))
    assert required == set(payload.__required_keys__)


@pytest.mark.django_db
def test_rest_answers_match_the_message_payload_type(alice: User) -> None:
    room = create_room(alice)
    client = client_for(alice)
    posted = client.post(f"/api/messages/{room['id']}", {"body": "**hi** @alice", "client_id": "x"}, format="json")
    reply = client.post(f"/api/messages/{room['id']}", {"body": "re", "parent_id": posted.json()["id"]}, format="json")
    reacted = client.post(f"/api/messages/{posted.json()['id']}/react", {"emoji": "👍"}, format="json")
    page = client.get(f"/api/messages/{room['id']}").json()
    found = client.get("/api/search?q=hi").json()
    for message in [posted.json(), reply.json(), reacted.json(), *page["results"], *found["results"]]:
        check(message, MessagePayload)
    with pytest.raises(FrameMismatch):
        check({**posted.json(), "seq": "1"}, MessagePayload)
