"""Direct rooms: one room per set of people, whoever asks and however many ask at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.models import User
from accounts.services import tokens_for
from rooms.models import Room, RoomKind
from tests.conftest import client_for
from tests.live import bearer, running_server


def open_dm(user: User, *others: User) -> Any:
    return client_for(user).post("/api/dms", {"user_ids": [str(o.pk) for o in others]}, format="json")


def test_one_set_of_people_one_room(make_user: Any, alice: User, bob: User, carol: User) -> None:
    bob.display_name = "Bob B."
    bob.save()
    made = open_dm(alice, bob)
    assert made.status_code == 201, made.content
    room = made.json()
    assert room["kind"] == "direct" and room["is_private"] is True
    assert room["name"] == "Bob B."  # the other members, as the caller sees them
    assert sorted(m["username"] for m in room["members"]) == ["alice", "bob"]
    again = open_dm(bob, alice)  # the other one asks: the same room
    assert again.status_code == 200 and again.json()["id"] == room["id"] and again.json()["name"] == "alice"
    with_self = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk), str(alice.pk)]}, format="json")
    assert with_self.status_code == 200 and with_self.json()["id"] == room["id"]  # oneself in the list is no one new
    group = open_dm(alice, bob, carol)
    assert group.status_code == 201 and group.json()["id"] != room["id"]
    assert group.json()["name"] in ("Bob B., carol", "carol, Bob B.")
    # Messages work in it, and it is in the room list.
    posted = client_for(bob).post(f"/api/messages/{room['id']}", {"body": "hi alice"}, format="json")
    assert posted.status_code == 201
    listed = {r["id"]: r for r in client_for(alice).get("/api/rooms/").json()["results"]}
    assert listed[room["id"]]["kind"] == "direct" and listed[room["id"]]["unread_count"] == 1


def test_what_a_direct_room_refuses(make_user: Any, alice: User, bob: User, carol: User) -> None:
    room = open_dm(alice, bob).json()["id"]
    assert client_for(carol).post(f"/api/rooms/{room}/join").status_code == 404  # private: unknown to others
    renamed = client_for(alice).patch(f"/api/rooms/{room}", {"name": "ours"}, format="json")
    assert renamed.status_code == 403 and renamed.json()["code"] == "direct_room"
    added = client_for(alice).post(f"/api/rooms/{room}/members", {"user_id": carol.pk}, format="json")
    assert added.status_code == 403 and added.json()["code"] == "direct_room"
    assert client_for(alice).get("/api/rooms/directory").json()["results"] == []
    gone = make_user("gone")
    gone.is_active = False
    gone.save()
    nine = [make_user(f"p{i}") for i in range(9)]
    for body, code in (
        ({"user_ids": []}, "invalid"),
        ({"user_ids": [str(alice.pk)]}, "invalid"),  # only oneself
        ({"user_ids": [str(u.pk) for u in nine]}, "invalid"),  # more than 8 others
        ({"user_ids": ["not-an-id"]}, "invalid"),
        ({"user_ids": str(bob.pk)}, "invalid"),
        ({}, "invalid"),
        ({"user_ids": [str(gone.pk)]}, "user_not_found"),
        ({"user_ids": ["999999999"]}, "user_not_found"),
    ):
        answer = client_for(alice).post("/api/dms", body, format="json")
        assert answer.status_code == 400 and answer.json()["code"] == code, (body, answer.content)
    assert Room.objects.filter(kind=RoomKind.DIRECT).count() == 1  # nothing half-made


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_many_asking_at_once_on_two_processes_get_one_room(
    mongo_url: str, transactional_db: Any, tmp_path: Path, alice: User, bob: User
) -> None:
    with running_server(tmp_path) as first, running_server(tmp_path) as second:
        askers = [(first, alice, bob), (second, bob, alice)] * 10

        async def ask_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=20) as http:
                return await asyncio.gather(
                    *(
                        http.post(
                            f"{server.http}/api/dms",
                            json={"user_ids": [str(other.pk)]},
                            headers=bearer(tokens_for(me).access),
                        )
                        for server, me, other in askers
                    )
                )

        answers = asyncio.run(ask_all())
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers if a.status_code >= 300]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.status_code == 201 for a in answers) == 1  # exactly one made it
    assert Room.objects.filter(kind=RoomKind.DIRECT).count() == 1
