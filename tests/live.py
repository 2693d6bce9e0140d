"""Real server processes (Daphne, or Uvicorn where a test needs a streaming server) on free ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import websockets
from django.conf import settings
from django.db import connection

from tests.conftest import free_port
from tests.frame_schemas import check_server_frame

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = connection.settings_dict
    # pytest-django names the test database only once a test asks for one: without that, this would
    # be the developer's own database. A server test must use `db`/`transactional_db` first.
    assert str(db["NAME"]).startswith("test_"), "a live-server test needs the db or transactional_db fixture"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/{db['NAME']}"


class ServerProcess:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.port = port
        self.proc = proc
        self.log = log

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, room_id: Any, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws/{room_id}" + (f"?{query}" if query else "")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# Uvicorn is what `make run` and the deployment serve with; TEST_ASGI_SERVER=daphne tests Daphne.
DEFAULT_SERVER = os.environ.get("TEST_ASGI_SERVER", "uvicorn")
SERVER_COMMANDS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "chatproject.asgi:application"],
    "uvicorn": [
        *("-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--ws", "websockets-sansio"),
        *("--ws-max-size", str(2 * 65536)),  # as scripts/run_server.sh: twice WS_MAX_FRAME_BYTES
        "chatproject.asgi:application",
    ],
}


def start_server(tmp: Path, *, redis_url: str | None = None, server: str = "", **extra_env: str) -> ServerProcess:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "POSTGRESQL_URL": test_database_url(),
        "MONGODB_URL": settings.MONGODB_URL,
        "MONGODB_NAME": settings.MONGODB_NAME,
        "REDIS_URL": redis_url or settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "HTTPS": "false",  # plain http, as the tests speak to it
        "DB_CONN_MAX_AGE": "0",
        # Servers run as deployed, with the connection pool; the pytest process itself does not
        # (its async tests run the ORM on short-lived threads whose connections a pool never gets back).
        "DB_POOL": "true",
        "WS_TICK_SECONDS": "0.5",
        "WS_PRESENCE_TTL_SECONDS": "2",
        "PYTHONPATH": str(ROOT),
        "CELERY_TASK_ALWAYS_EAGER": "true",  # no worker unless a test starts one (test_search_worker)
        **extra_env,
    }
    log = tmp / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, *(arg.format(port=port) for arg in SERVER_COMMANDS[server or DEFAULT_SERVER])],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(port, proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.http}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def worker_env(queue: str, **extra: str) -> dict[str, str]:
    """The environment of a Celery worker beside a test's servers: the test database, its own queue."""
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "POSTGRESQL_URL": test_database_url(),
        "MONGODB_URL": settings.MONGODB_URL,
        "MONGODB_NAME": settings.MONGODB_NAME,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CELERY_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


@contextmanager
def running_server(tmp: Path, **kwargs: Any) -> Iterator[ServerProcess]:
    server = start_server(tmp, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def recv_json(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame, held to its schema in realtime/frames.py (a mismatch fails the test)."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    frame = json.loads(raw)
    check_server_frame(frame)
    return dict(frame)


async def recv_until(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """Skip frames (presence, typing) until one of `kind` arrives."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"no {kind} frame")
        frame = await recv_json(ws, remaining)
        if frame["type"] == kind:
            return frame


async def message_frames(ws: Any, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next `count` message.new / message.updated frames, skipping others."""
    frames: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(frames) < count:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"got {len(frames)} of {count} message frames: {frames}")
        frame = await recv_json(ws, remaining)
        if frame["type"] in ("message.new", "message.updated"):
            frames.append(frame)
    return frames


async def close_code(ws: Any, timeout: float = 5.0) -> int:
    """Wait for the server to close the socket; its close code."""
    try:
        while True:
            check_server_frame(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except websockets.ConnectionClosed as closed:
        return int(closed.rcvd.code) if closed.rcvd else -1


def connect(url: str, token: str | None = None, **kwargs: Any) -> Any:
    headers = bearer(token) if token else None
    return websockets.connect(url, additional_headers=headers, open_timeout=5, max_size=2**22, **kwargs)


async def ready(*sockets: Any) -> None:
    """Wait until each socket's connect handler has finished (the server answers frames in order)."""
    for ws in sockets:
        await ws.send('{"type": "ping"}')
        await recv_until(ws, "pong")
