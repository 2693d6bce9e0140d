"""Test session wiring: real PostgreSQL and Redis from the environment, a real SecantusDB process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

# Async tests set up rows with the ORM directly; the servers under test run without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from accounts.models import User
from accounts.services import tokens_for
from chatproject.celery import app as celery_app
from messaging import store

pytest_plugins = ["tests.cluster"]  # two server processes on a private Redis

# In-process tests run Celery tasks inline, inside the test's transaction; the path through a
# real broker and worker is driven by tests/test_search_worker.py.
celery_app.conf.task_always_eager = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_secantus(
    tmp: Path, *, storage: str = ":memory:", port: int | None = None, sync_on_commit: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """A SecantusDB process; `storage` a folder to restart it on the same data, `sync_on_commit`
    as the embedded default of `make run` runs it (acknowledged commits are on disk)."""
    port = port or free_port()
    log = open(tmp / f"secantus-{port}.log", "ab")  # noqa: SIM115 - lives as long as the server
    command = [
        sys.executable,
        "-m",
        "secantus",
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--log-level",
        "WARNING",
    ]
    proc = subprocess.Popen(
        [*command, "--sync-on-commit"] if sync_on_commit else command, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"mongodb://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            pymongo.MongoClient(url, serverSelectionTimeoutMS=500).admin.command("ping")
            return proc, url
        except pymongo.errors.PyMongoError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"SecantusDB did not start; see {log.name}")
            time.sleep(0.2)


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine and not os.environ.get("ALLOW_SQLITE_TESTS"):
        pytest.exit("The suite runs on PostgreSQL: set POSTGRESQL_URL (make test does).", returncode=2)
    if not settings.REDIS_URL:
        pytest.exit("The suite runs on Redis: set REDIS_URL (make test does).", returncode=2)
    # The suite speaks plain http, to the test client and to the servers it starts (they inherit
    # this environment): `make test` sets HTTPS=false; a bare `pytest` (or a .env) gets it here.
    # tests/test_production_settings.py checks the TLS defaults in processes of their own.
    os.environ["HTTPS"] = "false"
    settings.SECURE_SSL_REDIRECT = settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_HSTS_SECONDS = 0


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_secantus(tmp_path_factory.mktemp("secantus"))
    settings.MONGODB_URL = url
    settings.MONGODB_NAME = f"test_{uuid.uuid4().hex[:8]}"
    store.close()
    yield url
    store.close()
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _close_server_sessions(django_db_setup: Any) -> Iterator[None]:
    """Server processes under test may leave PostgreSQL sessions behind (a SIGKILL does),
    which would stop pytest-django from dropping the test database."""
    from django.db import connection

    params = {**connection.get_connection_params(), "dbname": "postgres"}
    test_db = connection.settings_dict["NAME"]
    yield
    import psycopg

    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (test_db,),
        )


@pytest.fixture(autouse=True)
def _clean_state(mongo_url: str) -> Iterator[None]:
    cache.clear()  # rate-limit counters live here (a Redis database of the tests' own)
    yield
    store.delete_everything()


@pytest.fixture
def make_user(db: Any) -> Any:
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, **extra: Any) -> User:
        name = username or f"user{next(counter)}_{uuid.uuid4().hex[:6]}"
        return User.objects.create_user(username=name, password="correct horse battery staple", **extra)

    return make


def client_for(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user).access}")
    return client


@pytest.fixture
def alice(make_user: Any) -> User:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Any) -> User:
    return make_user("bob")


@pytest.fixture
def carol(make_user: Any) -> User:
    return make_user("carol")


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium (installed by scripts/ensure_services.sh): browsers cannot be downloaded here."""
    return {**browser_type_launch_args, "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for the rest of the session, and the asyncio tests cannot start theirs after it."""
    items.sort(key=lambda item: "browser" in item.fixturenames)
