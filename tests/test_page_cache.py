"""The per-process page cache: pages read twice come from it, and are always what MongoDB holds.

The oracle is the same request with the copy turned off (PAGE_CACHE_MESSAGES=0). Writers never
notify the copy (it follows the room's versions), so changes made through the API here stand for
changes made by any other process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from django.conf import settings
from django.test import override_settings

from accounts.models import User
from messaging import page_cache, store
from tests.conftest import client_for
from tests.test_messages import post
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def mongo_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Every page range that reached MongoDB (the real read still runs)."""
    seen: list[tuple[int, int]] = []
    real = store.messages_by_seq

    def counting(room_id: int, first: int, last: int) -> list[store.StoredMessage]:
        seen.append((first, last))
        return real(room_id, first, last)

    monkeypatch.setattr(store, "messages_by_seq", counting)
    yield seen


def page(user: User, room_id: str, query: str = "") -> list[dict[str, Any]]:
    response = client_for(user).get(f"/api/messages/{room_id}{query}")
    assert response.status_code == 200, response.content
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def uncached_page(user: User, room_id: str, query: str = "") -> list[dict[str, Any]]:
    with override_settings(PAGE_CACHE_MESSAGES=0):
        return page(user, room_id, query)


def filled_room(user: User, count: int) -> str:
    room_id = str(create_room(user)["id"])
    for n in range(count):
        assert post(user, room_id, f"message {n + 1}").status_code == 201
    return room_id


def test_pages_read_twice_come_from_the_copy(alice: User, mongo_reads: list[tuple[int, int]]) -> None:
    room_id = filled_room(alice, 30)
    newest = page(alice, room_id, "?limit=10")
    deep = page(alice, room_id, "?before=11&limit=10")
    assert [m["seq"] for m in newest] == list(range(21, 31))
    assert [m["seq"] for m in deep] == list(range(1, 11))
    assert mongo_reads == [(21, 30), (1, 10)]
    assert page(alice, room_id, "?limit=10") == newest
    assert page(alice, room_id, "?before=11&limit=10") == deep
    assert mongo_reads == [(21, 30), (1, 10)]


def test_every_kind_of_change_reaches_cached_pages(alice: User, bob: User, mongo_reads: list[tuple[int, int]]) -> None:
    room_id = filled_room(alice, 30)
    client_for(bob).post(f"/api/rooms/{room_id}/join")
    first_page, last_page = page(alice, room_id, "?before=11&limit=10"), page(alice, room_id, "?limit=10")
    ids = {m["seq"]: m["id"] for m in first_page + last_page}
    reads_before = len(mongo_reads)

    alice_client, bob_client = client_for(alice), client_for(bob)
    assert alice_client.put(f"/api/messages/{ids[3]}", {"body": "edited *now*"}, format="json").status_code == 200
    assert bob_client.post(f"/api/messages/{ids[25]}/react", {"emoji": "👍"}, format="json").status_code == 200
    assert alice_client.delete(f"/api/messages/{ids[28]}").status_code in (200, 204)
    assert post(bob, room_id, "a reply", parent_id=ids[5]).status_code == 201
    assert post(bob, room_id, "the newest").status_code == 201

    deep = page(alice, room_id, "?before=11&limit=10")
    newest = page(alice, room_id, "?limit=10")
    assert deep == uncached_page(alice, room_id, "?before=11&limit=10")
    assert newest == uncached_page(alice, room_id, "?limit=10")
    by_seq = {m["seq"]: m for m in deep + newest}
    assert by_seq[3]["body"] == "edited *now*" and by_seq[3]["edited_at"] is not None
    assert by_seq[5]["reply_count"] == 1
    assert by_seq[25]["reactions"][0]["emoji"] == "👍"
    assert by_seq[28]["deleted"] is True
    assert [m["body"] for m in newest[-2:]] == ["a reply", "the newest"]
    # The changes were applied to the copy: neither page was read again from MongoDB
    # (the two uncached reads are the oracle's).
    assert len(mongo_reads) == reads_before + 2


def test_far_behind_copy_is_read_again(
    alice: User, monkeypatch: pytest.MonkeyPatch, mongo_reads: list[tuple[int, int]]
) -> None:
    monkeypatch.setattr(page_cache, "MAX_CHANGES_TO_APPLY", 3)
    room_id = filled_room(alice, 12)
    deep = page(alice, room_id, "?before=6&limit=5")
    messages = {m["seq"]: m["id"] for m in deep}
    for seq in (1, 2, 3, 4):
        client_for(alice).put(f"/api/messages/{messages[seq]}", {"body": f"edit {seq}"}, format="json")
    reads_before = len(mongo_reads)
    again = page(alice, room_id, "?before=6&limit=5")
    assert [m["body"] for m in again] == ["edit 1", "edit 2", "edit 3", "edit 4", "message 5"]
    assert len(mongo_reads) == reads_before + 1


def test_copy_is_bounded_and_evicts_least_recently_used_rooms(
    alice: User, settings: Any, mongo_reads: list[tuple[int, int]]
) -> None:
    settings.PAGE_CACHE_MESSAGES = 15
    room_a, room_b = filled_room(alice, 10), filled_room(alice, 10)
    page(alice, room_a, "?limit=10")
    page(alice, room_b, "?limit=10")  # 20 held > 15: room A, used least recently, is dropped
    assert len(mongo_reads) == 2
    page(alice, room_b, "?limit=10")
    assert len(mongo_reads) == 2
    assert [m["body"] for m in page(alice, room_a, "?limit=10")][-1] == "message 10"
    assert len(mongo_reads) == 3


def test_a_replaced_database_is_noticed_by_its_versions(alice: User, mongo_reads: list[tuple[int, int]]) -> None:
    room_id = filled_room(alice, 5)
    assert len(page(alice, room_id)) == 5
    # Another process wipes the room behind this one's back; its versions start again from 0.
    db = pymongo.MongoClient(settings.MONGODB_URL)[settings.MONGODB_NAME]
    db["messages"].delete_many({"room_id": int(room_id)})
    db["room_counters"].delete_many({"_id": int(room_id)})
    post(alice, room_id, "after the wipe")
    assert [m["body"] for m in page(alice, room_id)] == ["after the wipe"]


def test_readers_racing_writers_end_exact(alice: User) -> None:
    room_id = filled_room(alice, 40)
    ids = [m["id"] for m in page(alice, room_id, "?limit=40")]
    rid = int(room_id)
    stop = threading.Event()
    errors: list[Exception] = []

    def read_pages() -> None:
        try:
            while not stop.is_set():
                for first in (1, 11, 21, 31):
                    head = store.room_heads([rid]).get(rid) if first == 31 else None
                    page_cache.page_cache.messages(rid, first, first + 9, head=head)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read_pages) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for n, message_id in enumerate(ids):
            client_for(alice).put(f"/api/messages/{message_id}", {"body": f"edit {n}"}, format="json")
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert page(alice, room_id, "?limit=40") == uncached_page(alice, room_id, "?limit=40")
    assert [m["body"] for m in page(alice, room_id, "?limit=40")] == [f"edit {n}" for n in range(40)]


def test_old_pages_stay_cached_in_a_room_with_a_long_history(
    alice: User, monkeypatch: pytest.MonkeyPatch, mongo_reads: list[tuple[int, int]]
) -> None:
    # The oldest documents carry versions far below the room's: the copy must still be exact at
    # the room's version, not theirs, or it would be thrown away as far behind on every read.
    monkeypatch.setattr(page_cache, "MAX_CHANGES_TO_APPLY", 3)
    room_a, room_b = filled_room(alice, 12), filled_room(alice, 12)
    for _ in range(2):
        page(alice, room_a, "?before=4&limit=3")  # a room's first read is an old page
    page(alice, room_b, "?limit=3")
    for _ in range(2):
        page(alice, room_b, "?before=4&limit=3")  # an old page of a room already copied
    assert mongo_reads == [(1, 3), (10, 12), (1, 3)]


def test_a_message_changed_again_after_the_head_was_read_is_not_served_stale(alice: User) -> None:
    room_id = filled_room(alice, 3)
    rid = int(room_id)
    message_id = page(alice, room_id)[0]["id"]
    page_cache.page_cache.messages(rid, 1, 3, head=store.room_heads([rid])[rid])  # the copy, exact now
    client = client_for(alice)
    client.put(f"/api/messages/{message_id}", {"body": "first edit"}, format="json")
    head_between = store.room_heads([rid])[rid]  # a reader reads the head here...
    client.put(f"/api/messages/{message_id}", {"body": "second edit"}, format="json")
    # ...and brings its copy up to that head only now, after the second edit.
    served = page_cache.page_cache.messages(rid, 1, 3, head=head_between)
    assert served[0].body == "second edit"
