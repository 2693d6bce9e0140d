"""Two server processes sharing one Redis: one stream for everyone, and Redis outages lose nothing."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import httpx
import pytest

from accounts.models import User
from tests.cluster import PrivateRedis
from tests.live import ServerProcess, connect, message_frames, ready, recv_json, recv_until
from tests.test_websocket import make_room, rest, token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def versions(frames: list[dict[str, Any]]) -> list[int]:
    return [f["message"]["version"] for f in frames]


async def test_clients_on_two_processes_see_one_stream(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    server_a, server_b = two_servers
    room = make_room(alice, bob)
    async with connect(server_a.ws_url(room.pk), token(alice)) as a, connect(server_b.ws_url(room.pk), token(bob)) as b:
        await ready(a, b)
        for i in range(5):
            await a.send(json.dumps({"type": "message.send", "body": f"a{i}", "client_id": f"a{i}"}))
            await b.send(json.dumps({"type": "message.send", "body": f"b{i}", "client_id": f"b{i}"}))
        seen_a = await message_frames(a, 10)
        seen_b = await message_frames(b, 10)
    assert seen_a == seen_b
    assert versions(seen_a) == list(range(1, 11))
    expected = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
    assert sorted(f["message"]["body"] for f in seen_a) == sorted(expected)


async def test_resume_while_others_post_from_both_processes(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User, carol: User
) -> None:
    server_a, server_b = two_servers
    room = make_room(alice, bob, carol)
    total = 60

    async def poster(server: ServerProcess, user: User, prefix: str) -> None:
        async with connect(server.ws_url(room.pk), token(user)) as ws:
            for i in range(total // 2):
                await ws.send(json.dumps({"type": "message.send", "body": f"{prefix}{i}", "client_id": f"{prefix}{i}"}))
                await recv_until(ws, "message.ack")

    posters = asyncio.gather(poster(server_a, alice, "a"), poster(server_b, bob, "b"))
    received: list[dict[str, Any]] = []
    # Carol connects, drops, and resumes from the last version she saw, three times over.
    for _ in range(3):
        since = received[-1]["message"]["version"] if received else 0
        async with connect(server_a.ws_url(room.pk, f"since={since}"), token(carol)) as ws:
            deadline = asyncio.get_running_loop().time() + 0.4
            while asyncio.get_running_loop().time() < deadline:
                try:
                    frame = await recv_json(ws, 0.1)
                except TimeoutError:
                    continue
                if frame["type"] in ("message.new", "message.updated"):
                    received.append(frame)
    await posters
    since = received[-1]["message"]["version"] if received else 0
    async with connect(server_b.ws_url(room.pk, f"since={since}"), token(carol)) as ws:
        while (frame := await recv_json(ws))["type"] != "sync.done":
            if frame["type"] in ("message.new", "message.updated"):
                received.append(frame)
    assert versions(received) == list(range(1, total + 1)), "a change was skipped, repeated or reordered"
    assert all(f["type"] == "message.new" for f in received)


async def test_redis_outage_loses_no_acknowledged_message(
    two_servers: tuple[ServerProcess, ServerProcess], private_redis: PrivateRedis, alice: User, bob: User
) -> None:
    server_a, server_b = two_servers
    room = make_room(alice, bob)
    api_a = rest(server_a, alice)
    async with connect(server_b.ws_url(room.pk), token(bob)) as b:
        await ready(b)
        assert api_a.post(f"/api/messages/{room.pk}", json={"body": "before"}).status_code == 201
        (first,) = await message_frames(b, 1)
        private_redis.kill()
        during = [api_a.post(f"/api/messages/{room.pk}", json={"body": f"during {i}"}) for i in range(3)]
        assert [r.status_code for r in during] == [201, 201, 201]
        readiness = httpx.get(f"{server_a.http}/health/ready").json()
        assert readiness["checks"]["redis"]["status"] == "error"
        # Still connected: the process's poll of the store delivers without the channel layer.
        still_live = await message_frames(b, 3, timeout=5)
    private_redis.start()
    last_seen = still_live[-1]["message"]["version"]
    assert api_a.post(f"/api/messages/{room.pk}", json={"body": "after"}).status_code == 201
    async with connect(server_a.ws_url(room.pk, f"since={last_seen}"), token(bob)) as b:
        rest_frames = []
        while (frame := await recv_json(b))["type"] != "sync.done":
            if frame["type"] in ("message.new", "message.updated"):
                rest_frames.append(frame)
    bodies = [f["message"]["body"] for f in [first, *still_live, *rest_frames]]
    assert bodies == ["before", "during 0", "during 1", "during 2", "after"]


async def test_dead_process_presence_expires(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    server_a, server_b = two_servers
    room = make_room(alice, bob)
    async with connect(server_a.ws_url(room.pk), token(alice)) as a:
        await a.send('{"type": "ping"}')
        await recv_until(a, "pong")  # joined: Bob's online cannot reach her twice (docs/websocket.md)
        b = await connect(server_b.ws_url(room.pk), token(bob))
        online = await recv_until(a, "presence")
        assert (online["user"]["username"], online["status"]) == ("bob", "online")
        server_b.stop(signal.SIGKILL)
        offline = await recv_until(a, "presence", timeout=8)
        assert (offline["user"]["username"], offline["status"]) == ("bob", "offline")
        await b.close()


async def test_while_redis_is_away_sockets_open_and_tickets_say_503(
    two_servers: tuple[ServerProcess, ServerProcess], private_redis: PrivateRedis, alice: User, bob: User
) -> None:
    server_a, server_b = two_servers
    room = make_room(alice, bob)
    private_redis.kill()
    ticket = rest(server_a, alice).post("/api/auth/ws-ticket")
    assert ticket.status_code == 503 and ticket.json()["code"] == "service_unavailable"
    # The handshake needs a channel from the layer; without Redis it used to be an HTTP 500.
    async with connect(server_a.ws_url(room.pk), token(alice)) as a, connect(server_b.ws_url(room.pk), token(bob)) as b:
        await ready(a, b)
        await a.send(json.dumps({"type": "message.send", "body": "redis is away", "client_id": "away"}))
        assert (await recv_until(a, "message.ack"))["message"]["body"] == "redis is away"
        (during,) = await message_frames(b, 1, timeout=5)  # the other process's tick, from MongoDB
        assert during["message"]["body"] == "redis is away"
        private_redis.start()
        assert rest(server_a, alice).post("/api/auth/ws-ticket").status_code == 201
        await a.send(json.dumps({"type": "message.send", "body": "redis is back", "client_id": "back"}))
        (after,) = await message_frames(b, 1, timeout=5)
        assert after["message"]["body"] == "redis is back"
