"""Abuse limits on every repeatable write and costly read, per user, over REST and sockets alike."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for
from rooms.models import Membership, Role, Room
from tests.conftest import client_for
from tests.live import ServerProcess, close_code, connect, ready, recv_until, running_server
from tests.test_messages import create_room, post

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def room(alice: User, bob: User) -> dict[str, Any]:
    created = create_room(alice)
    client_for(bob).post(f"/api/rooms/{created['id']}/join")
    return created


def _message(alice: User, room: dict[str, Any]) -> str:
    return str(post(alice, room["id"], "limit me").json()["id"])


# Each maker gets alice, a room she owns that bob joined, and returns "do it once more".
def _create_room(alice: User, room: dict[str, Any]) -> Callable[[], Any]:
    return lambda: client_for(alice).post("/api/rooms/", {"name": "another"}, format="json")


def _edit(alice: User, room: dict[str, Any]) -> Callable[[], Any]:
    message, versions = _message(alice, room), iter(range(1000))
    return lambda: client_for(alice).put(f"/api/messages/{message}", {"body": f"v{next(versions)}"}, format="json")


def _delete(alice: User, room: dict[str, Any]) -> Callable[[], Any]:
    return lambda: client_for(alice).delete(f"/api/messages/{_message(alice, room)}")


def _react(alice: User, room: dict[str, Any]) -> Callable[[], Any]:
    message, turns = _message(alice, room), iter(range(1000))

    def react() -> Any:
        emoji = ["\U0001f44d", "\U0001f389", "\U0001f440", "\U0001f680"][next(turns) % 4]
        return client_for(alice).post(f"/api/messages/{message}/react", {"emoji": emoji}, format="json")

    return react


def _invite(alice: User, room: dict[str, Any]) -> Callable[[], Any]:
    invitees = iter(range(1000))

    def invite() -> Any:
        invitee = User.objects.create_user(f"invitee{next(invitees)}", password="invitee password 1")
        return client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": invitee.pk}, format="json")

    return invite


LIMITED: dict[str, tuple[str, Callable[[User, dict[str, Any]], Callable[[], Any]]]] = {
    "room creation": ("ROOM_CREATE_RATE_LIMIT", _create_room),
    "edits": ("EDIT_RATE_LIMIT", _edit),
    "deletions": ("EDIT_RATE_LIMIT", _delete),
    "reactions": ("REACTION_RATE_LIMIT", _react),
    "socket tickets": ("WS_TICKET_RATE_LIMIT", lambda a, r: lambda: client_for(a).post("/api/auth/ws-ticket")),
    "searches": ("SEARCH_RATE_LIMIT", lambda a, r: lambda: client_for(a).get("/api/search", {"q": "limit"})),
    "room listing": ("ROOM_LIST_RATE_LIMIT", lambda a, r: lambda: client_for(a).get("/api/rooms/")),
    "invitations": ("INVITE_RATE_LIMIT", _invite),
}


@pytest.mark.parametrize("what", sorted(LIMITED))
def test_each_repeatable_action_is_limited_per_user(
    what: str, settings: Any, alice: User, bob: User, room: dict[str, Any]
) -> None:
    setting, make = LIMITED[what]
    setattr(settings, setting, "3/h")
    act = make(alice, room)
    for _ in range(3):
        assert act().status_code < 400
    limited = act()
    assert limited.status_code == 429, limited.content
    assert limited.json()["code"] == "rate_limited" and int(limited["Retry-After"]) >= 1
    settings.RATELIMIT_ENABLE = False
    assert act().status_code < 400


def test_bobs_own_budget_is_untouched_by_alices(settings: Any, alice: User, bob: User) -> None:
    settings.ROOM_CREATE_RATE_LIMIT = "2/h"
    for _ in range(2):
        assert client_for(alice).post("/api/rooms/", {"name": "a"}, format="json").status_code == 201
    assert client_for(alice).post("/api/rooms/", {"name": "a"}, format="json").status_code == 429
    assert client_for(bob).post("/api/rooms/", {"name": "b"}, format="json").status_code == 201


def test_a_malformed_rate_setting_stops_the_server_from_starting() -> None:
    env = {**os.environ, "ROOM_CREATE_RATE_LIMIT": "lots", "DJANGO_SETTINGS_MODULE": "chatproject.settings"}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "ROOM_CREATE_RATE_LIMIT must look like 20/h" in started.stderr


def test_edit_history_comes_in_pages(alice: User, room: dict[str, Any]) -> None:
    message = _message(alice, room)
    for i in range(7):
        client_for(alice).put(f"/api/messages/{message}", {"body": f"version {i}"}, format="json")
    seen: list[str] = []
    url: str | None = f"/api/messages/{message}/history?limit=3"
    pages = 0
    while url is not None:
        page = client_for(alice).get(url).json()
        assert len(page["results"]) <= 3
        seen += [revision["body"] for revision in page["results"]]
        url = page["next"]
        pages += 1
    assert seen == ["limit me"] + [f"version {i}" for i in range(6)]
    assert pages == 3
    bad = client_for(alice).get(f"/api/messages/{message}/history", {"after": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    assert client_for(alice).get(f"/api/messages/{message}/history", {"limit": 201}).status_code == 400


def _room_of(owner: User, *members: User) -> Room:
    room = Room.objects.create(name="big", created_by=owner)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    for member in members:
        Membership.objects.create(room=room, user=member)
    return room


def test_room_mentions_in_big_rooms_are_for_moderators(
    settings: Any, alice: User, bob: User, carol: User, anon: APIClient
) -> None:
    settings.ROOM_MENTION_MAX_MEMBERS = 2
    big = _room_of(alice, bob, carol)
    refused = post(bob, str(big.pk), "@room lunch?")
    assert refused.status_code == 403 and refused.json()["code"] == "room_mention_not_allowed"
    assert post(bob, str(big.pk), "@everyone lunch?").status_code == 403
    assert post(alice, str(big.pk), "@room lunch!").status_code == 201  # the owner may
    plain = post(bob, str(big.pk), "lunch, @carol?").json()
    edited = client_for(bob).put(f"/api/messages/{plain['id']}", {"body": "@all lunch?"}, format="json")
    assert edited.status_code == 403 and edited.json()["code"] == "room_mention_not_allowed"
    small = _room_of(alice, bob)
    assert post(bob, str(small.pk), "@room lunch?").status_code == 201


async def _closed(ws: Any) -> int | None:
    """The close code, or None if the socket is still open after a few seconds."""
    try:
        return await close_code(ws, timeout=3)
    except TimeoutError:
        return None


@pytest.fixture
def two_limited_servers(
    mongo_url: str, transactional_db: Any, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    limits = {"WS_MAX_SOCKETS_PER_USER": "2", "WS_FLOOD_RATE": "1", "WS_FLOOD_BURST": "6"}
    with running_server(tmp_path, **limits) as first, running_server(tmp_path, **limits) as second:
        yield first, second


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
async def test_sockets_per_user_are_capped_over_every_process(
    two_limited_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    a, b = two_limited_servers
    room = _room_of(alice, bob)
    access = tokens_for(alice).access
    async with connect(a.ws_url(room.pk), access) as first, connect(b.ws_url(room.pk), access) as second:
        await ready(first, second)
        async with connect(a.ws_url(room.pk), access) as third:
            error = await recv_until(third, "error")
            assert error["code"] == "too_many_sockets"
            assert await close_code(third) == 4429
        async with connect(b.ws_url(room.pk), tokens_for(bob).access) as others:
            await ready(others)  # bob's own budget
    # Closed sockets give their places back.
    async with connect(a.ws_url(room.pk), access) as again, connect(b.ws_url(room.pk), access) as also:
        await ready(again, also)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
async def test_the_flood_gate_counts_per_user_over_every_process(
    two_limited_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    a, b = two_limited_servers
    room = _room_of(alice, bob)
    access = tokens_for(alice).access
    async with connect(a.ws_url(room.pk), access) as on_a, connect(b.ws_url(room.pk), access) as on_b:
        # A burst of 6 per user: 4 frames on each socket is within each socket's own bucket,
        # but 8 from one user is over. (Each `ready` is one ping frame.)
        for ws in (on_a, on_b):
            for _ in range(4):
                await ws.send(json.dumps({"type": "ping"}))
        codes = await asyncio.gather(_closed(on_a), _closed(on_b))
        assert 4429 in codes
    async with connect(a.ws_url(room.pk), tokens_for(bob).access) as bobs:
        await ready(bobs)  # another user's frames are not counted against alice's
