"""Blocking: the blocked cannot open or post in a direct room with the blocker (403 `blocked`)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Block, User
from rooms.models import Membership, Role, Room
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def open_dm(user: User, *others: User) -> Any:
    return client_for(user).post("/api/dms", {"user_ids": [str(o.pk) for o in others]}, format="json")


def test_a_blocked_person_cannot_open_or_post_in_a_direct_room(alice: User, bob: User, carol: User) -> None:
    room = open_dm(bob, alice).json()["id"]
    assert client_for(bob).post(f"/api/messages/{room}", {"body": "hi"}, format="json").status_code == 201
    assert client_for(alice).post(f"/api/users/{bob.pk}/block").status_code == 204
    assert client_for(alice).post(f"/api/users/{bob.pk}/block").status_code == 204  # twice: one block
    assert Block.objects.filter(blocker=alice, blocked=bob).count() == 1
    refused = client_for(bob).post(f"/api/messages/{room}", {"body": "still there?"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "blocked"
    again = open_dm(bob, alice)
    assert again.status_code == 403 and again.json()["code"] == "blocked"
    group = open_dm(bob, alice, carol)  # a group with the blocker in it: refused too
    assert group.status_code == 403 and group.json()["code"] == "blocked"
    # The blocker still writes; others are not affected; a shared public room is not affected.
    assert client_for(alice).post(f"/api/messages/{room}", {"body": "no"}, format="json").status_code == 201
    assert open_dm(bob, carol).status_code == 201
    public = Room.objects.create(name="team", created_by=alice)
    Membership.objects.create(room=public, user=alice, role=Role.OWNER)
    Membership.objects.create(room=public, user=bob)
    assert (
        client_for(bob).post(f"/api/messages/{public.pk}", {"body": "in the team room"}, format="json").status_code
        == 201
    )
    listed = client_for(alice).get("/api/auth/blocks").json()
    assert [u["username"] for u in listed["results"]] == ["bob"] and "email" not in listed["results"][0]
    assert client_for(bob).get("/api/auth/blocks").json()["results"] == []
    assert client_for(alice).delete(f"/api/users/{bob.pk}/block").status_code == 204
    assert client_for(bob).post(f"/api/messages/{room}", {"body": "thanks"}, format="json").status_code == 201
    assert open_dm(bob, alice).status_code == 200


def test_what_blocking_refuses(alice: User) -> None:
    mine = client_for(alice).post(f"/api/users/{alice.pk}/block")
    assert mine.status_code == 400 and mine.json()["code"] == "invalid"
    for unknown in ("999999", "abc"):
        missing = client_for(alice).post(f"/api/users/{unknown}/block")
        assert missing.status_code == 404 and missing.json()["code"] == "user_not_found"
    assert client_for().post(f"/api/users/{alice.pk}/block").status_code == 401
    assert client_for().get("/api/auth/blocks").status_code == 401
