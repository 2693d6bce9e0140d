"""Notices and pushes as deployed: a server, a real broker and a real Celery worker, which this test
kills in the middle of the indexing transaction. Each message still gives each person exactly one
notice and each browser exactly one push, also when the task then runs twice more."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from accounts.models import User, UserLogHead
from chatproject.celery import app as celery_app
from notifications.models import Notification
from tests import live
from tests.live import ROOT, ServerProcess, running_server
from tests.push_endpoint import PushService, push_service, vapid_key_pair
from tests.test_search_worker import eventually
from tests.test_websocket import make_room, rest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Deployment:
    def __init__(self, server: ServerProcess, queue: str, env: dict[str, str], tmp: Path) -> None:
        self.server, self.queue, self.env, self.tmp = server, queue, env, tmp
        self.worker: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start_worker(self) -> None:
        self.starts += 1
        log = (self.tmp / f"worker-{self.starts}.log").open("wb")
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "chatproject",
                "worker",
                "--pool=solo",
                "-Q",
                self.queue,
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(timeout=15)


@pytest.fixture
def deployment(mongo_url: str, transactional_db: Any, tmp_path: Path) -> Iterator[tuple[Deployment, PushService]]:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    push_settings = {"VAPID_PRIVATE_KEY": vapid_key_pair()[0], "PUSH_ALLOW_INSECURE_ENDPOINTS": "true"}
    env = live.worker_env(queue, **push_settings)
    with (
        push_service() as service,
        running_server(tmp_path, CELERY_QUEUE=queue, CELERY_TASK_ALWAYS_EAGER="false", **push_settings) as server,
    ):
        deployment = Deployment(server, queue, env, tmp_path)
        deployment.start_worker()
        try:
            yield deployment, service
        finally:
            deployment.stop_worker()


def waiting_for_a_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
    return bool(row and row[0])


def test_a_worker_killed_mid_task_makes_each_notice_and_push_exactly_once(
    deployment: tuple[Deployment, PushService], alice: User, bob: User, carol: User
) -> None:
    deployed, service = deployment
    room = make_room(alice, bob, carol)
    phone = service.browser("bob-phone")
    with rest(deployed.server, bob) as as_bob, rest(deployed.server, alice) as as_alice:
        assert as_bob.post("/api/push/subscriptions", json=phone.subscription()).status_code == 201

        # Hold Bob's user-log row: the worker's indexing transaction, having inserted the notices,
        # waits there to log them, and is killed while it waits.
        holder = psycopg.connect(live.test_database_url())
        holder.execute(f"SELECT 1 FROM {UserLogHead._meta.db_table} WHERE user_id = %s FOR UPDATE", [bob.pk])
        first = as_alice.post(f"/api/messages/{room.pk}", json={"body": "@bob @carol first"}).json()
        with psycopg.connect(live.test_database_url(), autocommit=True) as watcher:
            eventually(lambda: waiting_for_a_lock(watcher), "the worker waits inside its transaction", timeout=20)
        deployed.kill_worker()
        holder.rollback()
        holder.close()
        time.sleep(0.5)
        assert Notification.objects.filter(message_id=first["id"]).count() == 0  # rolled back with the worker

        deployed.start_worker()
        second = as_alice.post(f"/api/messages/{room.pk}", json={"body": "@bob second"}).json()
        eventually(lambda: Notification.objects.filter(user=bob).count() == 2, "both notices, once", timeout=30)
        pushes = service.wait_for(phone, 2)
        # The same task twice more, as a redelivery would: nothing new.
        for _ in range(2):
            celery_app.send_task("messaging.tasks.index_room", args=[room.pk], queue=deployed.queue)
        time.sleep(3)

    made = sorted(Notification.objects.values_list("user__username", "message_id", "type"))
    assert made == sorted(
        [("bob", first["id"], "mention"), ("carol", first["id"], "mention"), ("bob", second["id"], "mention")]
    )
    assert len(service.to(phone)) == 2
    assert [phone.decrypt(p)["body"] for p in pushes] == ["@bob @carol first", "@bob second"]
