"""The indexing path as deployed: a server that does not index inline, a real broker, a real worker."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from tests import live
from tests.live import ROOT, ServerProcess, running_server
from tests.test_websocket import make_room, rest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def deployed(mongo_url: str, transactional_db: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    """Server and worker on a queue of this test's own (nothing left over from other runs)."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = live.worker_env(queue)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "chatproject", "worker", "--pool=solo", "-Q", queue, "-l", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with running_server(tmp_path, CELERY_QUEUE=queue, CELERY_TASK_ALWAYS_EAGER="false") as server:
            yield server
    finally:
        worker.terminate()
        worker.wait(timeout=15)
        log.close()


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)


def test_worker_indexes_posts_edits_deletions_and_mentions(deployed: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    with rest(deployed, alice) as client_a, rest(deployed, bob) as client_b:

        def found(q: str) -> list[str]:
            response = client_b.get("/api/search", params={"q": q})
            assert response.status_code == 200, response.text
            return [m["body"] for m in response.json()["results"]]

        posted = client_a.post(f"/api/messages/{room.pk}", json={"body": "Déploiement terminé, @bob"})
        assert posted.status_code == 201
        eventually(lambda: found("deploiement") == ["Déploiement terminé, @bob"], "the post is searchable")
        notices = client_b.get("/api/notifications/").json()["results"]
        assert [(n["type"], n["message_id"]) for n in notices] == [("mention", posted.json()["id"])]

        message_id = posted.json()["id"]
        assert client_a.put(f"/api/messages/{message_id}", json={"body": "rollback started"}).status_code == 200
        eventually(lambda: found("rollback") == ["rollback started"] and found("deploiement") == [], "the edit")
        assert client_a.delete(f"/api/messages/{message_id}").status_code == 204
        eventually(lambda: found("rollback") == [], "the deletion")


def test_posts_in_several_rooms_at_once_are_indexed_by_the_worker(
    deployed: ServerProcess, alice: User, bob: User
) -> None:
    """Rooms posted to within one coalescing interval go to the worker as one task (index_rooms)."""
    rooms = [make_room(alice, bob) for _ in range(4)]
    with rest(deployed, alice) as client_a, rest(deployed, bob) as client_b:
        for number, room in enumerate(rooms):
            assert (
                client_a.post(f"/api/messages/{room.pk}", json={"body": f"quarterly{number} figures"}).status_code
                == 201
            )

        def found() -> set[str]:
            response = client_b.get("/api/search", params={"q": "figures"})
            assert response.status_code == 200, response.text
            return {m["body"] for m in response.json()["results"]}

        eventually(lambda: found() == {f"quarterly{n} figures" for n in range(4)}, "every room indexed")


def test_a_burst_of_posts_queues_one_indexing_task_for_its_rooms(settings: Any) -> None:
    """Posts of one process within INDEXING_COALESCE_SECONDS: one flag check per room and one task
    for all of them, queued on the real broker (here with no worker, so the queue can be counted)."""
    import base64
    import json
    import threading

    import redis
    from django.core.cache import cache

    from chatproject.celery import app as celery_app
    from search import tasks

    queue = f"test-burst-{uuid.uuid4().hex[:8]}"
    settings.INDEXING_COALESCE_SECONDS = 0.2
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    rooms = (880001, 880002, 880003)
    try:
        cache.delete_many([f"search-pending:{r}" for r in rooms])
        posters = [
            threading.Thread(target=lambda: [tasks.schedule(r) for _ in range(20) for r in rooms]) for _ in range(4)
        ]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
        assert broker.llen(queue) == 0  # nothing queued yet: the writers did not wait for the broker
        eventually(lambda: broker.llen(queue) == 1, "one task", timeout=5)
        time.sleep(0.5)
        assert broker.llen(queue) == 1  # and no more: 240 calls, one task
        task = json.loads(broker.lindex(queue, 0))
        assert task["headers"]["task"] == "search.tasks.index_rooms"
        assert sorted(json.loads(base64.b64decode(task["body"]))[0][0]) == list(rooms)
        tasks.schedule(rooms[0])  # flagged already: the queued task will see this post too
        time.sleep(0.5)
        assert broker.llen(queue) == 1
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
        broker.delete(queue)
        cache.delete_many([f"search-pending:{r}" for r in rooms])
