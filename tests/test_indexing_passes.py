"""The worker's indexing pass over many rooms at once: the same statements for one room or fifty,
and every change indexed and every notice made exactly once, also when passes overlap."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from messaging import store
from messaging.rendering import render_body
from notifications.models import Notification
from rooms.models import NotifyLevel, Room
from search import indexing
from search.models import SearchCursor, SearchEntry
from tests.test_websocket import make_room


def stored_post(room: Room, author: User, body: str, bob: User) -> str:
    """A post as the store keeps it, with no indexing run (as when the worker has yet to come)."""
    rendered = render_body(body, lambda names: {"bob": bob.pk} if "bob" in names else {})
    message, _, _ = store.insert_message(
        room_id=room.pk, author_id=author.pk, body=body, rendered=rendered, now=timezone.now()
    )
    return message.id


def rooms_with_posts(alice: User, bob: User, count: int, posts: int = 2) -> list[Room]:
    rooms = [make_room(alice, bob) for _ in range(count)]
    for room in rooms:
        for n in range(posts):
            stored_post(room, alice, f"note {n} of room {room.pk} for @bob", bob)
    return rooms


def statements_to_index(rooms: list[Room]) -> int:
    indexing.catch_up_rooms([r.pk for r in rooms])  # cursors made: what a room's first pass adds
    for room in rooms:
        stored_post(room, room.created_by, "one more", room.created_by)
    with CaptureQueriesContext(connection) as queries:
        assert indexing.catch_up_rooms([r.pk for r in rooms]) == len(rooms)
    return len(queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_pass_over_fifty_rooms_costs_the_statements_of_one(alice: User, bob: User) -> None:
    one = statements_to_index(rooms_with_posts(alice, bob, 1))
    fifty = statements_to_index(rooms_with_posts(alice, bob, 50))
    assert fifty == one, (one, fifty)
    assert one <= 12


@pytest.mark.django_db(transaction=True)
def test_every_room_is_indexed_with_its_notices_once(alice: User, bob: User) -> None:
    rooms = rooms_with_posts(alice, bob, 60, posts=3)  # more than one pass's ROOMS_A_PASS
    gone = Room.objects.create(name="gone", created_by=alice)
    gone_id = gone.pk
    gone.delete()
    assert indexing.catch_up_rooms([r.pk for r in rooms] + [gone_id]) == 180
    assert SearchEntry.objects.filter(room__in=rooms).count() == 180
    assert not SearchCursor.objects.filter(room_id=gone_id).exists()
    for room in rooms:
        assert SearchCursor.objects.get(room=room).version == store.head_version(room.pk)
    mentions = Notification.objects.filter(user=bob, type="mention")
    assert mentions.count() == 180
    assert indexing.catch_up_rooms([r.pk for r in rooms]) == 0
    assert mentions.count() == 180


@pytest.mark.django_db(transaction=True)
def test_members_who_want_every_post_get_it_in_each_room_of_a_pass(alice: User, bob: User, carol: User) -> None:
    loud, quiet = make_room(alice, bob, carol), make_room(alice, bob, carol)
    loud.memberships.filter(user=carol).update(notify=NotifyLevel.ALL)
    quiet.memberships.filter(user=carol).update(muted=True, notify=NotifyLevel.ALL)
    for room in (loud, quiet):
        stored_post(room, alice, "plain words", bob)
    indexing.catch_up_rooms([loud.pk, quiet.pk])
    told = Notification.objects.filter(type="message")
    assert sorted(told.values_list("user__username", "room_id")) == [("carol", loud.pk)]


@pytest.mark.django_db(transaction=True)
def test_overlapping_passes_in_two_threads_index_each_change_once(alice: User, bob: User) -> None:
    rooms = rooms_with_posts(alice, bob, 30, posts=4)
    ids = [r.pk for r in rooms]
    results: list[int] = []
    errors: list[BaseException] = []

    def work(order: list[int]) -> None:
        try:
            results.append(indexing.catch_up_rooms(order))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(list(reversed(ids)),)), threading.Thread(target=work, args=(ids,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(results) == 120  # each change applied by one of the two, none by both
    assert SearchEntry.objects.filter(room__in=rooms).count() == 120
    assert Notification.objects.filter(user=bob, type="mention").count() == 120
