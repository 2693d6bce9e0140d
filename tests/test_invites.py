"""Invite links: who makes and revokes them, what a code shows and grants, and when it stops."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from rooms.models import Invite, Membership, Role, Room
from tests.conftest import client_for


def private_room(owner: User, *members: tuple[User, Role]) -> Room:
    room = Room.objects.create(name="secret plans", description="only by invitation", created_by=owner, is_private=True)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    for user, role in members:
        Membership.objects.create(room=room, user=user, role=role)
    return room


def make_invite(user: User, room: Room, **body: Any) -> Any:
    return client_for(user).post(f"/api/rooms/{room.pk}/invites", body, format="json")


@pytest.mark.django_db
def test_owners_and_admins_make_list_and_revoke_invites(alice: User, bob: User, carol: User, make_user: Any) -> None:
    dave = make_user("dave")
    room = private_room(alice, (bob, Role.ADMIN), (carol, Role.MEMBER))
    made = make_invite(alice, room, max_uses=2, expires_in=3600)
    assert made.status_code == 201, made.content
    invite = made.json()
    assert invite["url"].endswith(f"/invite/{invite['code']}/") and invite["url"].startswith("http")
    assert (invite["room_id"], invite["max_uses"], invite["uses"]) == (str(room.pk), 2, 0)
    assert invite["created_by"]["username"] == "alice" and invite["expires_at"] is not None
    assert len(invite["code"]) >= 20  # 128 random bits
    assert make_invite(bob, room).status_code == 201  # an admin may, without limits
    refused = make_invite(carol, room)
    assert refused.status_code == 403 and refused.json()["code"] == "not_a_manager"
    assert make_invite(dave, room).json()["code"] == "room_not_found"  # a private room stays unknown
    listed = client_for(bob).get(f"/api/rooms/{room.pk}/invites").json()["results"]
    assert {i["code"] for i in listed} >= {invite["code"]} and len(listed) == 2
    assert client_for(carol).get(f"/api/rooms/{room.pk}/invites").status_code == 403
    revoke = client_for(bob).delete(f"/api/rooms/{room.pk}/invites/{invite['code']}")
    assert revoke.status_code == 204
    assert client_for(bob).delete(f"/api/rooms/{room.pk}/invites/{invite['code']}").json()["code"] == "invite_not_found"
    assert invite["code"] not in {
        i["code"] for i in client_for(alice).get(f"/api/rooms/{room.pk}/invites").json()["results"]
    }
    assert client_for(dave).get(f"/api/invites/{invite['code']}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"max_uses": 0},
        {"max_uses": "3"},
        {"max_uses": True},
        {"expires_in": 10},
        {"expires_in": 10**9},
        {"max_uses": 2.5},
    ],
)
def test_bad_limits_are_400s_and_make_nothing(alice: User, body: dict[str, Any]) -> None:
    room = private_room(alice)
    answer = make_invite(alice, room, **body)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid", answer.content
    assert set(answer.json()["fields"]) <= {"max_uses", "expires_in"}
    assert not Invite.objects.filter(room=room).exists()


@pytest.mark.django_db
def test_a_code_shows_the_room_and_lets_its_holder_in_until_it_is_used_up(
    alice: User, bob: User, carol: User, make_user: Any
) -> None:
    dave = make_user("dave")
    room = private_room(alice)
    code = make_invite(alice, room, max_uses=2).json()["code"]
    preview = client_for(bob).get(f"/api/invites/{code}")
    assert preview.status_code == 200
    assert preview.json() == {
        "room": {"id": str(room.pk), "name": "secret plans", "description": "only by invitation", "member_count": 1}
    }
    joined = client_for(bob).post(f"/api/invites/{code}/accept")
    assert joined.status_code == 200 and joined.json()["id"] == str(room.pk) and joined.json()["role"] == "member"
    again = client_for(bob).post(f"/api/invites/{code}/accept")
    assert again.status_code == 200  # already in: harmless, and no use counted
    assert Invite.objects.get(code=code).uses == 1
    assert client_for(carol).post(f"/api/invites/{code}/accept").status_code == 200
    used_up = client_for(dave).post(f"/api/invites/{code}/accept")
    assert used_up.status_code == 404 and used_up.json()["code"] == "invite_not_found"
    assert not Membership.objects.filter(room=room, user=dave).exists()
    for bad in ("nope", "x" * 100):
        assert client_for(dave).get(f"/api/invites/{bad}").json()["code"] == "invite_not_found"
    assert client_for().get(f"/api/invites/{code}").status_code == 401


@pytest.mark.django_db
def test_an_expired_code_and_a_direct_room_let_no_one_in(alice: User, bob: User, carol: User) -> None:
    room = private_room(alice)
    code = make_invite(alice, room).json()["code"]
    Invite.objects.filter(code=code).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_for(bob).post(f"/api/invites/{code}/accept").status_code == 404
    assert client_for(bob).get(f"/api/invites/{code}").status_code == 404
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()["id"]
    refused = client_for(alice).post(f"/api/rooms/{direct}/invites", {}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "direct_room"


@pytest.mark.django_db(transaction=True)
def test_the_last_use_goes_to_one_of_two_people_accepting_at_once(alice: User, make_user: Any) -> None:
    room = private_room(alice)
    code = make_invite(alice, room, max_uses=1).json()["code"]
    people = [make_user(f"racer{i}") for i in range(6)]
    start = threading.Barrier(len(people))
    answers: list[int] = []

    def accept(user: User) -> None:
        start.wait()
        answers.append(client_for(user).post(f"/api/invites/{code}/accept").status_code)
        connection.close()

    threads = [threading.Thread(target=accept, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] + [404] * 5
    assert Membership.objects.filter(room=room, user__in=people).count() == 1
    assert Invite.objects.get(code=code).uses == 1


@pytest.mark.django_db
def test_the_invite_page_signs_in_first_then_joins(alice: User, bob: User) -> None:
    room = private_room(alice)
    code = make_invite(alice, room).json()["code"]
    browser = Client()
    first = browser.get(f"/invite/{code}/")
    assert first.status_code == 302 and first["Location"] == f"/login/?next=/invite/{code}/"
    browser.force_login(bob)
    shown = browser.get(f"/invite/{code}/")
    assert shown.status_code == 200 and b"secret plans" in shown.content and b"Join secret plans" in shown.content
    joined = browser.post(f"/invite/{code}/")
    assert joined.status_code == 302 and joined["Location"] == f"/chat/{room.pk}/"
    assert Membership.objects.filter(room=room, user=bob).exists()
    gone = browser.get("/invite/not-a-code/")
    assert gone.status_code == 404 and b"cannot be used" in gone.content
