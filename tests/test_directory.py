"""The room directory: public rooms by name or description, most members first, with `joined`."""

from __future__ import annotations

from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from rooms.models import Membership, Role, Room
from rooms.selectors import room_directory
from tests.conftest import client_for


def create(user: User, name: str, description: str = "", private: bool = False) -> str:
    made = client_for(user).post(
        "/api/rooms/", {"name": name, "description": description, "is_private": private}, format="json"
    )
    assert made.status_code == 201, made.content
    return str(made.json()["id"])


def test_public_rooms_most_members_first_with_joined(make_user: Any, alice: User, bob: User, carol: User) -> None:
    small = create(alice, "small talk")
    big = create(bob, "Café society", "where the coffee is")
    create(carol, "board room", "secrets", private=True)
    for person in (alice, carol):
        assert client_for(person).post(f"/api/rooms/{big}/join").status_code == 200
    listed = client_for(carol).get("/api/rooms/directory").json()["results"]
    assert [(r["id"], r["member_count"], r["joined"]) for r in listed] == [(big, 3, True), (small, 1, False)]
    assert all(not r["is_private"] for r in listed)  # never a private room, not even one's own
    by_text = client_for(carol).get("/api/rooms/directory", {"q": "CAFE"}).json()["results"]
    assert [r["id"] for r in by_text] == [big]  # case and accents ignored
    assert [r["id"] for r in client_for(carol).get("/api/rooms/directory", {"q": "coffee"}).json()["results"]] == [big]
    assert client_for(carol).get("/api/rooms/directory", {"q": "secrets"}).json()["results"] == []
    # Leaving counts too.
    assert client_for(alice).delete(f"/api/rooms/{big}/members/{alice.pk}").status_code == 204
    assert Room.objects.get(pk=big).member_count == 2


def test_the_directory_pages_and_refuses(alice: User, anon: APIClient) -> None:
    for i in range(25):  # straight in: room creation is rate-limited per user
        room = Room.objects.create(name=f"room {i:02d}", created_by=alice)
        Membership.objects.create(room=room, user=alice, role=Role.OWNER)
    first = client_for(alice).get("/api/rooms/directory").json()
    assert len(first["results"]) == 20 and first["next"]
    rest = client_for(alice).get(first["next"]).json()
    assert len(rest["results"]) == 5 and rest["next"] is None
    assert len({r["id"] for r in first["results"] + rest["results"]}) == 25
    assert anon.get("/api/rooms/directory").status_code == 401
    too_long = client_for(alice).get("/api/rooms/directory", {"q": "x" * 101})
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid"


def plan(sql: str, params: Any, *, ordered_scans: bool = True) -> str:
    """The plan with the table scan ruled out (a table this small would be scanned anyway); without
    `ordered_scans`, only bitmap searches are left: whether the text search has an index at all."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        if not ordered_scans:
            cursor.execute("SET enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        lines = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
        cursor.execute("SET enable_indexscan = on")
    return lines


def test_the_directory_reads_indexes_not_the_table(alice: User) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'rooms_room'")
        assert "room_directory_search" in {row[0] for row in cursor.fetchall()}
    create(alice, "indexed room", "about indexes")
    # Enough public rooms that reading them all costs more than the index (the planner knows sizes).
    Room.objects.bulk_create(
        Room(name=f"filler {i}", search_key=f"filler {i}\nplain words", created_by=alice) for i in range(3000)
    )
    with connection.cursor() as cursor:
        # New entries wait in GIN's pending list (autovacuum merges them), which the planner costs high.
        cursor.execute("SELECT gin_clean_pending_list('room_directory_search')")
        cursor.execute("ANALYZE rooms_room")
    ordered = room_directory("").order_by("-member_count", "id")[:21].query.sql_with_params()
    assert "room_directory_order" in plan(*ordered)
    searched = room_directory("index").order_by("-member_count", "id")[:21].query.sql_with_params()
    searched_plan = plan(*searched, ordered_scans=False)
    assert "room_directory_search" in searched_plan, searched_plan
