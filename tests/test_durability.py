"""An acknowledged message is durable: the database killed right after the acks loses none of them,
and no `seq` is handed out twice once it is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from django.conf import settings

from accounts.models import User
from messaging import store
from messaging.store import connection
from tests.conftest import client_for, free_port, start_secantus
from tests.live import close_code, connect, running_server
from tests.test_websocket import make_room, rest, token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

POSTS = 300


def test_every_write_asks_for_majority_and_the_journal() -> None:
    concern = connection.db().client.write_concern.document
    assert concern == {"w": settings.MONGODB_WRITE_CONCERN, "j": True}
    assert settings.MONGODB_WRITE_CONCERN == "majority"


def post_until_accepted(client: httpx.Client, room_id: int, body: str, deadline_s: float) -> httpx.Response:
    """The server's client reconnects by itself; until it has, posts are refused with a 503."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = client.post(f"/api/messages/{room_id}", json={"body": body, "client_id": body})
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_acknowledged_posts_survive_the_database_being_killed(tmp_path: Path, alice: User) -> None:
    data, port = str(tmp_path / "mongo-data"), free_port()
    mongo, url = start_secantus(tmp_path, storage=data, port=port, sync_on_commit=True)
    room = make_room(alice)
    try:
        with running_server(tmp_path, MONGODB_URL=url, MONGODB_NAME="durable", RATELIMIT_ENABLE="false") as server:
            client = rest(server, alice)
            acked: dict[str, int] = {}
            for i in range(POSTS):
                response = client.post(f"/api/messages/{room.pk}", json={"body": f"m{i}", "client_id": f"c{i}"})
                assert response.status_code == 201, response.text
                acked[response.json()["id"]] = response.json()["seq"]
            mongo.kill()  # SIGKILL, right after the last ack
            mongo.wait()
            mongo, _ = start_secantus(tmp_path, storage=data, port=port, sync_on_commit=True)

            stored = {
                str(doc["_id"]): doc["seq"]
                for doc in pymongo.MongoClient(url).durable.messages.find({"room_id": room.pk}, {"seq": 1})
            }
            assert {mid: stored.get(mid) for mid in acked} == acked, "an acknowledged message was lost"
            assert sorted(acked.values()) == list(range(1, POSTS + 1))

            after = post_until_accepted(client, room.pk, "after the restart", deadline_s=30)
            assert after.status_code == 201, after.text
            assert after.json()["seq"] == POSTS + 1, "a seq was handed out again"
            page = client.get(f"/api/messages/{room.pk}", params={"limit": 200}).json()["results"]
            assert [m["seq"] for m in page] == list(range(POSTS + 1 - 199, POSTS + 2))
    finally:
        mongo.kill()
        mongo.wait()


@pytest.fixture
def private_mongo(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A SecantusDB of this test's own on a data folder: (url, kill, start again on the same data)."""
    data, port = str(tmp_path / "mongo-data"), free_port()
    procs = [start_secantus(tmp_path, storage=data, port=port, sync_on_commit=True)[0]]

    def kill() -> None:
        procs[-1].kill()
        procs[-1].wait()

    def restart() -> None:
        procs.append(start_secantus(tmp_path, storage=data, port=port, sync_on_commit=True)[0])

    yield f"mongodb://127.0.0.1:{port}", kill, restart
    kill()


def test_a_post_while_the_database_is_down_is_a_fast_503_and_then_works_again(
    settings: Any, private_mongo: tuple[str, Callable[[], None], Callable[[], None]], alice: User
) -> None:
    url, kill, restart = private_mongo
    settings.MONGODB_URL, settings.MONGODB_NAME, settings.MONGODB_TIMEOUT_MS = url, "outage", 500
    store.close()
    room = make_room(alice)
    client = client_for(alice)
    try:
        assert client.post(f"/api/messages/{room.pk}", {"body": "before"}, format="json").status_code == 201
        kill()
        started = time.monotonic()
        down = client.post(f"/api/messages/{room.pk}", {"body": "while down"}, format="json")
        waited = time.monotonic() - started
        assert down.status_code == 503 and down.json()["code"] == "service_unavailable"
        # One server-selection timeout, not the transaction's whole retry deadline (10 s).
        assert waited < 3, waited
        restart()
        again = client.post(f"/api/messages/{room.pk}", {"body": "after"}, format="json")
        assert again.status_code == 201 and again.json()["seq"] == 2
    finally:
        store.close()


async def test_a_socket_opening_while_the_database_is_down_is_closed_4503(
    tmp_path: Path, private_mongo: tuple[str, Callable[[], None], Callable[[], None]], alice: User
) -> None:
    url, kill, _ = private_mongo
    room = make_room(alice)
    with running_server(tmp_path, MONGODB_URL=url, MONGODB_NAME="outage", MONGODB_TIMEOUT_MS="500") as server:
        kill()
        async with connect(server.ws_url(room.pk, "since=0"), token(alice)) as ws:
            assert await close_code(ws, timeout=10) == 4503
