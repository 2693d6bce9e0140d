"""History page latency through the HTTP API, against a reference request in the same run.

    .venv/bin/python bench/history_bench.py [--messages 100000] [--requests 300]

Seeds one room with N messages straight into the store (batched inserts, the same documents
the service writes), starts Daphne, and times GET /api/messages/{room} for the newest page and a
page deep in the past, next to GET /health (the floor of one HTTP round trip here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ws_bench import BENCH_DB, RESULTS, free_port, wait_http, wait_port  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    mongo_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
        "POSTGRESQL_URL": f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
        "MONGODB_URL": f"mongodb://127.0.0.1:{mongo_port}",
        "MONGODB_NAME": "history",
        "RATELIMIT_ENABLE": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
    }
    os.environ.update(env)
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "secantus", "--port", str(mongo_port), "--storage-path", ":memory:"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(mongo_port)
        time.sleep(1.5)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from bson import ObjectId
        from rest_framework_simplejwt.tokens import AccessToken

        from accounts.models import User
        from messaging import store
        from rooms.models import Membership, Role, Room

        user, _ = User.objects.get_or_create(username="history-bench")
        room = Room.objects.create(name="history", created_by=user)
        Membership.objects.create(room=room, user=user, role=Role.OWNER)
        token = str(AccessToken.for_user(user))
        db = store._db()  # the bench seeds through the store's own collection
        now = datetime.now(UTC)
        started = time.perf_counter()
        batch = []
        for seq in range(1, args.messages + 1):
            oid = ObjectId()
            batch.append(
                {
                    "_id": oid,
                    "room_id": room.pk,
                    "seq": seq,
                    "version": seq,
                    "created_version": seq,
                    "author_id": user.pk,
                    "body": f"message {seq} with some ordinary text",
                    "created_at": now,
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
            if len(batch) == 5000:
                db["messages"].insert_many(batch)
                batch = []
        if batch:
            db["messages"].insert_many(batch)
        db["room_counters"].insert_one({"_id": room.pk, "seq": args.messages, "version": args.messages})
        seeded = time.perf_counter() - started
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-v", "0", "-p", str(port), "chatproject.asgi:application"],
            cwd=ROOT,
            env=env,
        )
        procs.append(server)
        wait_http(f"http://127.0.0.1:{port}/health")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
        deep = max(1, args.messages // 10)
        cases = {
            "GET /health (floor)": "/health",
            "newest page (50)": f"/api/messages/{room.pk}",
            f"page before seq {deep}": f"/api/messages/{room.pk}?before={deep}",
            "page of 200": f"/api/messages/{room.pk}?limit=200",
        }
        print(f"{args.messages} messages seeded in {seeded:.1f} s; {args.requests} requests per case")
        print("| request | p50 ms | p99 ms | mean ms |\n| --- | ---: | ---: | ---: |")
        for name, url in cases.items():
            for _ in range(20):
                client.get(url).raise_for_status()
            timings = []
            for _ in range(args.requests):
                t = time.perf_counter()
                client.get(url).raise_for_status()
                timings.append((time.perf_counter() - t) * 1000)
            print(
                f"| {name} | {percentile(timings, 50):.2f} | {percentile(timings, 99):.2f} "
                f"| {statistics.fmean(timings):.2f} |"
            )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
