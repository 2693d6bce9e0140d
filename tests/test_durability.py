"""An acknowledged message is durable: the database killed right after the acks loses none of them,
and no `seq` is handed out twice once it is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pymongo
import pytest
from django.conf import settings

from accounts.models import User
from messaging.store import connection
from tests.conftest import free_port, start_secantus
from tests.live import running_server
from tests.test_websocket import make_room, rest

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
