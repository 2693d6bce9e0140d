from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from messaging import store
from tests.conftest import client_for
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(alice: User, bob: User) -> dict[str, Any]:
    created = create_room(alice)
    client_for(bob).post(f"/api/rooms/{created['id']}/join")
    return created


def post(user: User, room_id: str, body: Any = "hello", **extra: Any) -> Any:
    return client_for(user).post(f"/api/messages/{room_id}", {"body": body, **extra}, format="json")


def test_post_returns_message_in_contract_shape(alice: User, room: dict[str, Any]) -> None:
    response = post(alice, room["id"], "hello world", client_id="c-1")
    assert response.status_code == 201
    message = response.json()
    assert set(message) >= {
        "id",
        "room_id",
        "seq",
        "version",
        "author",
        "body",
        "created_at",
        "edited_at",
        "deleted",
        "parent_id",
        "reply_count",
        "reactions",
        "attachments",
        "client_id",
    }
    assert message["room_id"] == room["id"]
    assert message["seq"] == 1 and message["version"] == 1
    assert message["author"] == {"id": str(alice.pk), "username": "alice", "display_name": "", "avatar_url": None}
    assert message["body"] == "hello world"
    assert message["edited_at"] is None and message["deleted"] is False
    assert message["client_id"] == "c-1"
    assert message["created_at"].endswith("Z")


def test_same_client_id_returns_first_message_and_stores_nothing(alice: User, bob: User, room: dict[str, Any]) -> None:
    first = post(alice, room["id"], "once", client_id="abc")
    again = post(alice, room["id"], "once (resent)", client_id="abc")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["body"] == "once"
    # The same client_id from another author is another message.
    assert post(bob, room["id"], "bob's", client_id="abc").status_code == 201
    history = client_for(alice).get(f"/api/messages/{room['id']}").json()["results"]
    assert [m["body"] for m in history] == ["once", "bob's"]


def test_body_validation(alice: User, room: dict[str, Any]) -> None:
    for body, code in (
        ("", "empty_body"),
        ("   \n\t", "empty_body"),
        ("x" * 10_001, "body_too_long"),
        (123, "invalid_body"),
        (None, "invalid_body"),
        (["a"], "invalid_body"),
    ):
        response = post(alice, room["id"], body)
        assert response.status_code == 400, body
        assert response.json()["code"] == code
        assert "body" in response.json()["fields"]
    assert post(alice, room["id"], "x" * 10_000).status_code == 201
    missing = client_for(alice).post(f"/api/messages/{room['id']}", {}, format="json")
    assert missing.status_code == 400 and "body" in missing.json()["fields"]
    bad_client_id = post(alice, room["id"], "hi", client_id="x" * 65)
    assert bad_client_id.status_code == 400 and bad_client_id.json()["code"] == "invalid_client_id"
    assert post(alice, room["id"], "hi", client_id=5).status_code == 400
    # Nothing was half-written: only the one valid post exists.
    assert client_for(alice).get("/api/rooms/").json()["results"][0]["last_seq"] == 1


def test_malformed_json_and_non_object_bodies(alice: User, room: dict[str, Any]) -> None:
    client = client_for(alice)
    broken = client.post(f"/api/messages/{room['id']}", data="{not json", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["code"] == "malformed_request"
    as_list = client.post(f"/api/messages/{room['id']}", data="[1,2]", content_type="application/json")
    assert as_list.status_code == 400
    assert as_list.json()["code"] == "malformed_request"
    # A lone surrogate (no database can store it) and nesting deep enough to overflow a recursive parser.
    for text in ('{"body": "\\ud800"}', '{"body": ' + "[" * 30_000 + "]" * 30_000 + "}"):
        refused = client.post(f"/api/messages/{room['id']}", data=text, content_type="application/json")
        assert refused.status_code == 400
        assert refused.json()["code"] == "malformed_request"
    assert client.get(f"/api/messages/{room['id']}").json()["results"] == []


def test_history_pages_by_seq(alice: User, room: dict[str, Any]) -> None:
    for i in range(1, 13):
        assert post(alice, room["id"], f"m{i}").status_code == 201
    client = client_for(alice)
    newest = client.get(f"/api/messages/{room['id']}?limit=5").json()
    assert [m["seq"] for m in newest["results"]] == [8, 9, 10, 11, 12]
    older = client.get(newest["next"]).json()
    assert [m["seq"] for m in older["results"]] == [3, 4, 5, 6, 7]
    oldest = client.get(older["next"]).json()
    assert [m["seq"] for m in oldest["results"]] == [1, 2]
    assert oldest["next"] is None
    after = client.get(f"/api/messages/{room['id']}?after=9&limit=2").json()
    assert [m["seq"] for m in after["results"]] == [10, 11]
    assert [m["seq"] for m in client.get(after["next"]).json()["results"]] == [12]
    between = client.get(f"/api/messages/{room['id']}?after=2&before=6").json()
    assert [m["seq"] for m in between["results"]] == [3, 4, 5]
    assert client.get(f"/api/messages/{room['id']}?after=12").json() == {"results": [], "next": None}
    # `before` past the end is the newest page, not a page of nothing.
    past_end = client.get(f"/api/messages/{room['id']}?before=10000&limit=5").json()
    assert [m["seq"] for m in past_end["results"]] == [8, 9, 10, 11, 12]
    assert [m["seq"] for m in client.get(past_end["next"]).json()["results"]] == [3, 4, 5, 6, 7]


def test_history_default_and_max_limit(alice: User, room: dict[str, Any]) -> None:
    client = client_for(alice)
    assert client.get(f"/api/messages/{room['id']}").json() == {"results": [], "next": None}
    for query in ("limit=0", "limit=201", "limit=x", "before=-1", "after=abc", "before=1e3"):
        response = client.get(f"/api/messages/{room['id']}?{query}")
        assert response.status_code == 400, query
        assert response.json()["fields"]


def test_edit_keeps_history_and_only_author_may(alice: User, bob: User, room: dict[str, Any]) -> None:
    message = post(alice, room["id"], "first draft").json()
    denied = client_for(bob).put(f"/api/messages/{message['id']}", {"body": "hijacked"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["code"] == "not_author"
    edited = client_for(alice).put(f"/api/messages/{message['id']}", {"body": "second draft"}, format="json")
    assert edited.status_code == 200
    assert edited.json()["body"] == "second draft"
    assert edited.json()["edited_at"] is not None
    assert edited.json()["version"] > message["version"]
    assert edited.json()["seq"] == message["seq"]
    client_for(alice).put(f"/api/messages/{message['id']}", {"body": "final"}, format="json")
    history = client_for(bob).get(f"/api/messages/{message['id']}/history").json()["results"]
    assert [h["body"] for h in history] == ["first draft", "second draft"]
    assert history[0]["replaced_at"] == history[1]["written_at"]
    assert client_for(alice).put(f"/api/messages/{message['id']}", {"body": ""}, format="json").status_code == 400
    assert client_for(alice).put(f"/api/messages/{message['id']}", {}, format="json").status_code == 400


def test_edit_to_same_body_changes_nothing(alice: User, room: dict[str, Any]) -> None:
    message = post(alice, room["id"], "same").json()
    again = client_for(alice).put(f"/api/messages/{message['id']}", {"body": "same"}, format="json").json()
    assert again["version"] == message["version"] and again["edited_at"] is None
    assert client_for(alice).get(f"/api/messages/{message['id']}/history").json()["results"] == []


def test_reactions_are_idempotent_and_counted(alice: User, bob: User, room: dict[str, Any]) -> None:
    message = post(alice, room["id"]).json()
    url = f"/api/messages/{message['id']}/react"
    first = client_for(bob).post(url, {"emoji": "👍"}, format="json").json()
    twice = client_for(bob).post(url, {"emoji": "👍"}, format="json").json()
    assert first["reactions"] == [{"emoji": "👍", "count": 1, "users": [str(bob.pk)]}]
    assert twice["version"] == first["version"]
    both = client_for(alice).post(url, {"emoji": "👍"}, format="json").json()
    assert both["reactions"][0]["count"] == 2
    taken_back = client_for(bob).delete(url, {"emoji": "👍"}, format="json")
    assert taken_back.status_code == 200
    assert taken_back.json()["reactions"] == [{"emoji": "👍", "count": 1, "users": [str(alice.pk)]}]
    for bad in ("", "a b", "x" * 65, 5):
        assert client_for(bob).post(url, {"emoji": bad}, format="json").status_code == 400


def test_a_message_holds_a_bounded_number_of_different_reactions(
    settings: Any, alice: User, bob: User, room: dict[str, Any]
) -> None:
    settings.MAX_DISTINCT_REACTIONS = 3
    url = f"/api/messages/{post(alice, room['id']).json()['id']}/react"
    for emoji in (":a:", ":b:", ":c:"):
        assert client_for(bob).post(url, {"emoji": emoji}, format="json").status_code == 200
    refused = client_for(bob).post(url, {"emoji": ":d:"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "too_many_reactions"
    # One more person on an emoji already there is no new kind of reaction.
    assert client_for(alice).post(url, {"emoji": ":a:"}, format="json").json()["reactions"][0]["count"] == 2


def test_delete_leaves_tombstone(alice: User, bob: User, room: dict[str, Any]) -> None:
    first = post(alice, room["id"], "one").json()
    second = post(alice, room["id"], "two").json()
    assert client_for(bob).delete(f"/api/messages/{first['id']}").status_code == 403
    assert client_for(alice).delete(f"/api/messages/{first['id']}").status_code == 204
    assert client_for(alice).delete(f"/api/messages/{first['id']}").status_code == 204
    history = client_for(bob).get(f"/api/messages/{room['id']}").json()["results"]
    assert [(m["seq"], m["deleted"], m["body"]) for m in history] == [(1, True, ""), (2, False, "two")]
    assert history[0]["version"] > second["version"]
    assert client_for(alice).put(f"/api/messages/{first['id']}", {"body": "zombie"}, format="json").status_code == 404
    assert client_for(bob).post(f"/api/messages/{first['id']}/react", {"emoji": "x"}, format="json").status_code == 404


def test_room_owner_and_staff_may_delete_others(alice: User, bob: User, make_user: Any, room: dict[str, Any]) -> None:
    by_bob = post(bob, room["id"], "spam").json()
    assert client_for(alice).delete(f"/api/messages/{by_bob['id']}").status_code == 204
    again = post(bob, room["id"], "more spam").json()
    moderator = make_user(is_staff=True)
    assert client_for(moderator).delete(f"/api/messages/{again['id']}").status_code == 204


def test_unknown_and_foreign_message_ids(alice: User, bob: User, carol: User) -> None:
    private = create_room(alice, "secret", is_private=True)
    message = post(alice, private["id"], "classified").json()
    outsider = client_for(carol)
    for response in (
        outsider.put(f"/api/messages/{message['id']}", {"body": "x"}, format="json"),
        outsider.delete(f"/api/messages/{message['id']}"),
        outsider.post(f"/api/messages/{message['id']}/react", {"emoji": "x"}, format="json"),
        outsider.get(f"/api/messages/{message['id']}/history"),
        outsider.get(f"/api/messages/{message['id']}/thread"),
    ):
        # The same answer as for an id that names nothing: a private room's ids cannot be probed.
        assert response.status_code == 404
        assert response.json()["code"] == "message_not_found"
    for bogus in ("0123456789abcdef01234567", "nothex", "1"):
        assert client_for(alice).put(f"/api/messages/{bogus}", {"body": "x"}, format="json").status_code == 404
        assert client_for(alice).get(f"/api/messages/{bogus}/history").status_code == 404


def test_replies_count_on_parent_and_thread_pages(alice: User, bob: User, room: dict[str, Any]) -> None:
    parent = post(alice, room["id"], "question").json()
    replies = [post(bob, room["id"], f"answer {i}", parent_id=parent["id"]).json() for i in range(3)]
    assert all(r["parent_id"] == parent["id"] for r in replies)
    history = client_for(alice).get(f"/api/messages/{room['id']}").json()["results"]
    assert history[0]["reply_count"] == 3
    assert history[0]["version"] > replies[-1]["version"]
    thread = client_for(alice).get(f"/api/messages/{parent['id']}/thread?limit=2").json()
    assert [m["body"] for m in thread["results"]] == ["answer 0", "answer 1"]
    assert [m["body"] for m in client_for(alice).get(thread["next"]).json()["results"]] == ["answer 2"]
    # One level only; a missing or foreign parent is refused.
    nested = post(alice, room["id"], "deeper", parent_id=replies[0]["id"])
    assert nested.status_code == 400 and nested.json()["code"] == "invalid_parent"
    assert post(alice, room["id"], "x", parent_id="0123456789abcdef01234567").status_code == 400
    assert post(alice, room["id"], "x", parent_id=17).status_code == 400


def test_versions_rise_with_every_change(alice: User, bob: User, room: dict[str, Any]) -> None:
    a = post(alice, room["id"], "a").json()
    client_for(bob).post(f"/api/messages/{a['id']}/react", {"emoji": "🎉"}, format="json")
    client_for(alice).put(f"/api/messages/{a['id']}", {"body": "a2"}, format="json")
    b = post(bob, room["id"], "b").json()
    changed = store.messages_by_version(int(room["id"]), 0, 100)
    assert [(m.id, m.version) for m in changed] == [(a["id"], 3), (b["id"], 4)]


def test_rate_limit_on_posting(settings: Any, alice: User, room: dict[str, Any]) -> None:
    settings.RATE_LIMIT_REQUESTS = 3
    for _ in range(3):
        assert post(alice, room["id"]).status_code == 201
    limited = post(alice, room["id"])
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    settings.RATELIMIT_ENABLE = False
    assert post(alice, room["id"]).status_code == 201


def test_message_store_down_is_503(settings: Any, alice: User, room: dict[str, Any], anon: APIClient) -> None:
    settings.MONGODB_URL = "mongodb://127.0.0.1:1"
    settings.MONGODB_TIMEOUT_MS = 300
    store.close()
    try:
        response = post(alice, room["id"])
        assert response.status_code == 503
        assert response.json()["code"] == "service_unavailable"
        assert client_for(alice).get(f"/api/messages/{room['id']}").status_code == 503
        assert client_for(alice).get("/api/rooms/").status_code == 503
        ready = anon.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["mongodb"]["status"] == "error"
        assert anon.get("/health").status_code == 200
    finally:
        store.close()


def test_post_answer_equals_what_history_returns(alice: User, room: dict[str, Any]) -> None:
    posted = post(alice, room["id"], "exact").json()
    stored = client_for(alice).get(f"/api/messages/{room['id']}").json()["results"][0]
    assert posted == stored
