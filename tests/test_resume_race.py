"""A room socket resuming with `?since=` while the hub's tick runs: the tick must not catch the
socket up from version 0 before the resume has set where it stands (chaos runs saw whole rooms
replayed to clients resuming from far ahead, when a tick fell inside a slow connect)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from messaging import services, store
from tests.test_user_stream_scale import frames_until_sync_done
from tests.test_websocket import make_room

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_tick_during_a_resume_replays_nothing_the_client_has(
    monkeypatch: pytest.MonkeyPatch, settings: Any, mongo_url: str, alice: User, bob: User
) -> None:
    settings.WS_TICK_SECONDS = 0.05
    room = await sync_to_async(make_room)(alice, bob)
    for i in range(30):
        await sync_to_async(services.message_post)(user=alice, room_id=room.pk, body=f"before {i}")
    since = await sync_to_async(store.head_version)(room.pk)
    real_heads = store.room_heads
    slowed: list[int] = []

    def slow_heads(room_ids: Any) -> Any:
        ids = list(room_ids)
        if ids == [room.pk] and not slowed:
            # The resume's read of the head: a post lands meanwhile, and the hub ticks several times
            # (its tick finds the room changed and asks the socket whether it is behind).
            slowed.append(1)
            services.message_post(user=alice, room_id=room.pk, body="during the connect")
            time.sleep(0.5)
        return real_heads(ids)

    monkeypatch.setattr(store, "room_heads", slow_heads)
    frames, _ = await frames_until_sync_done(f"/api/ws/{room.pk}?since={since}", bob)
    assert slowed
    messages = [(f["type"], f["message"]["body"]) for f in frames if f["type"].startswith("message.")]
    assert messages == [("message.new", "during the connect")]
