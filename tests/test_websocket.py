"""The WebSocket protocol of docs/websocket.md against a real server process over real TCP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets

from accounts.models import User
from accounts.services import access_token_for, tokens_for
from rooms.models import Membership, Role, Room
from tests.live import (
    ServerProcess,
    bearer,
    close_code,
    connect,
    message_frames,
    ready,
    recv_json,
    recv_until,
    running_server,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(
    django_db_setup: Any, django_db_blocker: Any, mongo_url: str, tmp_path_factory: Any
) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("ws")) as process:
        yield process


def token(user: User) -> str:
    return tokens_for(user).access


def make_room(owner: User, *members: User, private: bool = False) -> Room:
    room = Room.objects.create(name="ws-room", created_by=owner, is_private=private)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    for member in members:
        Membership.objects.create(room=room, user=member)
    return room


def rest(server: ServerProcess, user: User) -> httpx.Client:
    return httpx.Client(base_url=server.http, headers=bearer(token(user)), timeout=10)


async def test_send_acks_after_storing_then_every_member_gets_it(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(alice)) as a, connect(server.ws_url(room.pk), token(bob)) as b:
        await ready(a, b)
        await a.send(json.dumps({"type": "message.send", "body": "hello", "client_id": "c1"}))
        ack = await recv_until(a, "message.ack")
        assert ack["client_id"] == "c1"
        assert ack["message"]["body"] == "hello" and ack["message"]["seq"] == 1
        stored = rest(server, alice).get(f"/api/messages/{room.pk}").json()["results"]
        assert [m["id"] for m in stored] == [ack["message"]["id"]]
        for ws in (a, b):
            (frame,) = await message_frames(ws, 1)
            assert frame == {"type": "message.new", "message": ack["message"]}


async def test_rest_changes_reach_sockets_in_version_order(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(bob)) as b:
        api = rest(server, alice)
        posted = api.post(f"/api/messages/{room.pk}", json={"body": "one"}).json()
        api.put(f"/api/messages/{posted['id']}", json={"body": "one, edited"})
        api.post(f"/api/messages/{posted['id']}/react", json={"emoji": "👍"})
        reply = api.post(f"/api/messages/{room.pk}", json={"body": "re", "parent_id": posted["id"]}).json()
        api.delete(f"/api/messages/{reply['id']}")
        frames = await message_frames(b, 6)
    kinds = [(f["type"], f["message"]["version"]) for f in frames]
    assert kinds == [
        ("message.new", 1),
        ("message.updated", 2),
        ("message.updated", 3),
        ("message.new", 4),
        ("message.updated", 5),
        ("message.updated", 6),
    ]
    assert frames[1]["message"]["body"] == "one, edited"
    assert frames[2]["message"]["reactions"][0]["emoji"] == "👍"
    assert frames[4]["message"]["reply_count"] == 1
    assert frames[5]["message"]["deleted"] is True


async def test_rejections_close_with_application_codes(
    server: ServerProcess, alice: User, bob: User, carol: User
) -> None:
    public = make_room(alice)
    private = make_room(alice, private=True)
    cases = [
        (server.ws_url(public.pk), None, 4401),
        (server.ws_url(public.pk), "not-a-jwt", 4401),
        (server.ws_url(public.pk), token(carol), 4403),
        (server.ws_url(private.pk), token(carol), 4404),
        (server.ws_url(999_999), token(alice), 4404),
        (server.ws_url("abc"), token(alice), 4404),
        (server.ws_url(""), token(alice), 4404),
        (f"ws://127.0.0.1:{server.port}/api/elsewhere", token(alice), 4404),
        (server.ws_url(public.pk, "since=-4"), token(alice), 4400),
    ]
    for url, credential, expected in cases:
        async with connect(url, credential) as ws:
            assert await close_code(ws) == expected, url


async def test_ticket_is_single_use(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    issued = rest(server, alice).post("/api/auth/ws-ticket")
    assert issued.status_code == 201
    ticket = issued.json()["ticket"]
    assert issued.json()["expires_in"] == 60
    async with connect(server.ws_url(room.pk, f"ticket={ticket}")) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_until(ws, "pong"))["type"] == "pong"
    async with connect(server.ws_url(room.pk, f"ticket={ticket}")) as ws:
        assert await close_code(ws) == 4401
    assert httpx.post(f"{server.http}/api/auth/ws-ticket").status_code == 401


async def test_session_cookie_needs_an_allowed_origin(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    browser = httpx.Client(base_url=server.http)
    login_page = browser.get("/api-auth/login/")
    csrf = login_page.cookies["csrftoken"]
    browser.post(
        "/api-auth/login/",
        data={"username": "alice", "password": "correct horse battery staple", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{server.http}/api-auth/login/"},
    )
    cookie = f"sessionid={browser.cookies['sessionid']}"
    good = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{server.port}"}
    async with websockets.connect(server.ws_url(room.pk), additional_headers=good) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_until(ws, "pong"))["type"] == "pong"
    # Only the socket's own origin: the host alone is not enough (another port or scheme is another site).
    for origin in (
        {"Origin": "https://evil.example"},
        {},
        {"Origin": f"http://127.0.0.1:{server.port + 1}"},
        {"Origin": f"https://127.0.0.1:{server.port}"},
        {"Origin": "null"},
    ):
        async with websockets.connect(server.ws_url(room.pk), additional_headers={"Cookie": cookie, **origin}) as ws:
            assert await close_code(ws) == 4403


async def test_resume_since_replays_in_version_order_then_live(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    api = rest(server, alice)
    ids = [api.post(f"/api/messages/{room.pk}", json={"body": f"m{i}"}).json()["id"] for i in range(5)]
    api.put(f"/api/messages/{ids[0]}", json={"body": "m0 edited"})  # version 6, seq 1
    api.delete(f"/api/messages/{ids[3]}")  # version 7
    async with connect(server.ws_url(room.pk, "since=2"), token(alice)) as ws:
        replay = await message_frames(ws, 4)
        done = await recv_until(ws, "sync.done")
        api.post(f"/api/messages/{room.pk}", json={"body": "live"})
        (live,) = await message_frames(ws, 1)
    assert [(f["type"], f["message"]["version"], f["message"]["body"]) for f in replay] == [
        ("message.new", 3, "m2"),
        ("message.new", 5, "m4"),
        ("message.updated", 6, "m0 edited"),
        ("message.new", 7, ""),
    ]
    assert done == {"type": "sync.done", "version": 7}
    assert live["type"] == "message.new" and live["message"]["version"] == 8


async def test_resend_after_reconnect_returns_original(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    frame = json.dumps({"type": "message.send", "body": "only once", "client_id": "retry-1"})
    async with connect(server.ws_url(room.pk), token(alice)) as ws:
        await ws.send(frame)
        first = await recv_until(ws, "message.ack")
    async with connect(server.ws_url(room.pk), token(alice)) as ws:
        await ws.send(frame)
        second = await recv_until(ws, "message.ack")
    assert second["message"] == first["message"]
    assert len(rest(server, alice).get(f"/api/messages/{room.pk}").json()["results"]) == 1


async def test_removed_member_is_cut_off_within_a_second(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(bob)) as b:
        await ready(b)
        removed = rest(server, alice).delete(f"/api/rooms/{room.pk}/members/{bob.pk}")
        assert removed.status_code == 204
        started = asyncio.get_running_loop().time()
        assert await close_code(b, timeout=2) == 4403
        assert asyncio.get_running_loop().time() - started < 1.0
    async with connect(server.ws_url(room.pk), token(bob)) as b:
        assert await close_code(b) == 4403


async def test_expired_access_token_closes_socket(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    short = access_token_for(alice, lifetime=timedelta(seconds=2))
    async with connect(server.ws_url(room.pk), short) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        await recv_until(ws, "pong")
        expired = await recv_until(ws, "error", timeout=5)
        assert expired["code"] == "token_expired"
        assert await close_code(ws) == 4401


async def test_bad_frames_get_error_frames_and_socket_stays_open(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(alice)) as a, connect(server.ws_url(room.pk), token(bob)) as b:
        bad_frames: list[tuple[Any, str]] = [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            ('{"no": "type"}', "invalid_frame"),
            ('{"type": "teleport"}', "unknown_type"),
            ('{"type": "message.send", "body": "x"}', "invalid"),
            ('{"type": "message.send", "client_id": "k"}', "invalid"),
            ('{"type": "message.send", "client_id": null, "body": "x"}', "invalid"),  # a resend could not find it
            ('{"type": "message.send", "client_id": "k", "body": "   "}', "empty_body"),
            ('{"type": "message.send", "client_id": "k", "body": 5}', "invalid_body"),
            ('{"type": "message.send", "client_id": "k", "body": "x", "parent_id": "zz"}', "invalid_parent"),
            ('{"type": "typing", "state": "dancing"}', "invalid"),
            ("x" * 70_000, "frame_too_large"),
            (b"\x00\x01binary", "binary_not_supported"),
            # A lone surrogate no database can store, and nesting that overflows a recursive parser.
            ('{"type": "message.send", "client_id": "k", "body": "\\ud800"}', "invalid_json"),
            ("[" * 30_000, "invalid_json"),
        ]
        for payload, code in bad_frames:
            await a.send(payload)
            error = await recv_until(a, "error")
            assert error["code"] == code, payload
        await a.send(json.dumps({"type": "message.send", "client_id": "k2", "body": "still here"}))
        assert (await recv_until(a, "message.ack"))["message"]["body"] == "still here"
        (frame,) = await message_frames(b, 1)
        assert frame["message"]["body"] == "still here"


async def test_a_frame_far_past_the_limit_is_cut_by_the_server_itself(server: ServerProcess, alice: User) -> None:
    """Uvicorn's frame limit is twice WS_MAX_FRAME_BYTES (16 MiB by default): past it, 1009."""
    room = make_room(alice)
    async with connect(server.ws_url(room.pk), token(alice)) as ws:
        await ready(ws)
        await ws.send("x" * 200_000)
        assert await close_code(ws) == 1009


async def test_flood_closes_with_4429_and_spares_others(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(alice)) as a, connect(server.ws_url(room.pk), token(bob)) as b:
        for _ in range(300):
            try:
                await a.send('{"type": "ping"}')
            except websockets.ConnectionClosed:
                break
        assert await close_code(a) == 4429
        await b.send('{"type": "ping"}')
        assert (await recv_until(b, "pong"))["type"] == "pong"
    # Frames queued behind the close were dropped, not answered on a closed socket (a second close).
    assert "Unexpected ASGI message" not in server.log.read_text(errors="replace")


async def test_typing_reaches_others_not_sender(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(alice)) as a, connect(server.ws_url(room.pk), token(bob)) as b:
        await ready(a, b)
        await a.send(json.dumps({"type": "typing", "state": "start"}))
        typing = await recv_until(b, "typing")
        assert typing["user"]["username"] == "alice" and typing["state"] == "start"
        await a.send('{"type": "ping"}')
        frames = []
        while (frame := await recv_json(a))["type"] != "pong":
            frames.append(frame)
        assert all(f["type"] != "typing" for f in frames)


async def test_presence_counts_a_users_sockets(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(alice)) as a:
        # Alice's join finished (its presence snapshot sent) before Bob comes: else Bob's `online`
        # can reach her twice, in the snapshot and as the broadcast (docs/websocket.md).
        await a.send('{"type": "ping"}')
        await recv_until(a, "pong")
        first = await connect(server.ws_url(room.pk), token(bob))
        online = await recv_until(a, "presence")
        assert online["user"]["username"] == "bob" and online["status"] == "online"
        second = await connect(server.ws_url(room.pk), token(bob))
        await second.send('{"type": "ping"}')
        await recv_until(second, "pong")  # its connect handler (and presence join) has finished
        await first.close()
        await a.send('{"type": "ping"}')
        between = []
        while (frame := await recv_json(a))["type"] != "pong":
            between.append(frame)
        assert not [f for f in between if f["type"] == "presence"], "bob still has a socket open"
        await second.close()
        offline = await recv_until(a, "presence")
        assert offline["user"]["username"] == "bob" and offline["status"] == "offline"


async def test_ping_pong(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    async with connect(server.ws_url(room.pk), token(alice)) as ws:
        await ws.send('{"type": "ping"}')
        assert await recv_until(ws, "pong") == {"type": "pong"}


def test_ticket_endpoint_is_in_the_schema(server: ServerProcess) -> None:
    schema = httpx.get(f"{server.http}/api/schema/?format=json").json()
    assert "/api/auth/ws-ticket/" in schema["paths"]


async def test_big_rooms_poll_presence_instead_of_pushing(server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    extra = User.objects.bulk_create([User(username=f"crowd{i}", password="!") for i in range(200)])
    Membership.objects.bulk_create([Membership(room=room, user=u) for u in extra])  # 202 > WS_PRESENCE_PUSH_LIMIT
    async with connect(server.ws_url(room.pk), token(alice)) as a, connect(server.ws_url(room.pk), token(bob)) as b:
        await ready(b)  # bob's join is done: a pushed presence frame would already be on its way
        await a.send('{"type": "ping"}')
        frames = []
        while (frame := await recv_json(a))["type"] != "pong":
            frames.append(frame)
        assert not [f for f in frames if f["type"] == "presence"]
        online = rest(server, alice).get(f"/api/rooms/{room.pk}/presence").json()["results"]
        assert {u["username"] for u in online} == {"alice", "bob"}
    # Offline once the server has processed both closes (it may still be doing so right now).
    deadline = asyncio.get_running_loop().time() + 5
    while rest(server, extra[0]).get(f"/api/rooms/{room.pk}/presence").json()["results"]:
        assert asyncio.get_running_loop().time() < deadline, "still online after closing"
        await asyncio.sleep(0.1)


async def test_removed_member_cannot_act_even_if_the_signal_is_lost(
    server: ServerProcess, alice: User, bob: User
) -> None:
    room = make_room(alice, bob)
    async with connect(server.ws_url(room.pk), token(bob)) as b:
        await ready(b)
        # Removed in the database: the post re-checks membership, whatever the revocation does.
        Membership.objects.filter(room=room, user=bob).delete()
        await b.send(json.dumps({"type": "message.send", "body": "sneaky", "client_id": "s1"}))
        error = await recv_until(b, "error")
        assert error["code"] in ("not_a_member", "room_not_found") and error["client_id"] == "s1"
        assert await close_code(b) == 4403
    assert rest(server, alice).get(f"/api/messages/{room.pk}").json()["results"] == []


async def test_open_sockets_are_counted_in_metrics(server: ServerProcess, alice: User) -> None:
    room = make_room(alice)

    def open_sockets() -> float:
        text = httpx.get(f"{server.http}/metrics", timeout=5).text
        line = next(line for line in text.splitlines() if line.startswith("chat_websockets_open "))
        return float(line.split()[1])

    before = open_sockets()
    async with connect(server.ws_url(room.pk), token(alice)) as ws:
        await ready(ws)
        assert open_sockets() == before + 1
    deadline = asyncio.get_running_loop().time() + 5
    while open_sockets() != before:
        assert asyncio.get_running_loop().time() < deadline, "the gauge never came back down"
        await asyncio.sleep(0.1)
