"""Group commit (messaging.store.group_commit): concurrent changes share one transaction, and keep
every guarantee of one transaction each: dense `seq`/`version` in order, `client_id` idempotency,
no answer before the batch is durable, each change failing alone, a killed process leaving
whole batches or nothing, two batching processes in one room."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from django.conf import settings
from django.utils import timezone
from pymongo import monitoring
from pymongo.errors import PyMongoError

from messaging import store
from messaging.rendering import RenderedBody
from messaging.store import connection
from messaging.store.transactions import Batch

PLAIN = RenderedBody(html="", has_link=False, mentioned_user_ids=[], mentions_room=False)
ROOT = Path(__file__).resolve().parent.parent


class Commits(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "commitTransaction":
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def commits() -> Iterator[Commits]:
    """Counts the commits of a fresh client (listeners are taken when a client is created)."""
    listener = Commits()
    monitoring.register(listener)
    store.close()
    try:
        yield listener
    finally:
        monitoring._LISTENERS.command_listeners.remove(listener)
        store.close()


class HeldFlush:
    """Once armed, the next batch waits before it writes, so every change submitted meanwhile
    queues behind it and the batch after holds them all."""

    def __init__(self) -> None:
        self.armed = False
        self.release = threading.Event()


@pytest.fixture
def held_flush(monkeypatch: pytest.MonkeyPatch) -> HeldFlush:
    hold = HeldFlush()
    original = Batch.flush

    def flush(self: Batch) -> None:
        if hold.armed:
            hold.armed = False
            hold.release.wait(10)
        original(self)

    monkeypatch.setattr(Batch, "flush", flush)
    return hold


def post(room_id: int, author_id: int, body: str, **extra: Any) -> tuple[store.StoredMessage, bool, Any]:
    return store.insert_message(
        room_id=room_id, author_id=author_id, body=body, rendered=PLAIN, now=timezone.now(), **extra
    )


def queue_behind_first(changes: list[Any], hold: HeldFlush) -> list[Any]:
    """Runs changes[0] first, the rest while it is held; returns each one's result or exception."""
    results: list[Any] = [None] * len(changes)

    def run(i: int) -> None:
        try:
            results[i] = changes[i]()
        except Exception as exc:  # noqa: BLE001 - the outcome is what is checked
            results[i] = exc

    hold.armed = True
    first = threading.Thread(target=run, args=(0,))
    first.start()
    time.sleep(0.2)  # the first batch is now held in its flush
    rest = [threading.Thread(target=run, args=(i,)) for i in range(1, len(changes))]
    for thread in rest:
        thread.start()
    time.sleep(0.3)  # every other change is waiting for the next batch
    assert all(result is None for result in results), "nothing may be answered before its batch commits"
    hold.release.set()
    for thread in [first, *rest]:
        thread.join(30)
    return results


def test_concurrent_posts_share_transactions_and_stay_dense(commits: Commits) -> None:
    rooms = (5101, 5102, 5103)
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda n: post(rooms[n % 3], 40 + n % 5, f"p{n}", client_id=f"c{n}"), range(240)))
    assert all(created for _, created, _ in results)
    assert len({m.id for m, _, _ in results}) == 240
    for room_id in rooms:
        stored = store.messages_by_seq(room_id, 1, 500)
        assert [m.seq for m in stored] == list(range(1, 81))
        assert [m.version for m in stored] == list(range(1, 81))
        assert store.room_heads([room_id])[room_id].last_seq == 80
        stamps = [m.stamp for m in stored]
        assert stamps == sorted(stamps)
    # Fewer transactions than posts: the batches held several changes each.
    assert commits.count < 200, commits.count


def test_a_bad_change_in_a_batch_fails_alone(held_flush: HeldFlush) -> None:
    room_id = 5201
    parent, _, _ = post(room_id, 1, "the parent")
    earlier, _, _ = post(room_id, 2, "sent before, its ack lost", client_id="retry-me")
    missing_parent = str(ObjectId())
    results = queue_behind_first(
        [
            lambda: post(room_id, 3, "holds the first batch"),
            lambda: post(room_id, 3, "good one"),
            lambda: post(room_id, 4, "reply to nothing", parent_id=missing_parent),
            lambda: post(room_id, 2, "the retry", client_id="retry-me"),  # only the unique index knows
            lambda: post(room_id, 5, "a reply", parent_id=parent.id),
            lambda: post(room_id, 6, "same client id twice", client_id="twice"),
            lambda: post(room_id, 6, "same client id twice", client_id="twice"),
            lambda: store.edit_message(
                room_id=room_id, message_id=str(ObjectId()), body="x", rendered=PLAIN, now=timezone.now()
            ),
            lambda: store.set_reaction(
                room_id=room_id, message_id=parent.id, emoji="👍", user_id=9, present=True, max_distinct=20
            ),
            lambda: post(room_id, 3, "another good one"),
        ],
        held_flush,
    )
    assert isinstance(results[2], store.ParentInvalid)
    assert isinstance(results[7], store.MessageGone)
    retry, created, _ = results[3]
    assert (retry.id, created) == (earlier.id, False)
    twins = [results[5], results[6]]
    assert {m.id for m, _, _ in twins} == {twins[0][0].id} and sorted(c for _, c, _ in twins) == [False, True]
    reply, _, updated_parent = results[4]
    assert updated_parent.reply_count == 1 and reply.parent_id == parent.id
    assert results[8].reactions[0].user_ids == [9]
    stored = store.messages_by_seq(room_id, 1, 100)
    bodies = [m.body for m in stored]
    assert [m.seq for m in stored] == list(range(1, 8))
    assert sorted(bodies[2:]) == sorted(
        ["holds the first batch", "good one", "a reply", "same client id twice", "another good one"]
    )
    # 7 posts, the reply's change to its parent, the reaction: 9 versions, each message at its latest.
    versions = [m.version for m in store.messages_by_version(room_id, 0, 100)]
    assert len(set(versions)) == len(versions) == 7 and max(versions) == 9
    assert store.room_heads([room_id])[room_id].version == 9


def test_edits_reactions_and_deletes_in_one_batch_apply_in_order(held_flush: HeldFlush) -> None:
    room_id = 5301
    target, _, _ = post(room_id, 1, "first words")
    other, _, _ = post(room_id, 1, "will go")
    store.edit_message(room_id=room_id, message_id=other.id, body="edited once", rendered=PLAIN, now=timezone.now())
    now = timezone.now
    results = queue_behind_first(
        [
            lambda: post(room_id, 2, "holds the batch"),
            lambda: store.edit_message(
                room_id=room_id, message_id=target.id, body="second words", rendered=PLAIN, now=now()
            ),
            lambda: store.set_reaction(
                room_id=room_id, message_id=target.id, emoji="🎉", user_id=3, present=True, max_distinct=1
            ),
            lambda: store.set_reaction(
                room_id=room_id, message_id=target.id, emoji="👀", user_id=4, present=True, max_distinct=1
            ),
            lambda: store.delete_message(room_id=room_id, message_id=other.id, now=now()),
            lambda: store.edit_message(
                room_id=room_id, message_id=other.id, body="too late", rendered=PLAIN, now=now()
            ),
        ],
        held_flush,
    )
    assert isinstance(results[3], store.TooManyReactions)  # the limit counts the reaction before it in the batch
    assert isinstance(results[5], store.MessageGone)  # deleted earlier in the same batch
    final = store.get_message(target.id)
    assert final is not None and final.body == "second words"
    assert [(r.emoji, r.user_ids) for r in final.reactions] == [("🎉", [3])]
    assert [r.body for r in store.revisions_of(target.id)] == ["first words"]
    gone = store.get_message(other.id)
    assert gone is not None and gone.deleted and store.revisions_of(other.id) == []
    versions = [m.version for m in store.messages_by_version(room_id, 0, 100)]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert store.room_heads([room_id])[room_id].version == 7  # 3 posts + the first edit + edit, reaction, delete


def test_two_processes_batching_into_one_room_keep_it_dense() -> None:
    room_id = 5401
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        str(ROOT / "tests" / "post_burst.py"),
        settings.MONGODB_URL,
        settings.MONGODB_NAME,
        str(room_id),
    ]
    processes = [
        subprocess.Popen([*command, str(author), "10", "16"], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for author in (21, 22)
    ]
    outputs = [proc.communicate(timeout=180)[0] for proc in processes]
    assert [proc.returncode for proc in processes] == [0, 0]
    stored = store.messages_by_seq(room_id, 1, 1000)
    assert [m.seq for m in stored] == list(range(1, 321))
    assert [m.version for m in stored] == list(range(1, 321))
    assert len({(m.author_id, m.client_id) for m in stored}) == 320
    for output in outputs:  # each process really batched: fewer commits than its 160 posts
        batches = int(output.split("batches=")[1].split()[0])
        assert batches < 160, output


def test_a_process_killed_mid_batch_leaves_every_acked_post_once_and_no_hole(tmp_path: Path) -> None:
    room_id = 5501
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "post_burst.py"),
            settings.MONGODB_URL,
            settings.MONGODB_NAME,
            str(room_id),
            "31",
            "1000",
            "12",
            "--acks",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked: dict[str, int] = {}
    for line in proc.stdout:
        if line.startswith("ack "):
            _, client_id, seq = line.split()
            acked[client_id] = int(seq)
        if len(acked) >= 150:
            break
    proc.send_signal(signal.SIGKILL)  # batches run back to back: one is in flight now
    proc.wait(10)
    stored = store.messages_by_seq(room_id, 1, 100_000)
    by_client = {m.client_id: m.seq for m in stored}
    assert [m.seq for m in stored] == list(range(1, len(stored) + 1))
    assert len(by_client) == len(stored)
    for client_id, seq in acked.items():
        assert by_client[client_id] == seq
    # Every post the process had started (acked or not) sent again: each is stored exactly once.
    # The killed process's open transaction holds the room's counter until the server drops it
    # (on the disconnect, or after its 60 s transaction lifetime): a resend refused meanwhile is
    # sent again, as a client does after a 503.
    tried = {f"{t}-{i}" for t in range(12) for i in range(max(int(c.split("-")[1]) for c in acked) + 2)}

    def resend(cid: str) -> None:
        deadline = time.monotonic() + 75
        while True:
            try:
                post(room_id, 31, f"31-{cid}", client_id=cid)
                return
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(resend, sorted(tried)))
    after = store.messages_by_seq(room_id, 1, 100_000)
    assert [m.seq for m in after] == list(range(1, len(after) + 1))
    assert len({m.client_id for m in after}) == len(after) >= len(tried)
    assert connection.messages().count_documents({"room_id": room_id}) == len(after)


def test_a_batch_announces_after_its_commit_in_version_order(held_flush: HeldFlush) -> None:
    """after_commit runs once the batch is durable, in the order of its versions, and one that
    fails is logged without failing its writer or the announcements after it."""
    room_id = 5701
    reader = connection.db().client  # the same server: a committed post is visible to any reader
    heard: list[tuple[int, bool]] = []

    def heard_of(outcome: Any) -> None:
        stored, _, _ = outcome
        durable = reader[settings.MONGODB_NAME].messages.count_documents({"_id": ObjectId(stored.id)}) == 1
        heard.append((stored.version, durable))
        if stored.body == "p3":
            raise RuntimeError("an announcement that breaks")

    changes = [lambda n=n: post(room_id, 1, f"p{n}", after_commit=heard_of) for n in range(10)]
    results = queue_behind_first(changes, held_flush)
    assert all(not isinstance(r, Exception) for r in results), results
    assert [version for version, _ in heard] == list(range(1, 11))
    assert all(durable for _, durable in heard)
    assert sorted(r[0].version for r in results) == list(range(1, 11))


def test_announcements_of_concurrent_posts_come_in_version_order() -> None:
    """Many threads posting into one room: what after_commit hears is every version once, ascending
    (without group commit's ordering, batch-mates announced in whatever order their threads ran)."""
    room_id = 5702
    heard: list[int] = []
    lock = threading.Lock()

    def heard_of(outcome: Any) -> None:
        with lock:
            heard.append(outcome[0].version)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: post(room_id, 1 + n % 4, f"c{n}", after_commit=heard_of), range(200)))
    assert heard == list(range(1, 201))
