"""`WS /api/ws`, the user stream, over real sockets and real server processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms.models import Membership, Role
from tests.live import ServerProcess, close_code, connect, ready, recv_json, recv_until, running_server
from tests.test_websocket import make_room, rest, token

pytestmark = [pytest.mark.django_db(transaction=True)]

MESSAGE_KINDS = ("message.new", "message.updated")


@pytest.fixture
def stream_server(mongo_url: str, transactional_db: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as process:
        yield process


def stream_url(server: ServerProcess, cursor: str | None = None) -> str:
    return f"ws://127.0.0.1:{server.port}/api/ws" + (f"?cursor={cursor}" if cursor else "")


async def until_sync_done(ws: Any, timeout: float = 10.0) -> tuple[list[dict[str, Any]], str]:
    """The replayed frames before `sync.done`, and its cursor."""
    replayed = []
    while (frame := await recv_json(ws, timeout))["type"] != "sync.done":
        replayed.append(frame)
    return replayed, frame["cursor"]


async def collect(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """Every frame that arrives within `seconds`."""
    frames: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            frames.append(await recv_json(ws, remaining))
        except TimeoutError:
            break
    return frames


def last_cursor(frames: list[dict[str, Any]], default: str) -> str:
    with_cursor = [f["cursor"] for f in frames if "cursor" in f]
    return with_cursor[-1] if with_cursor else default


async def test_one_socket_gets_every_room_and_sends_into_any(
    stream_server: ServerProcess, alice: User, bob: User
) -> None:
    first, second = await sync_to_async(make_room)(alice, bob), await sync_to_async(make_room)(alice, bob)
    async with connect(stream_url(stream_server), token(bob)) as b:
        replayed, cursor = await until_sync_done(b)
        assert replayed == [] and cursor
        api = await sync_to_async(rest)(stream_server, alice)
        await sync_to_async(api.post)(f"/api/messages/{first.pk}", json={"body": "in the first"})
        await sync_to_async(api.post)(f"/api/messages/{second.pk}", json={"body": "in the second"})
        got = [await recv_until(b, "message.new"), await recv_until(b, "message.new")]
        assert {(f["room_id"], f["message"]["body"]) for f in got} == {
            (str(first.pk), "in the first"),
            (str(second.pk), "in the second"),
        }
        assert all(f["cursor"] for f in got)
        await b.send(json.dumps({"type": "message.send", "room_id": str(second.pk), "body": "hi", "client_id": "c1"}))
        ack = await recv_until(b, "message.ack")
        assert ack["room_id"] == str(second.pk) and ack["message"]["body"] == "hi"
        own = await recv_until(b, "message.new")
        assert own["message"]["id"] == ack["message"]["id"]


async def test_rooms_reads_and_notifications_arrive_live(stream_server: ServerProcess, alice: User, bob: User) -> None:
    room = await sync_to_async(make_room)(alice)
    api = await sync_to_async(rest)(stream_server, alice)
    async with connect(stream_url(stream_server), token(bob)) as b:
        await until_sync_done(b)
        added = await sync_to_async(api.post)(f"/api/rooms/{room.pk}/members", json={"user_id": bob.pk})
        assert added.status_code == 201, added.text
        frame = await recv_until(b, "room.added")
        assert frame["room"]["id"] == str(room.pk)
        notice = await recv_until(b, "notification")
        assert notice["notification"]["type"] == "invite"
        await sync_to_async(api.post)(f"/api/messages/{room.pk}", json={"body": "one"})
        await sync_to_async(api.post)(f"/api/messages/{room.pk}", json={"body": "two"})
        assert (await recv_until(b, "message.new"))["message"]["body"] == "one"
        await recv_until(b, "message.new")
        await b.send(json.dumps({"type": "read", "room_id": str(room.pk), "seq": 1}))
        read = await recv_until(b, "read")
        assert (read["room_id"], read["seq"], read["unread_count"]) == (str(room.pk), 1, 1)
        renamed = await sync_to_async(api.patch)(f"/api/rooms/{room.pk}", json={"name": "renamed"})
        assert renamed.status_code == 200, renamed.text
        assert (await recv_until(b, "room.updated"))["room"]["name"] == "renamed"
        await sync_to_async(api.delete)(f"/api/rooms/{room.pk}/members/{bob.pk}")
        removed = await recv_until(b, "room.removed")
        assert (removed["room_id"], removed["reason"]) == (str(room.pk), "removed")
        await sync_to_async(api.post)(f"/api/messages/{room.pk}", json={"body": "after"})
        assert not [f for f in await collect(b, 1.0) if f["type"] in MESSAGE_KINDS]


async def test_bad_frames_get_errors_and_the_socket_stays(stream_server: ServerProcess, alice: User, bob: User) -> None:
    room = await sync_to_async(make_room)(alice)  # bob is not in it
    async with connect(stream_url(stream_server), token(bob)) as b:
        await until_sync_done(b)
        for frame, code in [
            ({"type": "message.send", "room_id": str(room.pk), "body": "x", "client_id": "1"}, "not_a_member"),
            ({"type": "message.send", "room_id": "nope", "body": "x", "client_id": "1"}, "invalid"),
            ({"type": "message.send", "room_id": str(room.pk), "body": "x"}, "invalid"),
            ({"type": "typing", "room_id": str(room.pk), "state": "start"}, "not_a_member"),
            ({"type": "read", "room_id": str(room.pk), "seq": -1}, "invalid"),
            ({"type": "read", "room_id": str(room.pk), "seq": 3}, "not_a_member"),
        ]:
            await b.send(json.dumps(frame))
            error = await recv_until(b, "error")
            assert error["code"] in (code, "room_not_found"), (frame, error)
        await ready(b)
    for bad in ("garbage", "MS4xLjIuMzo", "x" * 8000):
        async with connect(stream_url(stream_server, bad), token(bob)) as b:
            assert (await recv_until(b, "error"))["code"] == "invalid_cursor"
            assert await close_code(b) == 4400
    async with connect(stream_url(stream_server)) as anonymous:
        assert await close_code(anonymous) == 4401


async def test_resume_replays_rooms_lost_and_gained_while_away(
    stream_server: ServerProcess, alice: User, bob: User
) -> None:
    kept, lost = await sync_to_async(make_room)(alice, bob), await sync_to_async(make_room)(alice, bob)
    gained = await sync_to_async(make_room)(alice)
    api = await sync_to_async(rest)(stream_server, alice)
    async with connect(stream_url(stream_server), token(bob)) as b:
        _, cursor = await until_sync_done(b)
        await sync_to_async(api.post)(f"/api/messages/{kept.pk}", json={"body": "seen"})
        cursor = (await recv_until(b, "message.new"))["cursor"]
    # Away: a message in a kept room, removed from one, added to another that then gets a message.
    await sync_to_async(api.post)(f"/api/messages/{kept.pk}", json={"body": "missed"})
    await sync_to_async(api.post)(f"/api/messages/{lost.pk}", json={"body": "not for bob"})
    await sync_to_async(api.delete)(f"/api/rooms/{lost.pk}/members/{bob.pk}")
    await sync_to_async(api.post)(f"/api/rooms/{gained.pk}/members", json={"user_id": bob.pk})
    await sync_to_async(api.post)(f"/api/messages/{gained.pk}", json={"body": "welcome"})
    async with connect(stream_url(stream_server, cursor), token(bob)) as b:
        replayed, _ = await until_sync_done(b)
    kinds = [(f["type"], f.get("room_id") or f.get("room", {}).get("id")) for f in replayed]
    assert ("room.removed", str(lost.pk)) in kinds
    assert ("room.added", str(gained.pk)) in kinds
    bodies = [(f["room_id"], f["message"]["body"]) for f in replayed if f["type"] in MESSAGE_KINDS]
    assert bodies == [(str(kept.pk), "missed"), (str(gained.pk), "welcome")] or sorted(bodies) == sorted(
        [(str(kept.pk), "missed"), (str(gained.pk), "welcome")]
    )
    assert kinds.index(("room.added", str(gained.pk))) < kinds.index(("message.new", str(gained.pk)))
    assert not [b for b in bodies if b[1] in ("seen", "not for bob")]


async def test_removed_member_stops_receiving_the_room_within_a_second(
    stream_server: ServerProcess, alice: User, bob: User
) -> None:
    room = await sync_to_async(make_room)(alice, bob)
    other = await sync_to_async(make_room)(alice, bob)
    api = await sync_to_async(rest)(stream_server, alice)
    async with connect(stream_url(stream_server), token(bob)) as b:
        await until_sync_done(b)
        await sync_to_async(Membership.objects.filter(room=room, user=bob).delete)()  # as the admin would
        await recv_until(b, "room.removed", timeout=1.5)
        await sync_to_async(api.post)(f"/api/messages/{room.pk}", json={"body": "secret"})
        await sync_to_async(api.post)(f"/api/messages/{other.pk}", json={"body": "still here"})
        frames = [f for f in await collect(b, 1.0) if f["type"] in MESSAGE_KINDS]
        assert [f["message"]["body"] for f in frames] == ["still here"]
        assert await sync_to_async(Membership.objects.filter(room=other, user=bob, role=Role.MEMBER).exists)()


async def test_a_room_socket_outlives_news_for_the_user_stream(
    stream_server: ServerProcess, alice: User, bob: User
) -> None:
    room = await sync_to_async(make_room)(alice, bob)
    other = await sync_to_async(make_room)(alice)
    async with connect(stream_server.ws_url(room.pk), token(bob)) as b:
        await ready(b)
        # Entries in bob's log reach his user group, which his room socket also listens on.
        await sync_to_async(rest(stream_server, alice).post)(f"/api/rooms/{other.pk}/members", json={"user_id": bob.pk})
        await sync_to_async(rest(stream_server, alice).post)(f"/api/messages/{room.pk}", json={"body": "still open"})
        assert (await recv_until(b, "message.new"))["message"]["body"] == "still open"
        await ready(b)


async def test_presence_of_people_who_share_a_room_once_per_change(
    stream_server: ServerProcess, alice: User, bob: User, carol: User
) -> None:
    # Two rooms shared with bob: his presence arrives once per change, not once per room.
    shared = await sync_to_async(make_room)(alice, bob)
    await sync_to_async(make_room)(bob, alice)
    await sync_to_async(make_room)(carol)  # carol shares nothing with alice

    def presence_of(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(f["user"]["username"], f["status"]) for f in frames if f["type"] == "presence"]

    async with connect(stream_url(stream_server), token(alice)) as a:
        await until_sync_done(a)
        async with connect(stream_url(stream_server), token(bob)) as b:
            await until_sync_done(b)
            assert presence_of([await recv_until(b, "presence")]) == [("alice", "online")]  # who was there
            async with connect(stream_url(stream_server), token(carol)) as c:
                await until_sync_done(c)
            assert presence_of(await collect(a, 1.0)) == [("bob", "online")]
            polled = await sync_to_async(rest(stream_server, alice).get)(f"/api/rooms/{shared.pk}/presence")
            assert sorted(u["username"] for u in polled.json()["results"]) == ["alice", "bob"]  # streams count
            # His room socket as well as his stream: still one person, online once.
            async with connect(stream_server.ws_url(shared.pk), token(bob)) as room_socket:
                await ready(room_socket)
            assert presence_of(await collect(a, 0.5)) == []
        assert presence_of(await collect(a, 2.0)) == [("bob", "offline")]


async def test_every_room_is_live_not_only_the_first_subscribed(
    mongo_url: str, transactional_db: Any, tmp_path: Path, alice: User, bob: User
) -> None:
    # A tick of a minute: what arrives comes by the channel layer. The stream's five rooms were
    # subscribed concurrently on a fresh process, which once gave each its own channel, so all but
    # one room waited for the tick.
    with running_server(tmp_path, WS_TICK_SECONDS="60") as server:
        rooms = [await sync_to_async(make_room)(alice, bob) for _ in range(5)]
        api = await sync_to_async(rest)(server, alice)
        async with connect(stream_url(server), token(bob)) as b:
            await until_sync_done(b)
            for room in rooms:
                await sync_to_async(api.post)(f"/api/messages/{room.pk}", json={"body": f"to {room.pk}"})
            got = [await recv_until(b, "message.new", timeout=2) for _ in rooms]
    assert sorted(f["room_id"] for f in got) == sorted(str(r.pk) for r in rooms)
