"""The ceiling: a bare asyncio/websockets broadcast server speaking the same frames and JSON.

No auth, no storage, no channel layer: it assigns seq/version in memory, acks the sender and
broadcasts one serialised `message.new` frame (the same Message shape as the real server)
to every socket of the room. What this machine can do at best, measured in the same run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

rooms: dict[str, set[ServerConnection]] = {}
counters: dict[str, int] = {}


def message_payload(room: str, version: int, body: str, client_id: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": f"{version:024x}",
        "room_id": room,
        "seq": version,
        "version": version,
        "author": {"id": "1", "username": "bench", "display_name": ""},
        "body": body,
        "created_at": now,
        "edited_at": None,
        "deleted": False,
        "parent_id": None,
        "reply_count": 0,
        "last_reply_at": None,
        "reactions": [],
        "attachments": [],
        "client_id": client_id,
    }


async def handler(ws: ServerConnection) -> None:
    room = ws.request.path.rstrip("/").rsplit("/", 1)[-1] if ws.request else "0"
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "ping":
                await ws.send('{"type":"pong"}')
                continue
            if frame.get("type") != "message.send":
                continue
            counters[room] = counters.get(room, 0) + 1
            message = message_payload(room, counters[room], frame["body"], frame["client_id"])
            dumps = json.dumps
            await ws.send(dumps({"type": "message.ack", "client_id": frame["client_id"], "message": message}))
            broadcast(
                members, dumps({"type": "message.new", "message": message}, ensure_ascii=False, separators=(",", ":"))
            )
    except websockets.ConnectionClosed:
        pass
    finally:
        members.discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, max_size=2**20, ping_interval=None):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
