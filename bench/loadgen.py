"""WebSocket load generator (its own process): fan-out steps up to the knee, and held connections.

fanout: N member sockets in one room, S of them sending `message.send` at a stepped rate. Every
receiver checks what it gets: lost (an acknowledged message that never arrived), duplicated,
reordered (a version not above the previous one). A step passes with p99 send->deliver under
the limit and none of the three; the knee is the last passing step. Then one step at half the
knee gives the latency figures. Any loss, duplicate or reorder at the knee or below fails the run.

hold: opens COUNT authenticated sockets (each proven by a ping/pong), prints a line, then waits.

spread: a sender posts over its user stream into R rooms in turn at a fixed rate; each reader is
in every room and listens either on one user stream (`--listen stream`) or on one room socket
per room (`--listen rooms`). Prints send->deliver percentiles and the integrity counts (per room:
lost, duplicated, reordered).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the bench requirements
    uvloop = None


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class StepStats:
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    acked: set[int] = field(default_factory=set)


class Member:
    def __init__(self, ws: Any, index: int) -> None:
        self.ws = ws
        self.index = index
        self.seen: set[tuple[int, int]] = set()
        self.last_version = 0
        self.sent_at: dict[str, int] = {}


class Fanout:
    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self.steps: dict[int, StepStats] = {}

    async def read(self, member: Member) -> None:
        loads = orjson.loads
        async for raw in member.ws:
            now = time.perf_counter_ns()
            frame = loads(raw)
            kind = frame.get("type")
            if kind == "message.new":
                message = frame["message"]
                step_text, number_text, sent_text = message["body"].split("|")
                step = self.steps.get(int(step_text))
                if step is None:
                    continue
                key = (int(step_text), int(number_text))
                if key in member.seen:
                    step.duplicates += 1
                    continue
                member.seen.add(key)
                if message["version"] <= member.last_version:
                    step.reordered += 1
                member.last_version = message["version"]
                step.received += 1
                step.latencies_ms.append((now - int(sent_text)) / 1e6)
            elif kind == "message.ack":
                client_id = frame["client_id"]
                sent = member.sent_at.pop(client_id, None)
                step_text, number_text = client_id.split("-")
                step = self.steps.get(int(step_text))
                if sent is not None and step is not None:
                    step.ack_ms.append((now - sent) / 1e6)
                    step.acked.add(int(number_text))

    async def run_step(self, step_id: int, senders: int, rate: float, seconds: float, drain: float) -> dict[str, Any]:
        stats = self.steps[step_id] = StepStats()
        total = max(1, int(rate * seconds))
        start = time.perf_counter()
        for number in range(total):
            due = start + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sender = self.members[number % senders]
            client_id = f"{step_id}-{number}"
            sent = time.perf_counter_ns()
            sender.sent_at[client_id] = sent
            body = f"{step_id}|{number}|{sent}"
            try:
                await sender.ws.send(
                    orjson.dumps({"type": "message.send", "body": body, "client_id": client_id}).decode()
                )
            except websockets.ConnectionClosed:
                break
        send_seconds = time.perf_counter() - start
        members = len(self.members)
        deadline = time.perf_counter() + drain
        while time.perf_counter() < deadline and (len(stats.acked) < total or stats.received < total * members):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        expected = len(stats.acked) * members
        lost = max(0, expected - stats.received)
        return {
            "step": step_id,
            "target_msgs_per_s": rate,
            "sent": total,
            "acked": len(stats.acked),
            "members": members,
            "deliveries": stats.received,
            "deliveries_per_s": round(len(stats.acked) * members / max(send_seconds, seconds)),
            "send_seconds": round(send_seconds, 2),
            "elapsed_seconds": round(elapsed, 2),
            "lost": lost,
            "duplicated": stats.duplicates,
            "reordered": stats.reordered,
            "p50_ms": round(percentile(stats.latencies_ms, 50), 2),
            "p99_ms": round(percentile(stats.latencies_ms, 99), 2),
            "p999_ms": round(percentile(stats.latencies_ms, 99.9), 2),
            "ack_p50_ms": round(percentile(stats.ack_ms, 50), 2),
            "ack_p99_ms": round(percentile(stats.ack_ms, 99), 2),
            "mean_ms": round(statistics.fmean(stats.latencies_ms), 2) if stats.latencies_ms else None,
        }


def load_tokens(path: str) -> list[str]:
    with open(path) as handle:
        return list(json.load(handle)["tokens"])


async def open_sockets(url: str, tokens: list[str], concurrency: int = 50) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(token: str) -> Any:
        async with gate:
            for attempt in range(6):
                try:
                    ws = await websockets.connect(
                        url,
                        additional_headers={"Authorization": f"Bearer {token}"},
                        open_timeout=60,
                        ping_interval=None,
                        max_size=2**22,
                        max_queue=None,
                    )
                    break
                except (OSError, websockets.InvalidHandshake):
                    if attempt == 5:
                        raise
                    await asyncio.sleep(0.5 * 2**attempt)  # a busy server's backlog overflowed
            await ws.send('{"type":"ping"}')
            while True:  # skip presence frames until the pong proves the socket is authenticated
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                if frame.get("type") == "pong":
                    return ws

    return list(await asyncio.gather(*(one(t) for t in tokens)))


async def fanout(args: argparse.Namespace) -> None:
    tokens = load_tokens(args.tokens)[: args.members]
    sockets = await open_sockets(args.url, tokens)
    members = [Member(ws, i) for i, ws in enumerate(sockets)]
    run = Fanout(members)
    readers = [asyncio.create_task(run.read(m)) for m in members]
    await asyncio.sleep(args.settle)
    senders = min(args.senders, len(members))
    results = []
    knee = None
    step_id = 0
    for rate in [float(r) for r in args.rates.split(",")]:
        step_id += 1
        result = await run.run_step(step_id, senders, rate, args.step_seconds, args.drain)
        result["passed"] = (
            result["lost"] == 0
            and result["duplicated"] == 0
            and result["reordered"] == 0
            and result["p99_ms"] < args.p99_limit_ms
            and result["acked"] >= 0.95 * result["sent"]
        )
        results.append(result)
        print(
            f"    step {step_id}: {result['deliveries_per_s']:>7} deliveries/s, "
            f"p50 {result['p50_ms']} p99 {result['p99_ms']} ms, "
            f"acked {result['acked']}/{result['sent']}, lost {result['lost']}, "
            f"{'pass' if result['passed'] else 'FAIL'}",
            file=sys.stderr,
            flush=True,
        )
        if not result["passed"]:
            break
        knee = result
    # An overloaded step leaves a backlog: let it drain before measuring at half the knee, so
    # the figures there are not the previous step's queue.
    backlog_deadline = time.perf_counter() + 60
    while time.perf_counter() < backlog_deadline and any(
        st.received < len(st.acked) * len(members) for st in run.steps.values()
    ):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    half = None
    if knee is not None:
        step_id += 1
        half = await run.run_step(step_id, senders, knee["target_msgs_per_s"] / 2, args.step_seconds * 1.5, args.drain)
    for reader in readers:
        reader.cancel()
    for ws in sockets:
        await ws.close()
    integrity_ok = all(r["duplicated"] == 0 and r["reordered"] == 0 for r in results) and all(
        r["lost"] == 0 for r in results if r["passed"]
    )
    if half is not None:
        integrity_ok = integrity_ok and half["lost"] == 0 and half["duplicated"] == 0 and half["reordered"] == 0
    print(json.dumps({"steps": results, "knee": knee, "half_knee": half, "integrity_ok": integrity_ok}))


async def hold(args: argparse.Namespace) -> None:
    tokens = load_tokens(args.tokens)[: args.count]
    started = time.perf_counter()
    sockets = await open_sockets(args.url, tokens, concurrency=args.concurrency)
    print(json.dumps({"held": len(sockets), "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    # Keep reading so the server's frames do not pile up, until the orchestrator ends us.
    drains = [asyncio.create_task(_drain(ws)) for ws in sockets]
    await asyncio.sleep(args.hold_seconds)
    for task in drains:
        task.cancel()


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


async def spread(args: argparse.Namespace) -> None:
    tokens = load_tokens(args.tokens)
    rooms = [int(r) for r in args.rooms.split(",")]
    readers = tokens[1 : 1 + args.readers]
    stream_url = f"{args.base}/api/ws"
    (sender,) = await open_sockets(stream_url, tokens[:1])
    if args.listen == "stream":
        sockets = await open_sockets(stream_url, readers)
    else:
        sockets = []
        for room in rooms:
            sockets.extend(await open_sockets(f"{args.base}/api/ws/{room}", readers))
    latencies: list[float] = []
    seen: dict[tuple[int, int], set[int]] = {}  # (socket, room) -> message numbers
    last_version: dict[tuple[int, int], int] = {}
    counts = {"duplicated": 0, "reordered": 0, "acked": 0, "errors": 0}
    path_room = {i: rooms[i // len(readers)] for i in range(len(sockets))} if args.listen == "rooms" else {}

    async def read(index: int, ws: Any) -> None:
        try:
            await read_frames(index, ws)
        except Exception as exc:  # a reader that dies would look like lost messages: say why
            print(f"reader {index} failed: {exc!r}", file=sys.stderr, flush=True)
            raise

    async def read_frames(index: int, ws: Any) -> None:
        async for raw in ws:
            now = time.perf_counter_ns()
            frame = orjson.loads(raw)
            if frame.get("type") != "message.new":
                continue
            room = int(frame.get("room_id") or path_room[index])
            number_text, sent_text = frame["message"]["body"].split("|")
            key = (index, room)
            numbers = seen.setdefault(key, set())
            if int(number_text) in numbers:
                counts["duplicated"] += 1
                continue
            numbers.add(int(number_text))
            version = frame["message"]["version"]
            if version <= last_version.get(key, 0):
                counts["reordered"] += 1
            last_version[key] = version
            latencies.append((now - int(sent_text)) / 1e6)

    async def drain_sender() -> None:
        async for raw in sender:
            frame = orjson.loads(raw)
            if frame.get("type") == "message.ack":
                counts["acked"] += 1
            elif frame.get("type") == "error":
                counts["errors"] += 1

    tasks = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
    tasks.append(asyncio.create_task(drain_sender()))
    await asyncio.sleep(args.settle)
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.sleep(0.5)
    total = int(args.rate * args.seconds)
    run = os.urandom(4).hex()  # client_ids of this run only: a repeated one returns the first post
    start = time.perf_counter()
    for number in range(total):
        delay = start + number / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        room = rooms[number % len(rooms)]
        body = f"{number}|{time.perf_counter_ns()}"
        frame = {"type": "message.send", "room_id": str(room), "body": body, "client_id": f"{run}-{number}"}
        await sender.send(orjson.dumps(frame).decode())
    expected = total * len(readers)
    deadline = time.perf_counter() + args.drain
    while len(latencies) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    for ws in [sender, *sockets]:
        await ws.close()
    print(
        json.dumps(
            {
                "listen": args.listen,
                "sockets": len(sockets),
                "sent": total,
                "deliveries": len(latencies),
                "lost": max(0, expected - len(latencies)),
                **counts,
                "p50_ms": round(percentile(latencies, 50), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    fan = sub.add_parser("fanout")
    fan.add_argument("--url", required=True)
    fan.add_argument("--tokens", required=True)
    fan.add_argument("--members", type=int, required=True)
    fan.add_argument("--senders", type=int, default=10)
    fan.add_argument("--rates", required=True, help="messages/s per step, comma-separated, ascending")
    fan.add_argument("--step-seconds", type=float, default=3.0)
    fan.add_argument("--drain", type=float, default=3.0)
    fan.add_argument("--settle", type=float, default=1.0)
    fan.add_argument("--p99-limit-ms", type=float, default=100.0)
    held = sub.add_parser("hold")
    held.add_argument("--url", required=True)
    held.add_argument("--tokens", required=True)
    held.add_argument("--count", type=int, required=True)
    held.add_argument("--concurrency", type=int, default=100)
    held.add_argument("--hold-seconds", type=float, default=600)
    spreading = sub.add_parser("spread")
    spreading.add_argument("--base", required=True, help="ws://host:port")
    spreading.add_argument("--tokens", required=True)
    spreading.add_argument("--rooms", required=True, help="room ids, comma-separated")
    spreading.add_argument("--readers", type=int, default=20)
    spreading.add_argument("--listen", choices=["stream", "rooms"], required=True)
    spreading.add_argument("--rate", type=float, default=50.0)
    spreading.add_argument("--seconds", type=float, default=10.0)
    spreading.add_argument("--drain", type=float, default=10.0)
    spreading.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    runner = uvloop.run if uvloop is not None else asyncio.run
    modes = {"fanout": fanout, "hold": hold, "spread": spread}
    runner(modes[args.mode](args))


if __name__ == "__main__":
    main()
