"""One socket that stops reading must not slow anyone else, nor grow the server's memory.

Its outgoing queue fills (realtime/outbox.py), it is closed 4408 ("resume with since") and the
fan-out to the other sockets of the process goes on as before.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from accounts.models import User
from tests.live import ServerProcess, connect, ready, recv_json, recv_until, running_server
from tests.test_websocket import make_room, token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BODY_BYTES = 9_000
POSTS = 1_000  # 9 MB: more than the stalled socket's kernel buffers and its queue limit together
BASELINE_POSTS = 300
SENDERS = 4


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def post_many(server: ServerProcess, senders: list[User], room_id: int, count: int, tag: str) -> None:
    """`count` posts of BODY_BYTES, spread over the senders' sockets, each stamped with its send time."""

    async def send(user: User, numbers: range) -> None:
        async with connect(server.ws_url(room_id), token(user)) as ws:
            await ready(ws)
            for number in numbers:
                stamp = f"{tag} {number} {time.time():.6f} "
                # Random text: a run of one letter would shrink to nothing under permessage-deflate.
                body = stamp + secrets.token_urlsafe(BODY_BYTES)[: BODY_BYTES - len(stamp)]
                await ws.send(json.dumps({"type": "message.send", "body": body, "client_id": f"{tag}-{number}"}))
                await recv_until(ws, "message.ack", timeout=30)

    share = count // len(senders)
    await asyncio.gather(*(send(u, range(i * share, (i + 1) * share)) for i, u in enumerate(senders)))


async def read_latencies(ws: Any, tag: str, count: int) -> list[float]:
    """Send->deliver seconds of the next `count` posts tagged `tag`, checking none is missing."""
    latencies: list[float] = []
    seen: set[int] = set()
    while len(seen) < count:
        frame = await recv_json(ws, timeout=30)
        if frame["type"] != "message.new" or not frame["message"]["body"].startswith(tag + " "):
            continue
        _, number, sent_at = frame["message"]["body"].split(" ", 3)[:3]
        seen.add(int(number))
        latencies.append(time.time() - float(sent_at))
    return latencies


async def wait_until_one_fell_behind(server: ServerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.http) as client:
        while "chat_websockets_fell_behind_total 1.0" not in (await client.get("/metrics")).text:
            assert time.monotonic() < deadline, "the stalled socket was never closed"
            await asyncio.sleep(0.2)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def test_a_reader_that_never_reads_slows_no_one_and_is_closed_4408(
    tmp_path: Path, alice: User, bob: User, carol: User, make_user: Any
) -> None:
    senders = [alice, *(make_user(f"sender{i}") for i in range(SENDERS - 1))]
    room = make_room(alice, bob, carol, *senders[1:])
    with running_server(tmp_path, RATELIMIT_ENABLE="false", WS_SEND_STALL_SECONDS="2") as server:
        async with connect(server.ws_url(room.pk), token(bob)) as reader:
            await ready(reader)
            baseline_reading = asyncio.create_task(read_latencies(reader, "base", BASELINE_POSTS))
            await post_many(server, senders, room.pk, BASELINE_POSTS, "base")
            baseline = await baseline_reading

            # Carol's client stops reading after a few frames (websockets pauses the TCP stream once
            # its small buffer is full), so the server's writes to her back up. Her socket's receive
            # buffer is a phone's, not loopback's (which grows to 32 MB here).
            carol_socket = socket.socket()
            carol_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            carol_socket.connect(("127.0.0.1", server.port))
            async with websockets.connect(
                server.ws_url(room.pk),
                sock=carol_socket,
                additional_headers={"Authorization": f"Bearer {token(carol)}"},
                max_queue=1,
                ping_interval=None,  # a client that reads nothing would time its own pings out
            ) as stalled:
                rss_before = rss_mib(server.proc.pid)
                loaded_reading = asyncio.create_task(read_latencies(reader, "load", POSTS))
                posting = asyncio.create_task(post_many(server, senders, room.pk, POSTS, "load"))
                await wait_until_one_fell_behind(server)
                # Reading again, Carol finds what was on its way, then the close that says: resume.
                # (Soon: a client that reads nothing for 40 s is dropped by the server's pings.)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(stalled.recv(), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
                await posting
                loaded = await loaded_reading
                rss_after = rss_mib(server.proc.pid)

    assert len(loaded) == POSTS  # every post reached the reader that reads, none twice
    assert p99(loaded) <= max(2 * p99(baseline), p99(baseline) + 0.05), (p99(baseline), p99(loaded))
    # 1,000 posts of 9 KB are 9 MB: kept for Carol, they would show here (twice: text and frames).
    assert rss_after - rss_before < 15, (rss_before, rss_after)
