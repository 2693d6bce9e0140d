"""Search through the HTTP API: matching rules, operators, paging, privacy, bad input.

Tasks run inline here (conftest), so the index is current when a post returns; the path
through a real broker and worker is tests/test_search_worker.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from search.models import SearchEntry
from tests.conftest import client_for
from tests.test_messages import post
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(alice: User, bob: User) -> dict[str, Any]:
    created = create_room(alice, "general")
    client_for(bob).post(f"/api/rooms/{created['id']}/join")
    return created


def search(user: User, q: str, room_id: str | None = None, **params: Any) -> Any:
    url = f"/api/messages/{room_id}" if room_id else "/api/search"
    return client_for(user).get(url, {"q": q, **params})


def bodies(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [m["body"] for m in response.json()["results"]]


def test_ignores_case_and_accents_and_finds_parts_of_words(alice: User, room: dict[str, Any]) -> None:
    post(alice, room["id"], "Le CAFÉ est fermé")
    post(alice, room["id"], "call getUserById(42) then open https://example.com/path/to?x=1")
    post(alice, room["id"], "Die Straße ist lang")
    post(alice, room["id"], "nothing relevant")
    assert bodies(search(alice, "cafe")) == ["Le CAFÉ est fermé"]
    assert bodies(search(alice, "FERME")) == ["Le CAFÉ est fermé"]
    assert bodies(search(alice, "getUser")) == ["call getUserById(42) then open https://example.com/path/to?x=1"]
    assert len(bodies(search(alice, "tuserby"))) == 1  # the middle of a word
    assert len(bodies(search(alice, "example.com/path"))) == 1
    assert len(bodies(search(alice, "https://EXAMPLE.com"))) == 1  # not an operator: literal text
    assert bodies(search(alice, "strasse")) == ["Die Straße ist lang"]
    assert bodies(search(alice, "zebra")) == []


def test_highlights_point_into_the_original_body(alice: User, room: dict[str, Any]) -> None:
    post(alice, room["id"], "Ärger mit der Straße, viel ärger")
    result = search(alice, "arger strasse").json()["results"][0]
    body = result["body"]
    assert [body[s:e] for s, e in result["highlights"]] == ["Ärger", "Straße", "ärger"]


def test_phrases_and_exclusions(alice: User, room: dict[str, Any]) -> None:
    post(alice, room["id"], "the quick brown fox")
    post(alice, room["id"], "brown and quick")
    post(alice, room["id"], "quick silver")
    assert bodies(search(alice, '"quick brown"')) == ["the quick brown fox"]
    assert sorted(bodies(search(alice, "quick brown"))) == ["brown and quick", "the quick brown fox"]
    assert bodies(search(alice, "quick -brown")) == ["quick silver"]
    assert bodies(search(alice, 'quick -"quick brown" -silver')) == ["brown and quick"]


def test_operators(alice: User, bob: User, make_user: Any, room: dict[str, Any]) -> None:
    other = create_room(alice, "random")
    post(alice, room["id"], "deploy done")
    post(bob, room["id"], "deploy failed, see https://ci.example.org/1")
    post(alice, other["id"], "deploy tomorrow")
    parent = post(bob, room["id"], "deploy question").json()
    post(alice, room["id"], "answer", parent_id=parent["id"])

    assert sorted(bodies(search(alice, "deploy from:BOB"))) == [
        "deploy failed, see https://ci.example.org/1",
        "deploy question",
    ]
    assert sorted(bodies(search(alice, "deploy from:me"))) == ["deploy done", "deploy tomorrow"]
    assert bodies(search(alice, "deploy from:nobody")) == []
    assert bodies(search(alice, "deploy in:Random")) == ["deploy tomorrow"]
    assert bodies(search(alice, "has:link")) == ["deploy failed, see https://ci.example.org/1"]
    assert sorted(bodies(search(alice, "is:thread"))) == ["answer", "deploy question"]
    assert bodies(search(alice, "has:file")) == []
    today = timezone.now().date()
    assert len(bodies(search(alice, f"deploy before:{today + timedelta(days=1)}"))) == 4
    assert bodies(search(alice, f"deploy before:{today}")) == []
    assert len(bodies(search(alice, f"deploy after:{today - timedelta(days=1)}"))) == 4
    assert bodies(search(alice, f"deploy after:{today}")) == []
    # Operators alone are a query; in a room's search only that room counts.
    assert sorted(bodies(search(alice, "from:me", room["id"]))) == ["answer", "deploy done"]


def test_global_search_never_shows_rooms_the_caller_is_not_in(
    alice: User, bob: User, carol: User, room: dict[str, Any]
) -> None:
    secret = create_room(carol, "secret", is_private=True)
    public_other = create_room(carol, "elsewhere")
    post(carol, secret["id"], "password is hunter2")
    post(carol, public_other["id"], "hunter2 in public")
    post(alice, room["id"], "hunter2 shared")
    assert bodies(search(bob, "hunter2")) == ["hunter2 shared"]
    assert bodies(search(bob, "hunter2 in:secret")) == []
    assert search(bob, "hunter2", secret["id"]).status_code == 404
    assert search(bob, "hunter2", public_other["id"]).status_code == 403
    # Leaving a room takes its messages out of one's results at once.
    client_for(bob).delete(f"/api/rooms/{room['id']}/members/{bob.pk}")
    assert bodies(search(bob, "hunter2")) == []


def test_index_follows_edits_and_deletions(alice: User, room: dict[str, Any]) -> None:
    message = post(alice, room["id"], "original wording").json()
    client_for(alice).put(f"/api/messages/{message['id']}", {"body": "revised text"}, format="json")
    assert bodies(search(alice, "original")) == []
    assert bodies(search(alice, "revised")) == ["revised text"]
    client_for(alice).delete(f"/api/messages/{message['id']}")
    assert bodies(search(alice, "revised")) == []
    assert not SearchEntry.objects.filter(message_id=message["id"]).exists()


def test_newest_first_with_a_cursor(alice: User, room: dict[str, Any]) -> None:
    for i in range(5):
        post(alice, room["id"], f"needle {i}")
    first = search(alice, "needle", limit=2).json()
    assert [m["body"] for m in first["results"]] == ["needle 4", "needle 3"]
    seen = [m["body"] for m in first["results"]]
    page = first
    while page["next"]:
        page = client_for(alice).get(page["next"]).json()
        seen += [m["body"] for m in page["results"]]
    assert seen == [f"needle {i}" for i in range(4, -1, -1)]
    assert search(alice, "needle", cursor="not-a-cursor").status_code == 400


def test_metacharacters_are_literal(alice: User, room: dict[str, Any]) -> None:
    post(alice, room["id"], "100% sure")
    post(alice, room["id"], "snake_case and a.*b")
    post(alice, room["id"], "1000 plain")
    assert bodies(search(alice, "0%")) == ["100% sure"]
    assert bodies(search(alice, "e_c")) == ["snake_case and a.*b"]
    assert bodies(search(alice, ".*")) == ["snake_case and a.*b"]
    assert bodies(search(alice, "(")) == []
    assert bodies(search(alice, "key:value")) == []  # an unknown operator is literal text


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("", "empty_query"),
        ("   ", "empty_query"),
        ("x" * 10_000, "query_too_long"),
        ('"unclosed phrase', "invalid_query"),
        ("before:2024-13-45", "invalid_date"),
        ("after:yesterday", "invalid_date"),
        ("has:pictures", "invalid_query"),
        ("is:pinned", "invalid_query"),
        ("from:", "invalid_query"),
        ("-from:bob", "invalid_query"),
        (" ".join(f"w{i}" for i in range(20)), "query_too_long"),
    ],
)
def test_bad_queries_are_clear_400s(alice: User, room: dict[str, Any], q: str, code: str) -> None:
    for room_id in (None, room["id"]):
        response = search(alice, q, room_id)
        assert response.status_code == 400, response.content
        assert response.json()["code"] == code


def test_search_needs_authentication(anon: Any) -> None:
    assert anon.get("/api/search", {"q": "x"}).status_code == 401


def test_hot_queries_use_the_trigram_index(alice: User, room: dict[str, Any]) -> None:
    """With the planner unable to scan, a substring query still has a plan: the GIN index."""
    post(alice, room["id"], "indexed words")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT message_id FROM messaging_searchentry WHERE text LIKE '%ndexe%'")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "search_text_trgm" in plan


def test_sweep_indexes_changes_whose_task_was_lost(alice: User, bob: User, room: dict[str, Any]) -> None:
    """A change stored without its task running (broker down) is found by the periodic sweep."""
    from messaging import store
    from messaging.rendering import render_body
    from notifications.models import Notification
    from search import indexing

    body = "orphaned change for @bob"
    store.insert_message(
        room_id=int(room["id"]),
        author_id=alice.pk,
        body=body,
        rendered=render_body(body, lambda names: {"bob": bob.pk} if "bob" in names else {}),
        now=timezone.now(),
    )
    assert bodies(search(alice, "orphaned")) == []
    assert indexing.catch_up_all() == 1
    assert bodies(search(alice, "orphaned")) == [body]
    assert Notification.objects.filter(user=bob, type="mention").count() == 1
    # Running again finds nothing new and tells nobody twice.
    assert indexing.catch_up_all() == 0
    assert indexing.catch_up_room(int(room["id"])) == 0
    assert Notification.objects.filter(user=bob, type="mention").count() == 1
