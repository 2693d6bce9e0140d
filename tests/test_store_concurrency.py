"""seq and version under concurrent writers in several processes, and a reader that must never skip."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from messaging import store
from messaging.rendering import RenderedBody

PLAIN = RenderedBody(html="", has_link=False, mentioned_user_ids=[], mentions_room=False)

ROOT = Path(__file__).resolve().parent.parent


class NoSkipReader(threading.Thread):
    """Resumes like a client: asks for versions above the last one it saw, in bounded windows."""

    def __init__(self, room_id: int) -> None:
        super().__init__(daemon=True)
        self.room_id = room_id
        self.seen: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = 0
        while not self.stop.is_set():
            head = store.room_heads([self.room_id]).get(self.room_id)
            if head is not None and head.version > last:
                for message in store.messages_by_version(self.room_id, last, min(head.version, last + 200)):
                    self.seen.append(message.version)
                    last = message.version
            else:
                time.sleep(0.002)


def _assert_dense_and_ordered(room_id: int, expected: int) -> list[store.StoredMessage]:
    messages = store.messages_by_seq(room_id, 1, expected + 10)
    assert [m.seq for m in messages] == list(range(1, expected + 1))
    versions = [m.version for m in messages]
    assert versions == list(range(1, expected + 1))  # posts only: version follows seq exactly
    assert len({m.body for m in messages}) == expected
    return messages


def test_many_threads_post_without_duplicates_or_reordering() -> None:
    room_id = 424242
    reader = NoSkipReader(room_id)
    reader.start()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda i: store.insert_message(
                    rendered=PLAIN, room_id=room_id, author_id=1 + i % 4, body=f"t{i}", now=timezone.now()
                ),
                range(200),
            )
        )
    time.sleep(0.2)
    reader.stop.set()
    reader.join()
    _assert_dense_and_ordered(room_id, 200)
    assert reader.seen == list(range(1, 201))


@pytest.mark.slow
def test_several_processes_post_concurrently_and_reader_never_skips(tmp_path: Path) -> None:
    room_id = 777
    reader = NoSkipReader(room_id)
    reader.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "post_burst.py"),
                settings.MONGODB_URL,
                settings.MONGODB_NAME,
                str(room_id),
                str(author),
                "25",
                "4",
            ],
            env=env,
            cwd=ROOT,
        )
        for author in (11, 12, 13)
    ]
    for proc in processes:
        assert proc.wait(timeout=180) == 0
    time.sleep(0.3)
    reader.stop.set()
    reader.join()
    _assert_dense_and_ordered(room_id, 300)
    assert reader.seen == list(range(1, 301))


def test_concurrent_resends_of_one_client_id_store_one_message() -> None:
    room_id = 31337

    def send(_: Any) -> tuple[str, bool]:
        message, created, _parent = store.insert_message(
            rendered=PLAIN, room_id=room_id, author_id=5, body="once", now=timezone.now(), client_id="dup"
        )
        return message.id, created

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(16)))
    assert len({message_id for message_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(store.messages_by_seq(room_id, 1, 100)) == 1


def test_edits_and_reactions_interleaved_with_posts_keep_versions_unique() -> None:
    room_id = 9001
    first, _, _ = store.insert_message(rendered=PLAIN, room_id=room_id, author_id=1, body="base", now=timezone.now())

    def work(i: int) -> None:
        if i % 3 == 0:
            store.edit_message(
                rendered=PLAIN, room_id=room_id, message_id=first.id, body=f"edit {i}", now=timezone.now()
            )
        elif i % 3 == 1:
            store.set_reaction(
                room_id=room_id, message_id=first.id, emoji=f"e{i}", user_id=i, present=True, max_distinct=50
            )
        else:
            store.insert_message(rendered=PLAIN, room_id=room_id, author_id=2, body=f"p{i}", now=timezone.now())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(60)))
    head = store.room_heads([room_id])[room_id]
    assert head.last_seq == 1 + 20
    assert head.version == 1 + 60
    changed = store.messages_by_version(room_id, 0, head.version)
    versions = [m.version for m in changed]
    assert versions == sorted(set(versions))
    assert changed[-1].version == head.version
    assert len(store.revisions_of(first.id)) == 20


def test_hot_queries_use_indexes_not_collection_scans() -> None:
    store.insert_message(rendered=PLAIN, room_id=1, author_id=1, body="seed", now=timezone.now(), client_id="x")
    plans = store.query_plans()
    assert set(plans) >= {"history", "changes", "idempotency", "thread", "by_id", "edits", "unread", "heads"}
    for name, stages in plans.items():
        assert ("COLLSCAN" not in stages and "SCAN" in stages) or "IDHACK" in stages, (name, stages)
