"""core.broadcast on the Redis channel layer: frames published together go out at the block's end,
in the order made, through the pipelined group_send_many."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from channels.layers import get_channel_layer

from core import broadcast
from core.channel_layer import ResilientPubSubChannelLayer


def frame(version: int) -> dict[str, Any]:
    return {"type": "message.new", "message": {"version": version}}


async def test_frames_published_together_arrive_at_its_end_in_order() -> None:
    assert isinstance(get_channel_layer(), ResilientPubSubChannelLayer)
    channel = await broadcast.new_channel()
    for group in ("room.9001", "room.9002"):
        await broadcast.subscribe(group, channel)
    inside, release = threading.Event(), threading.Event()

    def publish() -> None:
        with broadcast.together():
            broadcast.publish_many("room.9001", [(frame(1), {}), (frame(2), {"stamp": 7})])
            with broadcast.together():  # an inner block leaves the sending to the outer one
                broadcast.publish_many("room.9002", [(frame(3), {})])
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        assert await asyncio.to_thread(inside.wait, 5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(broadcast.receive(channel), 0.5)  # held until the block ends
        release.set()
        got = [await asyncio.wait_for(broadcast.receive(channel), 5) for _ in range(3)]
    finally:
        release.set()
        await asyncio.to_thread(thread.join, 10)
        for group in ("room.9001", "room.9002"):
            await broadcast.unsubscribe(group, channel)
    assert [(g["group"], g["kind"], g["version"]) for g in got] == [
        ("room.9001", "message.new", 1),
        ("room.9001", "message.new", 2),
        ("room.9002", "message.new", 3),
    ]
    assert got[1]["stamp"] == 7


async def test_a_publish_outside_a_block_goes_at_once() -> None:
    channel = await broadcast.new_channel()
    await broadcast.subscribe("room.9003", channel)
    try:
        await asyncio.to_thread(broadcast.publish_many, "room.9003", [(frame(4), {})])
        got = await asyncio.wait_for(broadcast.receive(channel), 5)
    finally:
        await broadcast.unsubscribe("room.9003", channel)
    assert (got["group"], got["version"]) == ("room.9003", 4)
