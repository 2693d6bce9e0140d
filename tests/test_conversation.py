"""Markdown bodies, mentions and their notices, edit-history visibility, room settings."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from tests.conftest import client_for
from tests.test_messages import post
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(alice: User, bob: User, carol: User) -> dict[str, Any]:
    created = create_room(alice)
    for user in (bob, carol):
        assert client_for(user).post(f"/api/rooms/{created['id']}/join").status_code == 200
    return created


def notices(user: User) -> list[dict[str, Any]]:
    response = client_for(user).get("/api/notifications/")
    assert response.status_code == 200
    return list(response.json()["results"])


def test_markdown_subset_is_rendered_and_user_html_never_is(alice: User, room: dict[str, Any]) -> None:
    body = (
        "**bold** _it_ `a<b>` see example.com/x\n> quoted\n\n"
        "```\n<script>alert(1)</script>\n```\n<img src=x onerror=alert(1)> [x](javascript:alert(1))"
    )
    message = post(alice, room["id"], body).json()
    html = message["html"]
    assert message["body"] == body  # the raw text is kept as written
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<code>a&lt;b&gt;</code>" in html
    assert '<a href="http://example.com/x" rel="nofollow noopener noreferrer">' in html
    assert "<blockquote>" in html and "<pre><code>&lt;script&gt;" in html
    assert "<img" not in html and "<script" not in html and 'href="javascript' not in html
    # History returns the same stored rendering.
    history = client_for(alice).get(f"/api/messages/{room['id']}").json()["results"]
    assert history[-1]["html"] == html


def test_mentions_are_structured_and_only_name_members(
    alice: User, bob: User, carol: User, make_user: Any, room: dict[str, Any]
) -> None:
    outsider = make_user("outsider")
    message = post(alice, room["id"], "hi @BOB and @outsider, not `@carol`, mail a@carol.com").json()
    assert message["mentions"] == {"user_ids": [str(bob.pk)], "room": False}
    assert f'<span class="mention" data-user-id="{bob.pk}">@BOB</span>' in message["html"]
    assert [n["type"] for n in notices(bob)] == ["mention"]
    assert notices(bob)[0]["message_id"] == message["id"]
    assert notices(carol) == [] and notices(outsider) == []
    assert notices(alice) == []  # the author is never told about their own message


def test_notices_of_a_room_one_left_are_no_longer_listed(alice: User, bob: User, room: dict[str, Any]) -> None:
    post(alice, room["id"], "ping @bob")
    assert [n["type"] for n in notices(bob)] == ["mention"]
    assert client_for(bob).delete(f"/api/rooms/{room['id']}/members/{bob.pk}").status_code == 204
    assert notices(bob) == []
    assert client_for(bob).get("/api/notifications/", {"unread": "true"}).json()["results"] == []


def test_edit_that_adds_a_mention_notifies_only_the_new_name(
    alice: User, bob: User, carol: User, room: dict[str, Any]
) -> None:
    message = post(alice, room["id"], "ping @bob").json()
    edited = client_for(alice).put(f"/api/messages/{message['id']}", {"body": "ping @bob and @carol"}, format="json")
    assert edited.status_code == 200
    assert sorted(edited.json()["mentions"]["user_ids"]) == sorted([str(bob.pk), str(carol.pk)])
    assert len(notices(bob)) == 1  # bob was already told
    assert [n["type"] for n in notices(carol)] == ["mention"]
    # Removing and adding a mention again does not tell carol twice about one message.
    client_for(alice).put(f"/api/messages/{message['id']}", {"body": "ping"}, format="json")
    client_for(alice).put(f"/api/messages/{message['id']}", {"body": "ping @carol"}, format="json")
    assert len(notices(carol)) == 1


def test_room_mention_and_reply_notices(alice: User, bob: User, carol: User, room: dict[str, Any]) -> None:
    question = post(bob, room["id"], "question").json()
    post(alice, room["id"], "answer", parent_id=question["id"])
    assert [n["type"] for n in notices(bob)] == ["reply"]
    announcement = post(alice, room["id"], "heads up @room").json()
    assert announcement["mentions"]["room"] is True
    assert notices(carol)[0]["type"] == "mention" and notices(bob)[0]["message_id"] == announcement["id"]
    # Marking read.
    unread = client_for(bob).get("/api/notifications/?unread=true").json()["results"]
    assert len(unread) == 2
    marked = client_for(bob).post("/api/notifications/read", {"ids": [unread[0]["id"]]}, format="json")
    assert marked.status_code == 200 and marked.json() == {"updated": 1}
    assert len(client_for(bob).get("/api/notifications/?unread=1").json()["results"]) == 1
    assert client_for(bob).post("/api/notifications/read", {"all": True}, format="json").json() == {"updated": 1}
    assert client_for(bob).post("/api/notifications/read", {"ids": "x"}, format="json").status_code == 400
    assert client_for(bob).post("/api/notifications/read", [1], format="json").status_code == 400


def test_invite_notice(alice: User, make_user: Any) -> None:
    dave = make_user("dave")
    room = create_room(alice, is_private=True)
    added = client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": str(dave.pk)}, format="json")
    assert added.status_code == 201
    assert [(n["type"], n["room_id"]) for n in notices(dave)] == [("invite", room["id"])]


def test_edit_history_visibility_is_a_room_setting(alice: User, bob: User, carol: User, room: dict[str, Any]) -> None:
    message = post(bob, room["id"], "first words").json()
    client_for(bob).put(f"/api/messages/{message['id']}", {"body": "second words"}, format="json")
    url = f"/api/messages/{message['id']}/history"
    assert [r["body"] for r in client_for(carol).get(url).json()["results"]] == ["first words"]

    # Only owners and admins change room settings.
    refused = client_for(carol).patch(f"/api/rooms/{room['id']}", {"edit_history_visibility": "moderators"})
    assert refused.status_code == 403
    bad = client_for(alice).patch(f"/api/rooms/{room['id']}", {"edit_history_visibility": "nobody"}, format="json")
    assert bad.status_code == 400 and "edit_history_visibility" in bad.json()["fields"]
    changed = client_for(alice).patch(
        f"/api/rooms/{room['id']}", {"edit_history_visibility": "moderators"}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["edit_history_visibility"] == "moderators"

    hidden = client_for(carol).get(url)
    assert hidden.status_code == 403 and hidden.json()["code"] == "history_hidden"
    assert client_for(bob).get(url).status_code == 200  # the author
    assert client_for(alice).get(url).status_code == 200  # the owner
    assert client_for(carol).get(f"/api/rooms/{room['id']}").json()["edit_history_visibility"] == "moderators"


def test_room_rename_rules(alice: User, room: dict[str, Any]) -> None:
    renamed = client_for(alice).patch(f"/api/rooms/{room['id']}", {"name": "  ops  "}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "ops"
    assert client_for(alice).patch(f"/api/rooms/{room['id']}", {"name": " "}, format="json").status_code == 400
    assert client_for(alice).get("/api/rooms/999999").status_code == 404
