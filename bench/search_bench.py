"""Search and history latency through the HTTP API at 1,000,000 messages, next to GET /health.

    .venv/bin/python bench/search_bench.py [--messages 1000000] [--rooms 1000] [--requests 200]

Seeds MongoDB (a SecantusDB process) with the documents the service writes, 1,000 rooms of
which one holds 90% of the messages (so a page 900,000 messages deep exists), and the PostgreSQL
search index: all but the last 20,000 rows by COPY, those through the real indexer (its
throughput is reported). Then, for each ASGI server (Uvicorn, which serves HTTP in the
deployment, and Daphne), one process, it times for a user who is a member of every room (the
widest global search): search for a rare word, a common word, a substring and
operator queries, and history pages: the newest page and one 900,000 messages deep, each asked
again and again (as every member opening a room does; served from the process's history copy),
the newest page while the room receives 10 posts a second (the copy follows the changes), and a
different page 800,000-900,000 deep on each request (never cached: MongoDB every time).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ws_bench import (  # noqa: E402
    BENCH_DB,
    HTTP_SERVERS,
    RESULTS,
    ensure_bench_database,
    free_port,
    http_server_command,
    wait_http,
    wait_port,
)

# Its own database: ws_bench's seeding empties chat_bench, which would orphan data kept with --keep.
SEARCH_BENCH_DB = f"{BENCH_DB}_search"
AUTHORS = 50
RARE_WORD = "quokka"
RARE_COUNT = 20
INDEXED_LIVE = 20_000  # rows written by the real indexer rather than COPY
COMMON = ["the", "and", "to", "is", "it", "we", "for", "on", "this", "that", "with", "ok"]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ra", "tu", "ven", "dor", "sil", "pa", "ne", "qui", "zo", "bre", "fla", "gon"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


class Bodies:
    """Chat-like text: common words, a Zipf-ish vocabulary, code tokens, URLs, accents."""

    def __init__(self, rng: random.Random, total: int) -> None:
        self.rng = rng
        self.words = vocabulary(rng)
        self.weights = [1 / (rank + 1) ** 1.1 for rank in range(len(self.words))]
        self.rare_at = set(rng.sample(range(total), RARE_COUNT))

    def make(self, index: int) -> tuple[str, bool]:
        rng = self.rng
        parts = rng.choices(self.words, self.weights, k=rng.randint(4, 14))
        if rng.random() < 0.45:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(COMMON))
        if rng.random() < 0.03:
            parts.append("deployment")
        if rng.random() < 0.02:
            parts.append(f"getUserById({rng.randint(1, 999)})")
        if rng.random() < 0.02:
            parts.append("café")
        has_link = rng.random() < 0.03
        if has_link:
            parts.append(f"https://example.com/path/{rng.randint(1, 99999)}")
        if index in self.rare_at:
            parts.insert(rng.randrange(len(parts) + 1), RARE_WORD)
        return " ".join(parts), has_link


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--servers", nargs="+", default=["uvicorn", "daphne"], choices=sorted(HTTP_SERVERS))
    parser.add_argument("--only", help="measure only the cases whose name contains this text (and /health)")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the seeded MongoDB data in DIR and reuse it (and chat_bench) on the next run with the same DIR",
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    mongo_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
        "HTTPS": "false",  # plain http on loopback
        "POSTGRESQL_URL": f"postgresql://postgres@127.0.0.1:5432/{SEARCH_BENCH_DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
        "MONGODB_URL": f"mongodb://127.0.0.1:{mongo_port}",
        "MONGODB_NAME": "search",
        "RATELIMIT_ENABLE": "false",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
    }
    os.environ.update(env)
    procs: list[subprocess.Popen[bytes]] = []
    ensure_bench_database(SEARCH_BENCH_DB)
    try:
        # A working set of a million documents: a cache bigger than the 1 GiB default.
        mongo_log = (RESULTS / "search-secantus.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "secantus",
                    "--port",
                    str(mongo_port),
                    "--storage-path",
                    args.keep or ":memory:",
                    "--cache-size",
                    "4G",
                    "--log-level",
                    "WARNING",
                ],
                stdout=mongo_log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_port(mongo_port)
        time.sleep(1.5)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        marker = Path(args.keep) / "seeded.json" if args.keep else None
        if marker is not None and marker.exists():
            token, rooms, seed_report = reuse(marker)
        else:
            token, rooms, seed_report = seed(args)
            if marker is not None:
                marker.write_text(json.dumps({"rooms": rooms, "report": seed_report}))
        report = [seed_report]
        for name in args.servers:
            server = subprocess.Popen(http_server_command(name, port), cwd=ROOT, env=env)
            wait_http(f"http://127.0.0.1:{port}/health")
            try:
                report.append(measure(args, port, token, rooms, name))
            finally:
                server.terminate()
                server.wait(timeout=20)
        text = "\n".join(report)
        print(text)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        (RESULTS / f"search-{stamp}.md").write_text(text + "\n")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)


def reuse(marker: Path) -> tuple[str, list[int], str]:
    from accounts.models import User
    from accounts.services import access_token_for

    saved = json.loads(marker.read_text())
    reader = User.objects.filter(username="bench0").first()
    if reader is None or not reader.memberships.filter(room_id=saved["rooms"][0]).exists():
        sys.exit(f"The PostgreSQL side of the data kept in {marker.parent} is gone: delete that folder and seed again.")
    return access_token_for(reader), saved["rooms"], f"(reused data) {saved['report']}"


def seed(args: argparse.Namespace) -> tuple[str, list[int], str]:
    from bson import ObjectId
    from django.db import connection

    from accounts.models import User
    from accounts.services import access_token_for
    from core.textfold import fold
    from messaging.rendering import plain_html
    from messaging.store import connection as store_connection
    from notifications.models import Notification
    from rooms.models import Membership, Role, Room
    from search import indexing
    from search.models import SearchCursor, SearchEntry

    rng = random.Random(7)
    Notification.objects.all().delete()
    SearchEntry.objects.all().delete()
    Room.objects.all().delete()
    User.objects.all().delete()
    users = User.objects.bulk_create([User(username=f"bench{i}", password="!") for i in range(AUTHORS)])
    reader = users[0]
    rooms = Room.objects.bulk_create([Room(name=f"room-{i}", created_by=reader) for i in range(args.rooms)])
    Membership.objects.bulk_create(
        [
            Membership(room=room, user=u, role=Role.OWNER if u == reader else Role.MEMBER)
            for room in rooms
            for u in users
        ],
        batch_size=5000,
    )
    big_count = args.messages * 9 // 10
    rest, extra = divmod(args.messages - big_count, args.rooms - 1)
    per_room = [big_count] + [rest + (1 if i < extra else 0) for i in range(args.rooms - 1)]
    # Messages over the last 365 days, in posting order.
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / args.messages
    bodies = Bodies(rng, args.messages)
    order = [room.pk for room, count in zip(rooms, per_room, strict=True) for _ in range(count)]
    rng.shuffle(order)
    db = store_connection.db()  # the bench seeds through the store's own collections
    heads: dict[int, int] = {}
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    copy_rows = io.StringIO()
    live_ids: list[int] = []
    cursors: dict[int, int] = {}
    for index, room_id in enumerate(order):
        seq = heads.get(room_id, 0) + 1
        heads[room_id] = seq
        body, has_link = bodies.make(index)
        oid = ObjectId()
        author = users[rng.randrange(AUTHORS)].pk
        posted = (start + step * index).replace(microsecond=(start + step * index).microsecond // 1000 * 1000)
        batch.append(
            {
                "_id": oid,
                "room_id": room_id,
                "seq": seq,
                "version": seq,
                "created_version": seq,
                "author_id": author,
                "body": body,
                "html": plain_html(body),
                "has_link": has_link,
                "mentions": [],
                "mentions_room": False,
                "created_at": posted,
                "edited_at": None,
                "deleted": False,
                "parent_id": None,
                "reply_count": 0,
                "last_reply_at": None,
                "client_id": None,
                "idem_key": f"s:{oid}",
                "reactions": [],
                "attachments": [],
            }
        )
        if index < args.messages - INDEXED_LIVE:
            cursors[room_id] = seq
            text = fold(body).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")
            link = "t" if has_link else "f"
            copy_rows.write(
                f"{oid}\t{room_id}\t{seq}\t{author}\t{posted.isoformat()}\t{text}\tf\t{link}\tf\t[]\tf\t{seq}\n"
            )
        elif room_id not in live_ids:
            live_ids.append(room_id)
        if len(batch) == 2_000:
            db["messages"].insert_many(batch)
            batch = []
    if batch:
        db["messages"].insert_many(batch)
    db["room_counters"].insert_many([{"_id": rid, "seq": s, "version": s} for rid, s in heads.items()])
    mongo_s = time.perf_counter() - started

    started = time.perf_counter()
    columns = (
        "message_id, room_id, seq, author_id, posted_at, text, has_file, has_link, in_thread, mentions, "
        "mentions_room, version"
    )
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(f"COPY messaging_searchentry ({columns}) FROM STDIN") as copy:
            copy.write(copy_rows.getvalue())
        cursor.execute("ANALYZE messaging_searchentry")
    SearchCursor.objects.bulk_create([SearchCursor(room_id=rid, version=v) for rid, v in cursors.items()])
    copy_s = time.perf_counter() - started

    started = time.perf_counter()
    indexed = sum(indexing.catch_up_room(room_id) for room_id in live_ids)
    index_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_searchentry")
    report = (
        f"Seeded {args.messages:,} messages in {args.rooms} rooms (largest {big_count:,}): MongoDB {mongo_s:.0f} s, "
        f"index COPY {copy_s:.0f} s; the real indexer wrote the last {indexed:,} in {index_s:.1f} s "
        f"({indexed / index_s:,.0f} messages/s)."
    )
    print(report, flush=True)
    return access_token_for(reader), [r.pk for r in rooms], report


def measure(args: argparse.Namespace, port: int, token: str, rooms: list[int], server: str) -> str:
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    big = rooms[0]
    head = client.get(f"/api/rooms/{big}").json()["last_seq"]
    deep = max(51, head - 900_000)
    pages = random.Random(11)
    # A case is a path, or a function giving the path of the n-th request.
    cases: dict[str, str | Callable[[int], str]] = {
        "GET /health (floor)": "/health",
        f"search rare word ({RARE_COUNT} hits)": f"/api/search?q={RARE_WORD}",
        "search common word (`the`)": "/api/search?q=the",
        "search substring (`ployme`)": "/api/search?q=ployme",
        "search code token (`getUserBy`)": "/api/search?q=getUserBy",
        "search accents (`CAFE`)": "/api/search?q=CAFE",
        "search operators (`from:bench7 has:link example`)": "/api/search?q=from:bench7%20has:link%20example",
        "search operators (`in:room-500 after:<90 days ago>`)": (
            f"/api/search?q=in:room-500%20after:{(datetime.now(UTC) - timedelta(days=90)).date()}"
        ),
        'search phrase + exclusion (`"the deployment" -ok`)': "/api/search?q=%22the%20deployment%22%20-ok",
        "history newest page (50)": f"/api/messages/{big}",
        "history page 900,000 messages deep": f"/api/messages/{big}?before={deep}",
        "history newest page, room receiving 10 posts/s": f"/api/messages/{big}",
        "history 800,000-900,000 deep, a new page each request (uncached)": (
            lambda n: f"/api/messages/{big}?before={pages.randrange(deep, deep + 100_000)}"
        ),
    }
    lines = [
        "",
        f"{server} (1 process): {args.requests} sequential requests per case after 20 warm-up, "
        f"user in all {len(rooms)} rooms",
        "",
        "| request | results | p50 ms | p99 ms | mean ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, case in cases.items():
        if args.only and args.only not in name and case != "/health":
            continue
        path: Callable[[int], str] = case if callable(case) else (lambda n, fixed=case: fixed)
        poster = _Poster(base_url, token, big) if "posts/s" in name else None
        try:
            response = client.get(path(0))
            response.raise_for_status()
            found = len(response.json().get("results", [])) if case != "/health" else "-"
            for n in range(20):
                client.get(path(n)).raise_for_status()
            timings = []
            for n in range(args.requests):
                url = path(n)
                t = time.perf_counter()
                client.get(url).raise_for_status()
                timings.append((time.perf_counter() - t) * 1000)
        finally:
            if poster is not None:
                poster.stop()
        lines.append(
            f"| {name} | {found} | {percentile(timings, 50):.1f} | {percentile(timings, 99):.1f} "
            f"| {statistics.fmean(timings):.1f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


class _Poster:
    """Posts to a room 10 times a second on its own thread while a case is measured."""

    def __init__(self, base_url: str, token: str, room_id: int) -> None:
        self._stopped = threading.Event()
        self._client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self._room_id = room_id
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stopped.wait(0.1):
            n += 1
            self._client.post(f"/api/messages/{self._room_id}", json={"body": f"live post {n}"}).raise_for_status()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._client.close()


if __name__ == "__main__":
    main()
