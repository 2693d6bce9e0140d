"""Moderation as sockets see it, on two server processes: a ban cuts the member's room socket (on one
process) and their user stream (on the other) off within a second; a muted member's socket posts
get an `error` frame with code `muted`, and the socket stays."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from tests.live import ServerProcess, bearer, close_code, connect, ready, recv_until, running_server
from tests.test_user_stream import MESSAGE_KINDS, collect, stream_url, until_sync_done
from tests.test_websocket import make_room, token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def two_servers(mongo_url: str, transactional_db: Any, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two processes on one Redis; their revocation polls set to a minute, so a cut-off within a
    second can only come from the channel layer's signal crossing processes."""
    with (
        running_server(tmp_path, REVOCATION_POLL_SECONDS="60") as first,
        running_server(tmp_path, REVOCATION_POLL_SECONDS="60") as second,
    ):
        yield first, second


async def test_a_ban_cuts_both_sockets_on_both_processes_within_a_second(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    a, b = two_servers
    room = await sync_to_async(make_room)(alice, bob)
    other = await sync_to_async(make_room)(alice, bob)
    owner = httpx.AsyncClient(base_url=a.http, headers=bearer(await sync_to_async(token)(alice)), timeout=10)
    bob_token = await sync_to_async(token)(bob)
    async with connect(a.ws_url(room.pk), bob_token) as room_socket, connect(stream_url(b), bob_token) as stream:
        await ready(room_socket)
        await until_sync_done(stream)
        started = time.monotonic()
        banned = await owner.post(f"/api/rooms/{room.pk}/bans", json={"user_id": str(bob.pk), "reason": "flood"})
        assert banned.status_code == 201, banned.text
        assert await close_code(room_socket, timeout=5) == 4403
        removed = await recv_until(stream, "room.removed", timeout=2)
        elapsed = time.monotonic() - started
        assert (removed["room_id"], removed["reason"]) == (str(room.pk), "banned")
        assert elapsed < 1.0, f"cut off after {elapsed:.2f} s"
        # Nothing of the room reaches the stream any more; the other room still does.
        await owner.post(f"/api/messages/{room.pk}", json={"body": "after the ban"})
        await owner.post(f"/api/messages/{other.pk}", json={"body": "elsewhere"})
        frames = [f for f in await collect(stream, 1.5) if f["type"] in MESSAGE_KINDS]
        assert [f["message"]["body"] for f in frames] == ["elsewhere"]
    async with connect(a.ws_url(room.pk), bob_token) as again:
        assert await close_code(again) in (4403, 4404)  # not a member any more
    await owner.aclose()


async def test_a_muted_member_socket_gets_an_error_frame_and_stays(
    two_servers: tuple[ServerProcess, ServerProcess], alice: User, bob: User
) -> None:
    a, b = two_servers
    room = await sync_to_async(make_room)(alice, bob)
    owner = httpx.AsyncClient(base_url=b.http, headers=bearer(await sync_to_async(token)(alice)), timeout=10)
    async with connect(a.ws_url(room.pk), await sync_to_async(token)(bob)) as ws:
        await ready(ws)
        muted = await owner.post(f"/api/rooms/{room.pk}/mutes", json={"user_id": str(bob.pk)})
        assert muted.status_code == 201
        await ws.send(json.dumps({"type": "message.send", "body": "let me speak", "client_id": "m-1"}))
        error = await recv_until(ws, "error")
        assert error["code"] == "muted" and error.get("client_id") in ("m-1", None)
        await ready(ws)  # still open
        assert (await owner.delete(f"/api/rooms/{room.pk}/mutes/{bob.pk}")).status_code == 204
        await ws.send(json.dumps({"type": "message.send", "body": "thank you", "client_id": "m-2"}))
        assert (await recv_until(ws, "message.ack"))["client_id"] == "m-2"
    await owner.aclose()
