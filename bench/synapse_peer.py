"""Peer benchmark: this server against Matrix Synapse, the same load shape, in the same run.

    .venv/bin/python bench/synapse_peer.py [--quick] [--seconds 10] [--latency-seconds 30]

Synapse (matrix-synapse from PyPI, in a virtualenv of its own that this script creates on demand in
bench/results/synapse-venv, outside the project's .venv) runs as one process on PostgreSQL
(database `synapse_bench`, `UTF8` with the `C` collation, dropped and created here), with every
`rc_*` rate limit off, presence off, no federation listener. This server runs in write_bench.py's
production configuration (`Stack`: PostgreSQL, Redis channel layer, Celery worker, SecantusDB with
`--sync-on-commit`, Uvicorn one process). One server runs at a time: ours first, then Synapse.

Both get 64 users in each of 10 rooms, and one more room of 10 members. Per server:

- closed-loop posts at 8 and 64 senders over the 10 rooms (the next post leaves when the previous
  one is acked): ours `POST /api/messages/{room}` (write_bench.py's `Stack.cell`, acked by the
  201), Synapse `PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}`, acked by a 200
  with an `event_id`; only acked posts count. CPU per post: the server process(es), the
  PostgreSQL backends of its database (and the cluster's own processes), and for ours also Celery,
  SecantusDB and Redis, from /proc, from the start of the load until the work it caused is done
  (ours: the search index has every post; Synapse: its process and PostgreSQL idle again);
- send->deliver latency at an open-loop 10 posts/s into the room of 10, each post by the members
  in turn, each of the 10 members receiving: ours a room socket (`/api/ws/{room}`) per member,
  Synapse a long-polling `/sync` loop per member (`since`, `timeout=30000`, a filter keeping the
  room's timeline only); latency = receive time - send time in one load-generator process,
  matched by a tag at the start of the body, over every (post, member) pair.

Each cell first waits (up to 90 s) for the machine to be quiet outside the measured processes and
is measured again (up to --retries times) when more than --max-noise % of the machine went
elsewhere. Acked Synapse events are looked up in its `events` table afterwards; acked posts of
ours are read back from MongoDB (write_bench.py's `Stack.verify`).

Prints a Markdown table and the ratios (ours/Synapse posts/s, Synapse/ours CPU per post, the p99
ratio) and writes JSON to bench/results/synapse-<UTC stamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.write_bench as write_bench  # noqa: E402
from bench.write_bench import (  # noqa: E402
    BODY_WORDS,
    PG_ADMIN,
    PY,
    RESULTS,
    Child,
    HttpConnection,
    Sample,
    Stack,
    all_processes,
    cpu_between,
    fmt,
    free_port,
    latency_summary,
    machine,
    machine_busy_ticks,
    open_room_socket,
    postgres_split,
    postgres_ticks,
    say,
    share,
    tree_ticks,
    wait_line,
    wait_until,
)

# write_bench.py's Stack takes its database, Redis database and Celery queue from these module
# constants: a database, Redis database and queue of our own, so that a write_bench.py run beside
# this one (which drops and creates its database) does not pull the stack from under it.
OUR_DB = write_bench.PG_DB = "chat_synapsepeer"
write_bench.REDIS_DB = 12
write_bench.CELERY_QUEUE = "synapsepeer"

SYN_VENV = RESULTS / "synapse-venv"
SYN_DB = "synapse_bench"
SERVER_NAME = "bench.local"
SHARED_SECRET = "synapse-peer-shared-secret-0123456789"
USERS = 64
ROOMS = 10
MEMBERS = 10
RATE = 10.0
TARGET_POSTS_RATIO = 5.0
TARGET_CPU_RATIO = 5.0
SYNC_FILTER = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {
        "timeline": {"limit": 100, "types": ["m.room.message"]},
        "state": {"types": []},
        "ephemeral": {"types": []},
        "account_data": {"types": []},
    },
}


def post_body(tag: str, number: int) -> str:
    return f"{tag}-{number} {BODY_WORDS}"


def body_key(body: Any) -> str:
    return body.split(" ", 1)[0] if isinstance(body, str) else ""


# ------------------------------------------------------------------------------------------------
# CPU accounting: write_bench.py's `sample`, for any PostgreSQL database.


def sample_of(pids: dict[str, int], database: str) -> Sample:
    import psutil

    ticks = {n: postgres_ticks(p, database) if n == "postgres" else tree_ticks(p) for n, p in pids.items()}
    ours = {os.getpid()}
    for name, pid in pids.items():
        if name == "postgres":
            ours |= set(postgres_split(pid, database)[0])
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            ours |= {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))}
    return Sample(time.monotonic(), ticks, machine_busy_ticks(), all_processes(), ours)


def wait_quiet(pids: Callable[[], dict[str, int]], database: str, limit: float = 90, threshold: float = 15) -> float:
    """write_bench.py's `Stack.wait_quiet`: no CI run going, then 2 s in a row with under `threshold` %
    of the machine outside the measured processes; returns the seconds waited."""
    started = time.monotonic()
    told = False
    while time.monotonic() - started < 1800:
        found = subprocess.run(["pgrep", "-f", "bash .ci/run"], capture_output=True, text=True).stdout.split()
        if not found:
            break
        if not told:
            print("  (a CI run is going: waiting for it to end before the next cell)", flush=True)
            told = True
        time.sleep(10)
    calm_since = time.monotonic()
    calm = 0
    while time.monotonic() - calm_since < limit:
        before = sample_of(pids(), database)
        time.sleep(1)
        cpu = cpu_between(before, sample_of(pids(), database))
        calm = calm + 1 if cpu["machine_busy_pct"] - sum(cpu["cpu_ms"].values()) / 10 < threshold else 0
        if calm >= 2:
            break
    return round(time.monotonic() - started, 1)


def settle(pids: dict[str, int], database: str, limit: float = 30) -> float:
    """Until the measured processes (not the load generator) use under 5 % of a core for 1 s."""
    started = time.monotonic()
    calm = 0
    watched = {n: p for n, p in pids.items() if n != "client"}
    while time.monotonic() - started < limit:
        before = sample_of(watched, database)
        time.sleep(0.5)
        used = sum(cpu_between(before, sample_of(watched, database))["cpu_ms"].values())
        calm = calm + 1 if used < 25 else 0
        if calm >= 2:
            break
    return round(time.monotonic() - started, 2)


# ------------------------------------------------------------------------------------------------
# Load generators (children): write_bench's keep-alive HTTP/1.1 client, with a timeout.


class Http(HttpConnection):
    async def request(
        self, method: str, path: str, headers: bytes, body: bytes = b"", timeout: float = 30
    ) -> tuple[int, bytes]:
        return await asyncio.wait_for(super().request(method, path, headers, body), timeout)


def auth(token: str) -> bytes:
    return f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()


def send_path(room: str, txn: str) -> str:
    return f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message/{quote(txn, safe='')}"


async def synapse_send(conn: Http, token: str, room: str, txn: str, body: str) -> tuple[str | None, str | None]:
    """One PUT; (event_id, None) when acked, else (None, what went wrong)."""
    import orjson

    try:
        status, payload = await conn.request(
            "PUT", send_path(room, txn), auth(token), orjson.dumps({"msgtype": "m.text", "body": body})
        )
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
        conn.close()
        return None, type(exc).__name__
    if status != 200:
        return None, f"http {status}"
    event_id = orjson.loads(payload).get("event_id")
    return (event_id, None) if isinstance(event_id, str) and event_id.startswith("$") else (None, "no event_id")


async def synapse_load_main(args: argparse.Namespace) -> None:
    """Closed-loop PUT senders, one user (access token) each, in turn over their share of the rooms."""
    import orjson

    seeded = json.loads(Path(args.seed).read_text())
    tokens: list[str] = seeded["tokens"]
    rooms: list[str] = seeded["room_ids"][: args.rooms]
    plans = [[rooms[i] for i in share(len(rooms), args.senders, s)] for s in range(args.senders)]
    acked: list[list[Any]] = []
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    say("ready")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, wait_line, "go")
    started = time.perf_counter()
    deadline = None if args.once else started + args.seconds

    async def sender(index: int) -> None:
        conn = Http(args.port)
        plan = plans[index]
        number = 0
        while deadline is None or time.perf_counter() < deadline:
            if deadline is None and number >= len(plan):
                break
            room = plan[number % len(plan)]
            number += 1
            txn = f"{args.tag}-{index}-{number}"
            begun = time.perf_counter()
            event_id, error = await synapse_send(conn, tokens[index], room, txn, post_body(args.tag, number))
            if event_id is None:
                errors[error or "?"] += 1
                continue
            latencies.append((time.perf_counter() - begun) * 1000)
            acked.append([room, txn, event_id, index])
        conn.close()

    await asyncio.gather(*(sender(s) for s in range(args.senders)))
    elapsed = time.perf_counter() - started
    Path(args.out).write_bytes(
        orjson.dumps(
            {"acked": acked, "elapsed_s": elapsed, "latency": latency_summary(latencies), "errors": dict(errors)}
        )
    )
    say("done")
    await loop.run_in_executor(None, wait_line, "quit")


async def latency_main(args: argparse.Namespace) -> None:
    """Open loop: post n leaves at n / rate s, by member n % members; every member receives."""
    import orjson
    import websockets

    seeded = json.loads(Path(args.seed).read_text())
    tokens: list[str] = seeded["tokens"][: args.members]
    room: str = str(seeded["latency_room"])
    received: dict[str, dict[int, float]] = defaultdict(dict)
    readers: list[asyncio.Task[None]] = []
    errors: Counter[str] = Counter()
    loop = asyncio.get_running_loop()

    if args.kind == "ours":
        sockets = [await open_room_socket(args.port, int(room), token) for token in tokens]

        async def ws_reader(member: int, ws: Any) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    now = time.perf_counter()
                    frame = orjson.loads(raw)
                    if frame.get("type") == "message.new":
                        received[body_key(frame["message"].get("body"))].setdefault(member, now)

        readers = [asyncio.create_task(ws_reader(m, ws)) for m, ws in enumerate(sockets)]
    else:
        sockets = []
        query = "filter=" + quote(json.dumps({**SYNC_FILTER, "room": {**SYNC_FILTER["room"], "rooms": [room]}}))
        query += "&set_presence=offline"

        async def first_sync(token: str) -> tuple[Http, str]:
            conn = Http(args.port)
            status, payload = await conn.request("GET", f"/_matrix/client/v3/sync?{query}&timeout=0", auth(token))
            if status != 200:
                raise RuntimeError(f"initial /sync: {status} {payload[:200]!r}")
            return conn, orjson.loads(payload)["next_batch"]

        async def sync_reader(member: int, token: str, conn: Http, since: str) -> None:
            path = f"/_matrix/client/v3/sync?{query}&timeout=30000&since="
            while True:
                try:
                    status, payload = await conn.request("GET", path + quote(since), auth(token), timeout=75)
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    errors[f"sync {type(exc).__name__}"] += 1
                    conn.close()
                    continue
                now = time.perf_counter()
                if status != 200:
                    errors[f"sync http {status}"] += 1
                    await asyncio.sleep(0.1)
                    continue
                answer = orjson.loads(payload)
                since = answer["next_batch"]
                timeline = answer.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {})
                if timeline.get("limited"):
                    errors["sync timeline limited"] += 1
                for event in timeline.get("events", []):
                    if event.get("type") == "m.room.message":
                        received[body_key(event.get("content", {}).get("body"))].setdefault(member, now)

        firsts = await asyncio.gather(*(first_sync(token) for token in tokens))
        readers = [
            asyncio.create_task(sync_reader(m, tokens[m], conn, since)) for m, (conn, since) in enumerate(firsts)
        ]
    pools: list[list[Any]] = [[] for _ in tokens]
    sent: dict[str, float] = {}
    acked: list[list[Any]] = []
    ack_ms: list[float] = []
    say("ready")
    await loop.run_in_executor(None, wait_line, "go")
    started = time.perf_counter()
    total = round(args.rate * args.seconds)
    late: list[float] = []

    async def post(number: int) -> None:
        member = number % len(tokens)
        conn = pools[member].pop() if pools[member] else Http(args.port)
        key = f"{args.tag}-{number}"
        body = post_body(args.tag, number)
        begun = time.perf_counter()
        sent[key] = begun
        try:
            if args.kind == "ours":
                payload = orjson.dumps({"body": body, "client_id": key})
                try:
                    status, answer = await asyncio.wait_for(
                        conn.post(f"/api/messages/{room}", auth(tokens[member]), payload), 30
                    )
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    conn.close()
                    errors[type(exc).__name__] += 1
                    return
                if status != 201:
                    errors[f"http {status}"] += 1
                    return
                message = orjson.loads(answer)
                acked.append([int(room), key, message["seq"], message["id"], member])
            else:
                event_id, error = await synapse_send(conn, tokens[member], room, key, body)
                if event_id is None:
                    errors[error or "?"] += 1
                    return
                acked.append([room, key, event_id, member])
            ack_ms.append((time.perf_counter() - begun) * 1000)
        finally:
            pools[member].append(conn)

    tasks = []
    for number in range(total):
        due = started + number / args.rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        late.append((time.perf_counter() - due) * 1000)
        tasks.append(asyncio.create_task(post(number)))
    await asyncio.gather(*tasks)
    sending_s = time.perf_counter() - started
    keys = [entry[1] for entry in acked]
    drain_until = time.perf_counter() + 15
    while time.perf_counter() < drain_until and any(len(received[k]) < len(tokens) for k in keys):
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    for task in readers:
        task.cancel()
    delivered = [(t - sent[k]) * 1000 for k in keys for t in received[k].values()]
    missing = sum(len(tokens) - len(received[k]) for k in keys)
    Path(args.out).write_bytes(
        orjson.dumps(
            {
                "acked": acked,
                "sent": total,
                "elapsed_s": elapsed,
                "sending_s": sending_s,
                "deliveries": len(delivered),
                "missing": missing,
                "delivery": latency_summary(delivered),
                "ack": latency_summary(ack_ms),
                "send_lateness": latency_summary(late),
                "errors": dict(errors),
            }
        )
    )
    say("done")
    await loop.run_in_executor(None, wait_line, "quit")
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# ------------------------------------------------------------------------------------------------
# Synapse: the virtualenv, the configuration, the process, the users and rooms.


def ensure_synapse_venv() -> Path:
    python = SYN_VENV / "bin" / "python"
    check = [str(python), "-c", "import synapse, psycopg2; print(synapse.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"  creating {SYN_VENV.relative_to(ROOT)} (pip install matrix-synapse psycopg2-binary)", flush=True)
    shutil.rmtree(SYN_VENV, ignore_errors=True)
    subprocess.run([PY, "-m", "venv", str(SYN_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "matrix-synapse", "psycopg2-binary"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return python


def unlimited() -> dict[str, Any]:
    return {"per_second": 1_000_000, "burst_count": 1_000_000}


class Synapse:
    def __init__(self, stamp: str) -> None:
        self.work = RESULTS / f"synapse-{stamp}-synapse"
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: dict[str, int] = {}
        self.seed_file = self.work / "seed.json"
        self.python = ensure_synapse_venv()
        self.version = subprocess.run(
            [str(self.python), "-c", "import synapse; print(synapse.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def configure(self) -> Path:
        config = self.work / "homeserver.yaml"
        log_config = self.work / "log.config"
        log_config.write_text(
            json.dumps(
                {
                    "version": 1,
                    "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "filename": str(self.work / "homeserver.log"),
                            "formatter": "plain",
                        }
                    },
                    "root": {"level": "WARNING", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        limits = unlimited()
        settings = {
            "server_name": SERVER_NAME,
            "pid_file": str(self.work / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {
                "name": "psycopg2",
                "args": {
                    "user": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "dbname": SYN_DB,
                    "cp_min": 5,
                    "cp_max": 10,
                },
            },
            "log_config": str(log_config),
            "media_store_path": str(self.work / "media"),
            "signing_key_path": str(self.work / "signing.key"),
            "registration_shared_secret": SHARED_SECRET,
            "macaroon_secret_key": "synapse-peer-macaroon-0123456789abcdef",
            "form_secret": "synapse-peer-form-0123456789abcdef",
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "presence": {"enabled": False},
            "bcrypt_rounds": 4,
            "rc_message": limits,
            "rc_registration": limits,
            "rc_registration_token_validity": limits,
            "rc_login": {"address": limits, "account": limits, "failed_attempts": limits},
            "rc_admin_redaction": limits,
            "rc_joins": {"local": limits, "remote": limits},
            "rc_joins_per_room": limits,
            "rc_3pid_validation": limits,
            "rc_invites": {"per_room": limits, "per_user": limits, "per_issuer": limits},
            "rc_third_party_invite": limits,
            "rc_room_creation": limits,
            "rc_presence": {"per_user": limits},
            "rc_delayed_event_mgmt": limits,
            "rc_reports": limits,
            "rc_media_create": limits,
            "rc_federation": {"window_size": 1000, "sleep_limit": 1_000_000, "reject_limit": 1_000_000},
        }
        config.write_text(json.dumps(settings, indent=1))  # JSON is YAML
        subprocess.run(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(config), "--generate-keys"],
            cwd=self.work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return config

    def start(self) -> None:
        import httpx
        import psutil
        import psycopg

        subprocess.run([str(ROOT / "scripts" / "ensure_services.sh")], check=True, stdout=subprocess.DEVNULL)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SYN_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {SYN_DB} ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE=template0")
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert backend is not None
            self.pids["postgres"] = psutil.Process(int(backend[0])).ppid()
        config = self.configure()
        self.proc = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(config)],
            cwd=self.work,
            stdout=(self.work / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.pids["synapse"] = self.proc.pid
        url = self.url("/_matrix/client/versions")

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.work / "stdout.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"Synapse exited ({self.proc.returncode}):\n{tail}")
            return httpx.get(url, timeout=1).status_code == 200

        wait_until(up, "Synapse", timeout=180, interval=0.5)

    def stack_pids(self) -> dict[str, int]:
        return {name: self.pids[name] for name in ("synapse", "postgres") if name in self.pids}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    async def _seed(self, users: int, rooms: int, members: int) -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(base_url=self.url(""), timeout=120) as client:
            gate = asyncio.Semaphore(8)

            async def register(number: int) -> str:
                async with gate:
                    nonce = (await client.get("/_synapse/admin/v1/register")).json()["nonce"]
                    name, password = f"pb{number}", f"pw-{number}-synapse-peer"
                    mac = hmac.new(SHARED_SECRET.encode(), digestmod=hashlib.sha1)
                    mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
                    answer = await client.post(
                        "/_synapse/admin/v1/register",
                        json={"nonce": nonce, "username": name, "password": password, "mac": mac.hexdigest()},
                    )
                    answer.raise_for_status()
                    return str(answer.json()["access_token"])

            tokens = list(await asyncio.gather(*(register(n) for n in range(users))))

            async def create(name: str) -> str:
                answer = await client.post(
                    "/_matrix/client/v3/createRoom",
                    headers={"Authorization": f"Bearer {tokens[0]}"},
                    json={"preset": "public_chat", "name": name},
                )
                answer.raise_for_status()
                return str(answer.json()["room_id"])

            room_ids = [await create(f"peer-bench-{i}") for i in range(rooms)]
            latency_room = await create("peer-latency")

            async def join(token: str, room: str) -> None:
                async with gate:
                    answer = await client.post(
                        f"/_matrix/client/v3/join/{quote(room, safe='')}",
                        headers={"Authorization": f"Bearer {token}"},
                        json={},
                    )
                    answer.raise_for_status()

            await asyncio.gather(*(join(tokens[u], room) for room in room_ids for u in range(1, users)))
            await asyncio.gather(*(join(tokens[u], latency_room) for u in range(1, members)))
        return {"tokens": tokens, "room_ids": room_ids, "latency_room": latency_room}

    def seed(self, users: int, rooms: int, members: int) -> None:
        started = time.monotonic()
        self.seed_file.write_text(json.dumps(asyncio.run(self._seed(users, rooms, members))))
        print(f"  seeded {users} users in {rooms} rooms (+1 of {members}) in {time.monotonic() - started:.1f} s")

    def stored(self, event_ids: list[str]) -> dict[str, Any]:
        """Every acked event is in Synapse's `events` table, once."""
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{SYN_DB}") as conn:
            row = conn.execute("SELECT count(*) FROM events WHERE event_id = ANY(%s)", (event_ids,)).fetchone()
        found = int(row[0]) if row else 0
        problems = []
        if len(set(event_ids)) != len(event_ids):
            problems.append("the same event_id acked twice")
        if found != len(set(event_ids)):
            problems.append(f"{len(set(event_ids)) - found} acked events missing from `events`")
        return {"ok": not problems, "problems": problems, "messages_checked": found}

    def load(self, senders: int, rooms: int, tag: str, seconds: float, once: bool = False) -> Child:
        cmd = [PY, __file__, "_synapse-load", "--port", str(self.port), "--seed", str(self.seed_file)]
        cmd += ["--senders", str(senders), "--rooms", str(rooms), "--seconds", str(seconds), "--tag", tag]
        cmd += ["--out", str(self.work / f"load-{tag}.json")]
        return Child([*cmd, "--once"] if once else cmd, child_env(), self.work / "load.log")

    def warm(self, senders: int) -> dict[str, Any]:
        child = self.load(senders, ROOMS, "warm", 0, once=True)
        try:
            child.expect("ready")
            child.send("go")
            child.expect("done")
            result = json.loads((self.work / "load-warm.json").read_text())
        finally:
            child.finish()
        return {"posts": len(result["acked"]), "errors": result["errors"]}

    def cell(self, senders: int, rooms: int, tag: str, seconds: float) -> dict[str, Any]:
        waited = wait_quiet(self.stack_pids, SYN_DB)
        child = self.load(senders, rooms, tag, seconds)
        try:
            child.expect("ready")
            time.sleep(0.5)
            pids = {**self.stack_pids(), "client": child.pid}
            before = sample_of(pids, SYN_DB)
            child.send("go")
            child.expect("done")
            load_end = sample_of(pids, SYN_DB)
            settled = settle(pids, SYN_DB)
            after = sample_of(pids, SYN_DB)
            result = json.loads((self.work / f"load-{tag}.json").read_text())
        finally:
            child.finish()
        acked = result.pop("acked")
        entry = measured("synapse", senders, rooms, seconds, len(acked), result, before, load_end, after)
        entry.update(waited_for_quiet_s=waited, settle_s=settled, verification=self.stored([a[2] for a in acked]))
        return entry


def child_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
    }


def measured(
    server: str,
    senders: int,
    rooms: int,
    seconds: float,
    posts: int,
    result: dict[str, Any],
    before: Sample,
    load_end: Sample,
    after: Sample,
) -> dict[str, Any]:
    cpu = cpu_between(before, after)
    per = {name: round(ms / posts, 3) if posts else None for name, ms in cpu["cpu_ms"].items()}
    stack_ms = sum(ms for name, ms in cpu["cpu_ms"].items() if name != "client")
    return {
        "server": server,
        "senders": senders,
        "rooms": rooms,
        "seconds": seconds,
        "posts": posts,
        "posts_per_s": round(posts / result["elapsed_s"], 1) if result.get("elapsed_s") else 0,
        **result,
        "cpu": cpu,
        "cpu_during_load": cpu_between(before, load_end),
        "cpu_ms_per_post": {**per, "stack": round(stack_ms / posts, 3) if posts else None},
    }


# ------------------------------------------------------------------------------------------------
# The latency cell, for either server.


def latency_cell(
    kind: str,
    port: int,
    seed: Path,
    pids_of: Callable[[], dict[str, int]],
    database: str,
    work: Path,
    env: dict[str, str],
    tag: str,
    seconds: float,
    after_load: Callable[[dict[str, int]], float],
    check: Callable[[list[list[Any]]], dict[str, Any]],
) -> dict[str, Any]:
    waited = wait_quiet(pids_of, database)
    out = work / f"latency-{tag}.json"
    cmd = [PY, __file__, "_latency", "--kind", kind, "--port", str(port), "--seed", str(seed), "--tag", tag]
    cmd += ["--members", str(MEMBERS), "--rate", str(RATE), "--seconds", str(seconds), "--out", str(out)]
    child = Child(cmd, env, work / "latency.log")
    try:
        child.expect("ready")
        time.sleep(1.0)
        pids = {**pids_of(), "client": child.pid}
        before = sample_of(pids, database)
        child.send("go")
        child.expect("done")
        load_end = sample_of(pids, database)
        settled = after_load(pids)
        after = sample_of(pids, database)
        result = json.loads(out.read_text())
    finally:
        child.finish()
    acked = result.pop("acked")
    entry = measured(kind, MEMBERS, 1, seconds, len(acked), result, before, load_end, after)
    entry.update(waited_for_quiet_s=waited, settle_s=settled, verification=check(acked))
    return entry


def with_retries(measure: Callable[[str], dict[str, Any]], tag: str, args: argparse.Namespace) -> dict[str, Any]:
    """The cell again while more than --max-noise % of the machine went to other processes; the
    quietest attempt is kept."""
    attempts: list[dict[str, Any]] = []
    for attempt in range(1 + args.retries):
        attempts.append(measure(f"{tag}-a{attempt}"))
        noise = attempts[-1]["cpu"]["unaccounted_pct"] or 0.0
        if noise <= args.max_noise or attempt == args.retries:
            break
        others = attempts[-1]["cpu"]["other_processes_ms"]
        mostly = f", mostly {others[0][0][:60]}" if others else ""
        print(f"  ({tag}: {noise:.0f} % of the machine outside the measured processes{mostly}; again)", flush=True)
    cell = min(attempts, key=lambda c: c["cpu"]["unaccounted_pct"] or 0.0)
    cell["attempts"] = [
        {"posts_per_s": a["posts_per_s"], "unaccounted_pct": a["cpu"]["unaccounted_pct"]} for a in attempts
    ]
    return cell


def show(cell: dict[str, Any]) -> None:
    per = cell["cpu_ms_per_post"]
    ok = "ok" if cell["verification"]["ok"] else "FAILED " + "; ".join(cell["verification"]["problems"][:3])
    if "delivery" in cell:
        d = cell["delivery"]
        print(
            f"  {cell['server']:8s} latency {RATE:.0f}/s x {MEMBERS}: {cell['posts']} acked,"
            f" send->deliver p50 {fmt(d['p50_ms'])} p99 {fmt(d['p99_ms'])} ms, missing {cell['missing']},"
            f" stack {fmt(per['stack'])} ms/post, errors {sum(cell['errors'].values())}, {ok}",
            flush=True,
        )
    else:
        lat = cell["latency"]
        print(
            f"  {cell['server']:8s} {cell['senders']:>3} senders x {cell['rooms']} rooms: {cell['posts_per_s']:>7.1f}"
            f" posts/s, ack p50 {fmt(lat['p50_ms'])} p99 {fmt(lat['p99_ms'])} ms, stack {fmt(per['stack'])} ms/post,"
            f" errors {sum(cell['errors'].values())}, {ok}",
            flush=True,
        )


# ------------------------------------------------------------------------------------------------
# The two servers' runs.


def run_ours(args: argparse.Namespace, stamp: str, report: dict[str, Any], save: Callable[[], None]) -> None:
    import httpx

    print("ours (write_bench.py's production stack):", flush=True)
    stack = Stack(
        "production", argparse.Namespace(pause_for_ci=True, users=USERS, asgi_servers=["uvicorn"]), f"synapse-{stamp}"
    )
    try:
        stack.start(USERS, ROOMS)
        seeded = json.loads(stack.seed_file.read_text())
        tokens = seeded["tokens"]
        base = f"http://127.0.0.1:{stack.port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            made = client.post(
                "/api/rooms/", json={"name": "peer-latency"}, headers={"Authorization": f"Bearer {tokens[0]}"}
            )
            made.raise_for_status()
            room = int(made.json()["id"])
            for token in tokens[1:MEMBERS]:
                client.post(f"/api/rooms/{room}/join", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        seed = stack.work / "peer-seed.json"
        seed.write_text(json.dumps({**seeded, "latency_room": room}))
        report["warm"]["ours"] = warm = stack.warm(ROOMS)
        print(f"  warm-up: {warm['posts']} posts, index lag {warm['index_lag_s']:.1f} s", flush=True)
        for senders in args.senders:

            def one(tag: str, senders: int = senders) -> dict[str, Any]:
                cell = stack.cell("rest", senders, ROOMS, tag, args.seconds)
                cell["server"] = "ours"
                return cell

            cell = with_retries(one, f"ours-rest-{senders}x{ROOMS}", args)
            report["cells"].append(cell)
            show(cell)
            save()

        def wait_index(_pids: dict[str, int]) -> float:
            return round(stack.wait_indexed([room]), 2)

        def measure(tag: str) -> dict[str, Any]:
            return latency_cell(
                "ours",
                stack.port,
                seed,
                stack.stack_pids,
                OUR_DB,
                stack.work,
                stack.env,
                tag,
                args.latency_seconds,
                wait_index,
                lambda acked: stack.verify(acked, [room]),
            )

        cell = with_retries(measure, "ours-latency", args)
        report["latency"].append(cell)
        show(cell)
        save()
    finally:
        stack.close()
        shutil.rmtree(stack.work / "secantus", ignore_errors=True)


def run_synapse(args: argparse.Namespace, stamp: str, report: dict[str, Any], save: Callable[[], None]) -> None:
    print("Synapse:", flush=True)
    synapse = Synapse(stamp)
    report["synapse_version"] = synapse.version
    print(f"  matrix-synapse {synapse.version} on PostgreSQL ({SYN_DB})", flush=True)
    try:
        started = time.monotonic()
        synapse.start()
        print(f"  up in {time.monotonic() - started:.1f} s", flush=True)
        synapse.seed(USERS, ROOMS, MEMBERS)
        report["warm"]["synapse"] = warm = synapse.warm(8)
        print(f"  warm-up: {warm['posts']} posts, errors {warm['errors']}", flush=True)
        for senders in args.senders:

            def one(tag: str, senders: int = senders) -> dict[str, Any]:
                return synapse.cell(senders, ROOMS, tag, args.seconds)

            cell = with_retries(one, f"syn-put-{senders}x{ROOMS}", args)
            report["cells"].append(cell)
            show(cell)
            save()

        def measure(tag: str) -> dict[str, Any]:
            return latency_cell(
                "synapse",
                synapse.port,
                synapse.seed_file,
                synapse.stack_pids,
                SYN_DB,
                synapse.work,
                child_env(),
                tag,
                args.latency_seconds,
                lambda pids: settle(pids, SYN_DB),
                lambda acked: synapse.stored([a[2] for a in acked]),
            )

        cell = with_retries(measure, "syn-latency", args)
        report["latency"].append(cell)
        show(cell)
        save()
    finally:
        synapse.close()


# ------------------------------------------------------------------------------------------------
# The report.


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    cells = {(c["server"], c["senders"]): c for c in report["cells"]}
    rows: list[dict[str, Any]] = []
    for senders in sorted({c["senders"] for c in report["cells"]}):
        ours, syn = cells.get(("ours", senders)), cells.get(("synapse", senders))
        if not ours or not syn:
            continue
        name = f"{senders} senders x {ROOMS} rooms"
        got = ratio(ours["posts_per_s"], syn["posts_per_s"])
        rows.append(
            {
                "measure": "posts/s, ours / Synapse",
                "cell": name,
                "ours": ours["posts_per_s"],
                "synapse": syn["posts_per_s"],
                "ratio": got,
                "target": f">= {TARGET_POSTS_RATIO:.0f}",
                "met": got is not None and got >= TARGET_POSTS_RATIO,
            }
        )
        got = ratio(syn["cpu_ms_per_post"]["stack"], ours["cpu_ms_per_post"]["stack"])
        rows.append(
            {
                "measure": "whole-stack CPU ms per post, Synapse / ours",
                "cell": name,
                "ours": ours["cpu_ms_per_post"]["stack"],
                "synapse": syn["cpu_ms_per_post"]["stack"],
                "ratio": got,
                "target": f">= {TARGET_CPU_RATIO:.0f}",
                "met": got is not None and got >= TARGET_CPU_RATIO,
            }
        )
    lat = {c["server"]: c for c in report["latency"]}
    if "ours" in lat and "synapse" in lat:
        name = f"{RATE:.0f} posts/s into a room of {MEMBERS}"
        for pct in ("p50", "p99"):
            mine, theirs = lat["ours"]["delivery"][f"{pct}_ms"], lat["synapse"]["delivery"][f"{pct}_ms"]
            rows.append(
                {
                    "measure": f"send->deliver {pct} ms, ours / Synapse",
                    "cell": name,
                    "ours": mine,
                    "synapse": theirs,
                    "ratio": ratio(mine, theirs),
                    "target": "-",
                    "met": None,
                }
            )
        got = ratio(lat["synapse"]["cpu_ms_per_post"]["stack"], lat["ours"]["cpu_ms_per_post"]["stack"])
        rows.append(
            {
                "measure": "whole-stack CPU ms per post incl. delivery, Synapse / ours",
                "cell": name,
                "ours": lat["ours"]["cpu_ms_per_post"]["stack"],
                "synapse": lat["synapse"]["cpu_ms_per_post"]["stack"],
                "ratio": got,
                "target": "-",
                "met": None,
            }
        )
    return rows


def tables(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}; run {report['date']}; matrix-synapse {report.get('synapse_version', '?')};"
        f" {report['seconds']} s per closed-loop cell, {report['latency_seconds']} s of latency load.",
        "",
        "Closed loop over 10 rooms of 64 members (CPU in ms per acked post; ours: server = Uvicorn, other ="
        " Celery + SecantusDB + Redis; stack = their sum, the load generator not in it):",
        "",
        "| server | senders | acked posts/s | ack p50 / p99 ms | errors | server | PostgreSQL | other | **stack** "
        "| machine busy / not ours | verified |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def row_cpu(cell: dict[str, Any]) -> str:
        per = cell["cpu_ms_per_post"]
        server = per.get("server") if cell["server"] == "ours" else per.get("synapse")
        other = sum(per.get(n) or 0 for n in ("celery", "secantus", "redis")) if cell["server"] == "ours" else None
        return f"{fmt(server)} | {fmt(per.get('postgres'))} | {fmt(other)} | **{fmt(per.get('stack'))}**"

    def busy(cell: dict[str, Any]) -> str:
        return f"{fmt(cell['cpu']['machine_busy_pct'], 0)} % / {fmt(cell['cpu']['unaccounted_pct'], 0)} %"

    for cell in report["cells"]:
        lat = cell["latency"]
        lines.append(
            f"| {cell['server']} | {cell['senders']} | {fmt(cell['posts_per_s'], 1)} "
            f"| {fmt(lat['p50_ms'])} / {fmt(lat['p99_ms'])} | {sum(cell['errors'].values())} | {row_cpu(cell)} "
            f"| {busy(cell)} | {'yes' if cell['verification']['ok'] else 'NO'} |"
        )
    lines += [
        "",
        f"Open loop, {RATE:.0f} posts/s into a room of {MEMBERS}, every member receiving (ours: a room socket"
        " each; Synapse: a long-polling /sync each); latency over every (post, member) pair:",
        "",
        "| server | acked / sent | deliveries (missing) | send->deliver p50 / p99 / max ms | ack p50 / p99 ms "
        "| errors | server | PostgreSQL | other | **stack** | machine busy / not ours |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell in report["latency"]:
        d, a = cell["delivery"], cell["ack"]
        lines.append(
            f"| {cell['server']} | {cell['posts']} / {cell['sent']} | {cell['deliveries']:,} ({cell['missing']}) "
            f"| {fmt(d['p50_ms'])} / {fmt(d['p99_ms'])} / {fmt(d['max_ms'])} | {fmt(a['p50_ms'])} / {fmt(a['p99_ms'])} "
            f"| {sum(cell['errors'].values())} | {row_cpu(cell)} | {busy(cell)} |"
        )
    if report.get("ratios"):
        lines += [
            "",
            "| measure | cell | ours | Synapse | ratio | target | met |",
            "| --- | --- | ---: | ---: | ---: | --- | --- |",
        ]
        for row in report["ratios"]:
            met = "-" if row["met"] is None else ("yes" if row["met"] else "**no**")
            lines.append(
                f"| {row['measure']} | {row['cell']} | {fmt(row['ours'])} | {fmt(row['synapse'])} "
                f"| {fmt(row['ratio'])} | {row['target']} | {met} |"
            )
    return "\n".join(lines)


def orchestrate(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join([str(Path(PY).relative_to(ROOT)) if PY.startswith(str(ROOT)) else PY, *sys.argv]),
        "seconds": args.seconds,
        "latency_seconds": args.latency_seconds,
        "cells": [],
        "latency": [],
        "warm": {},
    }
    out = RESULTS / f"synapse-{stamp}.json"

    def save() -> None:
        out.write_text(json.dumps(report, indent=2, default=str))

    if "ours" in args.servers:
        run_ours(args, stamp, report, save)
    if "synapse" in args.servers:
        run_synapse(args, stamp, report, save)
    failed = any(not c["verification"]["ok"] for c in [*report["cells"], *report["latency"]])
    failed |= any(c.get("missing") for c in report["latency"])
    report["ratios"] = ratios(report)
    report["failed"] = failed
    save()
    print()
    print(tables(report))
    print(f"\nJSON: {out.relative_to(ROOT)}")
    if failed:
        print("\nFAILED: an acked post was not stored as acked, or a member did not receive an acked post.")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("_synapse-load")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--seed", required=True)
    load.add_argument("--senders", type=int, required=True)
    load.add_argument("--rooms", type=int, required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--tag", required=True)
    load.add_argument("--out", required=True)
    load.add_argument("--once", action="store_true")
    lat = sub.add_parser("_latency")
    lat.add_argument("--kind", choices=["ours", "synapse"], required=True)
    lat.add_argument("--port", type=int, required=True)
    lat.add_argument("--seed", required=True)
    lat.add_argument("--members", type=int, required=True)
    lat.add_argument("--rate", type=float, required=True)
    lat.add_argument("--seconds", type=float, required=True)
    lat.add_argument("--tag", required=True)
    lat.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s cells, 5 s of latency load")
    parser.add_argument("--servers", nargs="+", choices=["ours", "synapse"], default=["ours", "synapse"])
    parser.add_argument("--senders", type=int, nargs="+", default=[8, 64], help="closed-loop cells")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per closed-loop cell")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="open-loop load of the latency cell")
    parser.add_argument("--max-noise", type=float, default=20.0, help="measure again above this %% elsewhere")
    parser.add_argument("--retries", type=int, default=2)
    args = parser.parse_args()
    if args.command in ("_synapse-load", "_latency"):
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(synapse_load_main(args) if args.command == "_synapse-load" else latency_main(args))
        return
    if args.quick:
        args.seconds = 3.0 if args.seconds == 10.0 else args.seconds
        args.latency_seconds = 5.0 if args.latency_seconds == 30.0 else args.latency_seconds
        args.retries = 0
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    sys.exit(orchestrate(args))


if __name__ == "__main__":
    main()
