"""Chaos run: the delivery promise checked while the services fail under two server processes.

    .venv/bin/python bench/chaos.py --seconds 120      # the README's run
    .venv/bin/python bench/chaos.py --seconds 20       # what CI runs (tests/test_chaos.py)

It starts its own PostgreSQL cluster, Redis, SecantusDB (on disk, `--sync-on-commit`), a Celery
worker and two Uvicorn server processes, all on free ports of this machine. WebSocket clients post
with `client_id` (resending what was not acked, after any reconnect, with the same id) and resume
with `?since=`; meanwhile the run kills and restarts Redis, kills (SIGKILL) and restarts SecantusDB
on its data, pauses PostgreSQL (SIGSTOP/SIGCONT on every process of its cluster), kills a server
process and starts it again, and cuts client sockets at random. At the end every client resumes
once more and its stream is compared with what MongoDB holds: acknowledged messages lost,
duplicated, delivered out of order, `seq` given to another message, clients not caught up, HTTP
5xx answers to a probe polling both servers, and the time until the first ack after each fault.
Any loss, duplicate, reordering, reused `seq`, client left behind or HTTP 500 exits with status 1.

`--no-faults --seconds 180 --clients 24` is the soak: the same clients with no faults, failing also
when the steady server process's RSS or open files grow once warm, or anything is logged as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pymongo
import websockets

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_BIN = Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin"
FAULT_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up")


class Stack:
    """The services and server processes of one run, in a temporary folder."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.pg_port, self.redis_port, self.mongo_port = free_port(), free_port(), free_port()
        self.server_ports = [free_port(), free_port()]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "SECRET_KEY": "chaos-secret-key-0123456789abcdef0123456789abcdef",
            "HTTPS": "false",  # plain http on loopback
            "POSTGRESQL_URL": f"postgresql://postgres@127.0.0.1:{self.pg_port}/chat",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "MONGODB_URL": f"mongodb://127.0.0.1:{self.mongo_port}",
            "MONGODB_NAME": "chaos",
            "MONGODB_TIMEOUT_MS": "1500",
            "RATELIMIT_ENABLE": "false",
            "WS_TICK_SECONDS": "1",
            "DB_CONN_MAX_AGE": "0",
            "PYTHONPATH": str(ROOT),
        }

    def spawn(self, name: str, cmd: list[str], **kwargs: Any) -> None:
        log = (self.dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, **kwargs)

    # --- PostgreSQL: a cluster of the run's own, so pausing it touches nobody else -------------
    def start_postgres(self) -> None:
        data = self.dir / "pg"
        if not data.exists():
            data.mkdir()
            shutil.chown(data, "postgres")
            as_postgres = ["runuser", "-u", "postgres", "--"]
            subprocess.run(
                [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        self.spawn(
            "postgres",
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.pg_port),
                "-k",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
            ],
        )
        wait_until(
            lambda: subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port)]).returncode == 0,
            "PostgreSQL",
        )
        subprocess.run(
            ["psql", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-c", "CREATE DATABASE chat"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def postgres_processes(self) -> list[psutil.Process]:
        pid = int((self.dir / "pg" / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def pause_postgres(self, paused: bool) -> None:
        for proc in self.postgres_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    # --- Redis, SecantusDB, the worker and the servers ------------------------------------------
    def start_redis(self) -> None:
        self.spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        wait_until(
            lambda: (
                subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True).returncode == 0
            ),
            "Redis",
        )

    def start_mongo(self) -> None:
        self.spawn(
            "mongo",
            [
                PY,
                "-m",
                "secantus",
                "--port",
                str(self.mongo_port),
                "--storage-path",
                str(self.dir / "mongo"),
                "--sync-on-commit",
                "--log-level",
                "WARNING",
            ],
        )
        url = f"mongodb://127.0.0.1:{self.mongo_port}"
        wait_until(lambda: pymongo.MongoClient(url, serverSelectionTimeoutMS=500).admin.command("ping"), "SecantusDB")

    def start_worker(self) -> None:
        self.spawn("worker", [PY, "-m", "celery", "-A", "chatproject", "worker", "-l", "WARNING", "--concurrency", "1"])

    def start_server(self, index: int) -> None:
        port = self.server_ports[index]
        self.spawn(
            f"server{index}",
            [
                PY,
                "-m",
                "uvicorn",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "off",
                "--no-access-log",
                "chatproject.asgi:application",
            ],
        )
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200, "server")

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def keep_worker_alive(self) -> None:
        """What `make run` does for its worker: start it again if it exited."""
        if self.procs["worker"].poll() is not None:
            self.start_worker()

    def up(self) -> None:
        self.start_postgres()
        self.start_redis()
        self.start_mongo()
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.start_worker()
        self.start_server(0)
        self.start_server(1)

    def down(self) -> None:
        if "postgres" in self.procs:
            self.pause_postgres(False)
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if name == "postgres" else signal.SIGKILL)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def seed(stack: Stack, users: int, rooms: int) -> list[tuple[str, int]]:
    """Users, and rooms that every user is in; each client is (access token, its room)."""
    sizes = ",".join(str(users) for _ in range(rooms - 1))
    out = subprocess.run(
        [PY, "bench/seed.py", str(users), sizes],
        cwd=ROOT,
        env={**stack.env, "ACCESS_TOKEN_EXPIRE_MINUTES": "120"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seeded = json.loads(out)
    room_ids = seeded["room_ids"]
    return [(token, room_ids[i % len(room_ids)]) for i, token in enumerate(seeded["tokens"])]


@dataclass
class Client:
    index: int
    token: str
    room_id: int
    last_version: int = 0
    next_number: int = 0
    pending: dict[str, float] = field(default_factory=dict)  # client_id -> when first sent
    acked: dict[str, tuple[str, int, float]] = field(default_factory=dict)  # client_id -> (id, seq, when)
    received: dict[str, int] = field(default_factory=dict)  # message id -> times seen as message.new
    out_of_order: int = 0
    connects: int = 0
    server_errors: int = 0  # `error` frames with code server_error (a bug, where 503 is honest)
    ack_seconds: list[float] = field(default_factory=list)  # first send -> ack, resends included


class Run:
    def __init__(
        self, stack: Stack, clients: list[Client], seconds: float, seed_value: int, faults: bool, only: str
    ) -> None:
        self.stack = stack
        self.with_faults = faults
        self.only = only
        self.clients = clients
        self.seconds = seconds
        self.random = random.Random(seed_value)
        self.stopping = False
        self.faults: list[dict[str, Any]] = []
        self.server_up = [True, True]
        self.http_5xx: dict[int, int] = {}
        self.probes = 0
        self.samples: list[tuple[float, float, int]] = []  # (when, RSS MiB, open files) of server0

    def url(self, client: Client) -> str:
        live = [i for i, up in enumerate(self.server_up) if up] or [0]
        port = self.stack.server_ports[self.random.choice(live)]
        return f"ws://127.0.0.1:{port}/api/ws/{client.room_id}?since={client.last_version}"

    async def client_session(self, client: Client, final: bool = False) -> bool:
        """One connection: resend what is pending, post, read; True once a final resume is done."""
        try:
            async with websockets.connect(
                self.url(client),
                open_timeout=3,
                close_timeout=1,
                additional_headers={"Authorization": f"Bearer {client.token}"},
            ) as ws:
                client.connects += 1
                for client_id in list(client.pending):
                    await ws.send(json.dumps({"type": "message.send", "client_id": client_id, "body": client_id}))
                reader = asyncio.create_task(self.read(client, ws, final))
                if final:
                    return await asyncio.wait_for(reader, 15)
                cut_after = self.random.uniform(1, 6)
                started = time.monotonic()
                while not self.stopping and time.monotonic() - started < cut_after and not reader.done():
                    if len(client.pending) < 5:
                        client_id = f"c{client.index}-{client.next_number}"
                        client.next_number += 1
                        client.pending[client_id] = time.monotonic()
                        await ws.send(json.dumps({"type": "message.send", "client_id": client_id, "body": client_id}))
                    await asyncio.sleep(self.random.uniform(0.05, 0.3))
                if not self.stopping and not reader.done():
                    ws.transport.abort()  # a cut, not a close: the server learns it from the socket
                reader.cancel()
        except (OSError, TimeoutError, websockets.WebSocketException, asyncio.CancelledError):
            pass
        return False

    async def read(self, client: Client, ws: Any, final: bool = False) -> bool:
        """Record what arrives; on a final resume, return True once synced with nothing pending."""
        synced = False
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind in ("message.new", "message.updated"):
                version = frame["message"]["version"]
                if version <= client.last_version:
                    client.out_of_order += 1
                client.last_version = max(client.last_version, version)
                if kind == "message.new":
                    message_id = frame["message"]["id"]
                    client.received[message_id] = client.received.get(message_id, 0) + 1
            elif kind == "message.ack":
                message = frame["message"]
                if frame["client_id"] in client.pending:
                    first_sent = client.pending.pop(frame["client_id"])
                    client.acked[frame["client_id"]] = (message["id"], message["seq"], time.monotonic())
                    client.ack_seconds.append(time.monotonic() - first_sent)
            elif kind == "error" and frame.get("code") == "server_error":
                client.server_errors += 1
            elif kind == "sync.done":
                synced = True
            if final and synced and not client.pending:
                return True
        return False

    async def client_loop(self, client: Client) -> None:
        while not self.stopping:
            await self.client_session(client)
            await asyncio.sleep(self.random.uniform(0.05, 0.5))

    async def probe(self) -> None:
        """REST answers from both servers during the faults: a 503 is honest, a 500 is a bug."""
        token = self.clients[0].token
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {token}"}) as http:
            while not self.stopping:
                for index, port in enumerate(self.stack.server_ports):
                    if not self.server_up[index]:
                        continue
                    for method, path in (("GET", "/api/rooms/"), ("POST", "/api/auth/ws-ticket")):
                        try:
                            answer = await http.request(method, f"http://127.0.0.1:{port}{path}")
                        except httpx.HTTPError:
                            continue
                        self.probes += 1
                        if answer.status_code >= 500:
                            self.http_5xx[answer.status_code] = self.http_5xx.get(answer.status_code, 0) + 1
                await asyncio.sleep(0.25)

    async def sample(self) -> None:
        """RSS and open files of the server process that no fault restarts, once a second."""
        proc = psutil.Process(self.stack.procs["server0"].pid)
        while not self.stopping:
            self.samples.append((time.monotonic(), proc.memory_info().rss / 2**20, proc.num_fds()))
            await asyncio.sleep(1)

    async def fault(self, name: str, start: Any, stop: Any) -> None:
        began = time.monotonic()
        await asyncio.to_thread(start)
        await asyncio.sleep(FAULT_SECONDS)
        await asyncio.to_thread(stop)
        self.faults.append({"fault": name, "began": began, "restored": time.monotonic()})

    async def chaos(self) -> None:
        stack = self.stack
        kinds = [
            ("redis killed", lambda: stack.kill("redis"), stack.start_redis),
            ("mongodb killed", lambda: stack.kill("mongo"), stack.start_mongo),
            ("postgresql paused", lambda: stack.pause_postgres(True), lambda: stack.pause_postgres(False)),
            ("server killed", self.kill_server, self.restart_server),
        ]
        kinds = [kind for kind in kinds if self.only in kind[0]]
        deadline = time.monotonic() + self.seconds
        turn = 0
        if not self.with_faults:
            await asyncio.sleep(self.seconds)
            return
        await asyncio.sleep(2)
        while time.monotonic() + FAULT_SECONDS + 1 < deadline:
            name, start, stop = kinds[turn % len(kinds)]
            await self.fault(name, start, stop)
            await asyncio.to_thread(stack.keep_worker_alive)
            turn += 1
            await asyncio.sleep(min(2.0, max(0.0, deadline - time.monotonic() - FAULT_SECONDS)))

    def kill_server(self) -> None:
        self.server_up[1] = False
        self.stack.kill("server1")

    def restart_server(self) -> None:
        self.stack.start_server(1)
        self.server_up[1] = True

    async def run(self) -> None:
        loops = [asyncio.create_task(self.client_loop(c)) for c in self.clients]
        probe = asyncio.create_task(self.probe())
        sampler = asyncio.create_task(self.sample())
        await self.chaos()
        self.stopping = True
        await asyncio.gather(*loops, probe, sampler, return_exceptions=True)
        # First every client gets its pending posts acked (resent with their client_id), then, with
        # nothing left in flight anywhere, each resumes once more to its room's end.
        deadline = time.monotonic() + 60
        for client in self.clients:
            while client.pending and time.monotonic() < deadline:
                await self.client_session(client, final=True)
        for client in self.clients:
            while time.monotonic() < deadline and not await self.client_session(client, final=True):
                await asyncio.sleep(0.5)


def verify(stack: Stack, run: Run) -> dict[str, Any]:
    db = pymongo.MongoClient(f"mongodb://127.0.0.1:{stack.mongo_port}").chaos
    truth: dict[int, dict[int, dict[str, Any]]] = {}
    for doc in db.messages.find({}, {"room_id": 1, "seq": 1, "client_id": 1, "author_id": 1, "version": 1}):
        truth.setdefault(int(doc["room_id"]), {})[int(doc["seq"])] = doc
    lost = reused = duplicated = reordered = behind = missing_total = 0
    examples: list[dict[str, Any]] = []
    for client in run.clients:
        room = truth.get(client.room_id, {})
        ids = {str(doc["_id"]): seq for seq, doc in room.items()}
        for message_id, seq, _ in client.acked.values():
            if message_id not in ids:
                lost += 1
            elif ids[message_id] != seq:
                reused += 1
        duplicated += sum(count - 1 for count in client.received.values() if count > 1)
        reordered += client.out_of_order
        missing = set(ids) - set(client.received)
        if missing:
            behind += 1
            missing_total += len(missing)
            examples.extend(
                {
                    "client": client.index,
                    "room": client.room_id,
                    "seq": ids[m],
                    "version": room[ids[m]]["version"],
                    "client_last_version": client.last_version,
                    "client_id": room[ids[m]].get("client_id"),
                }
                for m in sorted(missing, key=ids.__getitem__)[:3]
            )
    stored_twice = 0
    for room in truth.values():
        keys = [(doc["author_id"], doc.get("client_id")) for doc in room.values() if doc.get("client_id")]
        stored_twice += len(keys) - len(set(keys))
    acks = sorted(when for c in run.clients for *_, when in c.acked.values())
    recovery = []
    for fault in run.faults:
        after = [when for when in acks if when > fault["restored"]]
        recovery.append(
            {"fault": fault["fault"], "first_ack_after_s": round(after[0] - fault["restored"], 2) if after else None}
        )
    warmed = run.samples[len(run.samples) // 4 :] or run.samples  # after the first quarter: caches filled
    errors = sum(
        1
        for log in stack.dir.glob("server*.log")
        for line in log.read_text(errors="replace").splitlines()
        if "ERROR" in line or "Traceback" in line
    )
    return {
        "server0_rss_mib": [round(warmed[0][1], 1), round(warmed[-1][1], 1)] if warmed else None,
        "server0_open_files": [warmed[0][2], warmed[-1][2]] if warmed else None,
        "server_log_errors": errors,
        "acked": len(acks),
        "stored": sum(len(room) for room in truth.values()),
        "never_acked": sum(len(c.pending) for c in run.clients),
        "lost": lost,
        "seq_reused": reused,
        "duplicated": duplicated + stored_twice,
        "out_of_order": reordered,
        "clients_behind": behind,
        "deliveries_missing": missing_total,
        "missing_examples": examples[:12],
        "connects": sum(c.connects for c in run.clients),
        "ack_seconds_p50_p99_max": _spread([x for c in run.clients for x in c.ack_seconds]),
        "socket_server_errors": sum(c.server_errors for c in run.clients),
        "http_probes": run.probes,
        "http_5xx": run.http_5xx,
        "recovery": recovery,
    }


def _spread(values: list[float]) -> list[float]:
    if not values:
        return []
    ordered = sorted(values)
    return [round(ordered[int(q * (len(ordered) - 1))], 3) for q in (0.5, 0.99, 1.0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--rooms", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, data)")
    parser.add_argument("--no-faults", action="store_true", help="clients and socket cuts only (a reference run)")
    parser.add_argument("--only", help="only the faults whose name contains this (redis, mongodb, postgresql, server)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    os.chmod(workdir, 0o755)  # the PostgreSQL cluster inside runs as the postgres user
    stack = Stack(workdir)
    try:
        stack.up()
        clients = [Client(i, token, room) for i, (token, room) in enumerate(seed(stack, args.clients, args.rooms))]
        run = Run(stack, clients, args.seconds, args.seed, faults=not args.no_faults, only=args.only or "")
        started = time.monotonic()
        asyncio.run(run.run())
        report = verify(stack, run)
        report["seconds"] = round(time.monotonic() - started, 1)
    finally:
        stack.down()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    broken = ("lost", "seq_reused", "duplicated", "out_of_order", "clients_behind", "socket_server_errors")
    failed = any(report[key] for key in broken) or report["http_5xx"].get(500, 0) or report["acked"] == 0
    if args.no_faults and report["server0_rss_mib"]:
        # A soak: memory and open files flat once warm, and nothing logged as an error.
        (rss_start, rss_end), (fds_start, fds_end) = report["server0_rss_mib"], report["server0_open_files"]
        # (Each client may hold one socket of the server's at a sample, or none: that much is noise.)
        soaked = (
            rss_end <= rss_start * 1.2 + 10
            and fds_end <= fds_start + args.clients + 10
            and report["server_log_errors"] == 0
        )
        failed = failed or not soaked
    print("chaos:", "FAILED" if failed else "passed", f"(workdir {workdir})" if args.keep else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
