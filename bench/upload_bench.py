"""A 1 GiB file through the tus endpoint and back, with the server's peak RSS growth.

    .venv/bin/python bench/upload_bench.py [--size-mib 1024] [--chunk-mib 32] [--servers daphne uvicorn]

For each ASGI server: starts it on the bench database, uploads SIZE in PATCHes of CHUNK (what
tus-js-client's `chunkSize` does), then in one single PATCH, then downloads the file; reports
MB/s and the server process's peak RSS above its idle RSS (sampled every 20 ms), and checks the
SHA-256 of what came back.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

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
)

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)  # the file is this block repeated, with its index mixed in (no two blocks equal)


def block(index: int) -> bytes:
    return index.to_bytes(8, "big") + BLOCK[8:]


def body(first_block: int, blocks: int, digest: hashlib._Hash | None) -> Iterator[bytes]:
    for index in range(first_block, first_block + blocks):
        data = block(index)
        if digest is not None:
            digest.update(data)
        yield data


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return (self.peak - self.base) / MIB


def upload(client: httpx.Client, room_id: int, size_mib: int, chunk_mib: int) -> tuple[str, str]:
    created = client.post(f"/api/rooms/{room_id}/uploads/", headers={"Upload-Length": str(size_mib * MIB)})
    created.raise_for_status()
    path = httpx.URL(created.headers["Location"]).path
    digest = hashlib.sha256()
    offset_blocks = 0
    while offset_blocks < size_mib:
        blocks = min(chunk_mib, size_mib - offset_blocks)
        sent = client.patch(
            path,
            content=body(offset_blocks, blocks, digest),
            headers={
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset_blocks * MIB),
                "Content-Length": str(blocks * MIB),
            },
        )
        if sent.status_code != 204:
            raise RuntimeError(f"PATCH failed: {sent.status_code} {sent.text}")
        offset_blocks += blocks
    return path, digest.hexdigest()


def run_server(name: str, args: argparse.Namespace, env: dict[str, str], token: str, room_id: int) -> list[str]:
    port = free_port()
    command = http_server_command(name, port)
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    rows = []
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as client:
            client.get("/health")
            for label, chunk in (
                (f"upload, {args.chunk_mib} MiB PATCHes", args.chunk_mib),
                ("upload, one PATCH", args.size_mib),
            ):
                rss = PeakRss(server.pid)
                started = time.perf_counter()
                path, sent_digest = upload(client, room_id, args.size_mib, chunk)
                seconds = time.perf_counter() - started
                growth = rss.stop()
                rows.append(f"| {name} | {label} | {args.size_mib * MIB / seconds / 1e6:,.0f} | {growth:,.1f} |")
                print(rows[-1], flush=True)
            url = client.get(path).json()["url"]
            rss = PeakRss(server.pid)
            started = time.perf_counter()
            digest = hashlib.sha256()
            with client.stream("GET", url) as response:
                response.raise_for_status()
                for part in response.iter_bytes(MIB):
                    digest.update(part)
            seconds = time.perf_counter() - started
            growth = rss.stop()
            if digest.hexdigest() != sent_digest:
                raise RuntimeError("the downloaded file differs from the uploaded one")
            rows.append(f"| {name} | download | {args.size_mib * MIB / seconds / 1e6:,.0f} | {growth:,.1f} |")
            print(rows[-1], flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=32)
    parser.add_argument("--servers", nargs="+", default=["daphne", "uvicorn"], choices=sorted(HTTP_SERVERS))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    ensure_bench_database()
    files = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    env = {
        **os.environ,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
        "HTTPS": "false",  # plain http on loopback
        "POSTGRESQL_URL": f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "RATELIMIT_ENABLE": "false",
        "LOG_LEVEL": "WARNING",
        "UPLOAD_MAX_SIZE": str(args.size_mib * MIB),
        "UPLOAD_USER_QUOTA": str(100 * args.size_mib * MIB),
        "UPLOAD_TEMP_DIR": str(files / "partial"),
        "MEDIA_ROOT": str(files / "media"),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from accounts.models import User
    from accounts.services import access_token_for
    from rooms.models import Membership, Role, Room

    user, _ = User.objects.get_or_create(username="upload-bench")
    room = Room.objects.create(name="uploads", created_by=user)
    Membership.objects.create(room=room, user=user, role=Role.OWNER)
    token = access_token_for(user)
    lines = [
        f"{args.size_mib} MiB over loopback, {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores",
        "",
        "| server | transfer | MB/s | server peak RSS growth (MiB) |",
        "| --- | --- | ---: | ---: |",
    ]
    try:
        for name in args.servers:
            lines += run_server(name, args, env, token, room.pk)
    finally:
        subprocess.run(["rm", "-rf", str(files)], check=False)
    text = "\n".join(lines)
    print(text)
    (RESULTS / f"upload-{datetime.now(UTC):%Y%m%dT%H%M%S}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
