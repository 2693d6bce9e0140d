"""The user stream at scale and across processes: a resume's cost does not grow with the rooms that
did not change; a cut while others post in five rooms from another process loses, doubles and
reorders nothing; losing access on one process stops delivery from the other within a second."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db.backends import utils as db_utils
from pymongo import monitoring

from accounts.authentication import forget_user
from accounts.models import User
from chatproject.asgi import application
from messaging import payloads as message_payloads_module
from messaging import services
from messaging.store import connection as store_connection
from rooms.models import Membership, Role, Room
from tests.live import ServerProcess, close_code, connect, recv_json, recv_until
from tests.test_user_stream import MESSAGE_KINDS, collect, stream_url, until_sync_done
from tests.test_websocket import make_room, rest, token

pytestmark = [pytest.mark.django_db(transaction=True)]


class CommandCounter(monitoring.CommandListener):
    """MongoDB commands sent while `active` (registered once: pymongo has no unregister)."""

    def __init__(self) -> None:
        self.active = False
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active:
            self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_mongo_commands = CommandCounter()
monitoring.register(_mongo_commands)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, mongo_url: str, settings: Any) -> Iterator[dict[str, list[str]]]:
    """Every SQL statement and MongoDB command this process sends, from any thread."""
    settings.WS_TICK_SECONDS = 600  # the hub's tick would add its own reads to the count
    settings.REVOCATION_POLL_SECONDS = 600
    store_connection.close()  # a new client, made after the listener was registered
    sql: list[str] = []
    real_execute = db_utils.CursorWrapper._execute

    def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sql.append(query)
        return real_execute(self, query, *args, **kwargs)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", execute)
    yield {"sql": sql, "mongo": _mongo_commands.commands}
    _mongo_commands.active = False


async def frames_until_sync_done(path: str, user: User) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Open a socket (the user stream or a room's) in this process, read up to `sync.done`, close:
    (the frames before it, the sync.done frame)."""
    headers = [(b"authorization", f"Bearer {await sync_to_async(token)(user)}".encode())]
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    frames = []
    while (frame := json.loads(await socket.receive_from(timeout=10)))["type"] != "sync.done":
        frames.append(frame)
    await socket.disconnect()
    return frames, frame


async def communicator_frames(path: str, user: User) -> tuple[list[dict[str, Any]], str]:
    """The user stream up to `sync.done`: (replayed frames, cursor)."""
    frames, done = await frames_until_sync_done(path, user)
    return frames, done["cursor"]


def rooms_of(owner: User, member: User, count: int) -> list[int]:
    rooms = Room.objects.bulk_create([Room(name=f"r{i}", created_by=owner) for i in range(count)])
    Membership.objects.bulk_create(
        [Membership(room=r, user=owner, role=Role.OWNER) for r in rooms]
        + [Membership(room=r, user=member) for r in rooms]
    )
    return [r.pk for r in rooms]


async def resume_cost(owner: User, member: User, room_ids: list[int], counted: dict[str, list[str]]) -> dict[str, int]:
    """Queries of a resume after two posts in each of three of `room_ids`."""
    _, cursor = await communicator_frames("/api/ws", member)
    for room_id in room_ids[:3]:
        for i in range(2):
            await sync_to_async(services.message_post)(user=owner, room_id=room_id, body=f"{room_id}-{i}")
    # The user rows a process keeps for USER_CACHE_SECONDS may or may not have expired by now: read
    # both afresh, so the count does not hang on how long the posts took.
    forget_user(member.pk)
    message_payloads_module._authors.pop(owner.pk)
    counted["sql"].clear()
    counted["mongo"].clear()
    _mongo_commands.active = True
    replayed, _ = await communicator_frames(f"/api/ws?cursor={cursor}", member)
    _mongo_commands.active = False
    bodies = [f["message"]["body"] for f in replayed if f["type"] in MESSAGE_KINDS]
    assert bodies == [f"{room_id}-{i}" for room_id in sorted(room_ids[:3]) for i in range(2)]
    return {"sql": len(counted["sql"]), "mongo": len(counted["mongo"])}


async def test_a_resume_in_2000_rooms_with_3_changed_costs_what_3_rooms_cost(
    counted: dict[str, list[str]], alice: User, bob: User, carol: User
) -> None:
    few = await sync_to_async(rooms_of)(alice, bob, 3)
    many = await sync_to_async(rooms_of)(alice, carol, 2000)
    small = await resume_cost(alice, bob, few, counted)
    large = await resume_cost(alice, carol, many, counted)
    assert large == small, f"3 rooms: {small}, 2,000 rooms: {large}"
    assert large["sql"] <= 12 and large["mongo"] <= 12, large


async def test_resume_after_cuts_while_another_process_posts_in_five_rooms(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User, carol: User
) -> None:
    server_a, server_b = two_servers
    rooms = [await sync_to_async(make_room)(alice, bob, carol) for _ in range(5)]
    per_room = 16

    async def poster(user: User, prefix: str) -> None:
        async with connect(stream_url(server_b), await sync_to_async(token)(user)) as ws:
            await until_sync_done(ws)
            for i in range(per_room // 2):
                for room in rooms:
                    client_id = f"{prefix}{room.pk}-{i}"
                    frame = {"type": "message.send", "room_id": str(room.pk), "body": client_id, "client_id": client_id}
                    await ws.send(json.dumps(frame))
                    while (ack := await recv_until(ws, "message.ack"))["client_id"] != client_id:
                        pass
                    assert ack["room_id"] == str(room.pk)

    # Carol's place before anything is posted: a stream opened without a cursor starts from "now",
    # which would race the first posts.
    async with connect(stream_url(server_a), await sync_to_async(token)(carol)) as ws:
        _, start = await until_sync_done(ws)
    cursor: str | None = start
    posting = asyncio.gather(poster(alice, "a"), poster(bob, "b"))
    received: list[dict[str, Any]] = []
    # Carol's stream is cut three times on one process; she resumes on the other at the end.
    for _ in range(3):
        async with connect(stream_url(server_a, cursor), await sync_to_async(token)(carol)) as ws:
            frames = await collect(ws, 0.5)
        received.extend(f for f in frames if f["type"] in MESSAGE_KINDS)
        cursor = next((f["cursor"] for f in reversed(frames) if "cursor" in f), cursor)
    await posting
    async with connect(stream_url(server_b, cursor), await sync_to_async(token)(carol)) as ws:
        replayed, _ = await until_sync_done(ws)
    received.extend(f for f in replayed if f["type"] in MESSAGE_KINDS)
    for room in rooms:
        mine = [f for f in received if f["room_id"] == str(room.pk)]
        assert [f["message"]["version"] for f in mine] == list(range(1, per_room + 1)), f"room {room.pk}"
        assert all(f["type"] == "message.new" for f in mine)


async def test_access_lost_on_one_process_stops_the_stream_on_the_other_within_a_second(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    server_a, server_b = two_servers
    room = await sync_to_async(make_room)(alice, bob)
    other = await sync_to_async(make_room)(alice, bob)
    api_b = await sync_to_async(rest)(server_b, alice)
    async with connect(stream_url(server_a), await sync_to_async(token)(bob)) as ws:
        await until_sync_done(ws)
        started = time.monotonic()
        assert (await sync_to_async(api_b.delete)(f"/api/rooms/{room.pk}/members/{bob.pk}")).status_code == 204
        removed = await recv_until(ws, "room.removed", timeout=1.5)
        assert removed["room_id"] == str(room.pk) and time.monotonic() - started < 1.0
        await sync_to_async(api_b.post)(f"/api/messages/{room.pk}", json={"body": "secret"})
        await sync_to_async(api_b.post)(f"/api/messages/{other.pk}", json={"body": "still here"})
        delivered = [f["message"]["body"] for f in await collect(ws, 1.0) if f["type"] in MESSAGE_KINDS]
        assert delivered == ["still here"]
        # Deactivated in the admin (this process, no signal to either server): the stream closes.
        bob.is_active = False
        started = time.monotonic()
        await sync_to_async(bob.save)()
        assert await close_code(ws, timeout=3) == 4401
        assert time.monotonic() - started < 1.0


async def test_frames_after_a_resume_keep_their_rooms_apart(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    server_a, server_b = two_servers
    first, second = await sync_to_async(make_room)(alice, bob), await sync_to_async(make_room)(alice, bob)
    api = await sync_to_async(rest)(server_b, alice)
    async with connect(stream_url(server_a), await sync_to_async(token)(bob)) as ws:
        _, cursor = await until_sync_done(ws)
    await sync_to_async(api.post)(f"/api/messages/{first.pk}", json={"body": "one"})
    await sync_to_async(api.post)(f"/api/messages/{second.pk}", json={"body": "two"})
    async with connect(stream_url(server_b, cursor), await sync_to_async(token)(bob)) as ws:
        replayed, cursor = await until_sync_done(ws)
        await sync_to_async(api.post)(f"/api/messages/{first.pk}", json={"body": "three"})
        live = await recv_json(ws)
        while live["type"] not in MESSAGE_KINDS:
            live = await recv_json(ws)
    pairs = [(f["room_id"], f["message"]["body"]) for f in replayed if f["type"] in MESSAGE_KINDS]
    assert sorted(pairs) == [(str(first.pk), "one"), (str(second.pk), "two")]
    assert (live["room_id"], live["message"]["body"], live["message"]["version"]) == (str(first.pk), "three", 2)
