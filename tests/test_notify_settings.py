"""Per-room notification levels and mute: who is told of what (the indexing path makes the notices)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from notifications.models import Notification
from tests.conftest import client_for
from tests.test_messages import post
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db


def kinds(user: User) -> list[tuple[str, str]]:
    """(type, excerpt) of the user's notices, oldest first."""
    results = client_for(user).get("/api/notifications/").json()["results"]
    return [(n["type"], n["excerpt"]) for n in reversed(results)]


def settings_of(user: User, room_id: str) -> Any:
    return client_for(user).get(f"/api/rooms/{room_id}/settings")


def change(user: User, room_id: str, **body: Any) -> Any:
    return client_for(user).patch(f"/api/rooms/{room_id}/settings", body, format="json")


@pytest.fixture
def room(alice: User, bob: User, carol: User) -> dict[str, Any]:
    created = create_room(alice)
    for user in (bob, carol):
        assert client_for(user).post(f"/api/rooms/{created['id']}/join").status_code == 200
    return created


def test_defaults_are_mentions_in_rooms_and_everything_in_direct_rooms(
    alice: User, bob: User, carol: User, room: dict[str, Any]
) -> None:
    assert settings_of(bob, room["id"]).json() == {"notify": "mentions", "muted": False}
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    assert settings_of(bob, direct["id"]).json() == {"notify": "all", "muted": False}
    assert direct["notify"] == "all" and direct["muted"] is False  # the Room payload says it too
    listed = {r["id"]: r for r in client_for(bob).get("/api/rooms/").json()["results"]}
    assert (listed[room["id"]]["notify"], listed[direct["id"]]["notify"]) == ("mentions", "all")

    post(alice, room["id"], "plain words")
    post(alice, room["id"], "hey @bob")
    post(alice, direct["id"], "just us")
    assert kinds(bob) == [("mention", "hey @bob"), ("dm", "just us")]
    assert kinds(carol) == []  # a plain post in a room tells nobody by default
    assert kinds(alice) == []  # never of one's own


def test_all_tells_of_every_post_but_thread_replies_and_one_notice_per_message(
    alice: User, bob: User, carol: User, room: dict[str, Any]
) -> None:
    assert change(carol, room["id"], notify="all").json() == {"notify": "all", "muted": False}
    first = post(alice, room["id"], "a new topic").json()
    post(alice, room["id"], "in the thread", parent_id=first["id"])
    post(alice, room["id"], "@carol look")
    assert kinds(carol) == [("message", "a new topic"), ("mention", "@carol look")]  # the mention, not both
    own = post(carol, room["id"], "mine").json()
    post(alice, room["id"], "answering", parent_id=own["id"])
    assert kinds(carol)[-1] == ("reply", "answering")  # replies to one's own thread still come


def test_nothing_and_muted_silence_mentions_but_unread_counts_stay_true(
    alice: User, bob: User, carol: User, room: dict[str, Any]
) -> None:
    assert change(bob, room["id"], notify="nothing").status_code == 200
    assert change(carol, room["id"], muted=True).json() == {"notify": "mentions", "muted": True}
    post(alice, room["id"], "@bob @carol @room anyone?")
    assert kinds(bob) == [] and kinds(carol) == []
    mine = {r["id"]: r for r in client_for(carol).get("/api/rooms/").json()["results"]}[room["id"]]
    assert mine["muted"] is True and mine["unread_count"] == 1  # muted, yet the count is true
    assert change(carol, room["id"], muted=False).json()["muted"] is False
    post(alice, room["id"], "@carol now?")
    assert kinds(carol) == [("mention", "@carol now?")]


def test_a_direct_room_muted_or_set_to_mentions(alice: User, bob: User) -> None:
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    change(bob, direct["id"], notify="mentions")
    post(alice, direct["id"], "no notice")
    post(alice, direct["id"], "but @bob this one")
    assert kinds(bob) == [("mention", "but @bob this one")]
    change(bob, direct["id"], notify="all", muted=True)
    post(alice, direct["id"], "muted")
    assert len(kinds(bob)) == 1
    assert Notification.objects.filter(user=bob).count() == 1


def test_settings_refusals(alice: User, bob: User, make_user: Any, anon: Any, room: dict[str, Any]) -> None:
    outsider = make_user("dave")
    wrong = change(bob, room["id"], notify="sometimes")
    assert wrong.status_code == 400 and "notify" in wrong.json()["fields"]
    assert change(bob, room["id"], muted="maybe").status_code == 400
    not_member = settings_of(outsider, room["id"])
    assert not_member.status_code == 403 and not_member.json()["code"] == "not_a_member"
    secret = create_room(alice, "secret", is_private=True)
    hidden = change(outsider, secret["id"], notify="all")
    assert hidden.status_code == 404 and hidden.json()["code"] == "room_not_found"
    assert settings_of(bob, "nope").status_code == 404
    assert anon.get(f"/api/rooms/{room['id']}/settings").status_code == 401
    assert settings_of(bob, room["id"]).json() == {"notify": "mentions", "muted": False}  # nothing half-written
    assert change(bob, room["id"]).json() == {"notify": "mentions", "muted": False}  # an empty change is a read


def test_reading_a_room_on_any_device_reads_its_dm_and_post_notices(
    alice: User, bob: User, room: dict[str, Any]
) -> None:
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    first = post(alice, direct["id"], "one").json()
    post(alice, direct["id"], "two @bob")
    last = post(alice, direct["id"], "three").json()
    unread = lambda: [n["excerpt"] for n in client_for(bob).get("/api/notifications/?unread=true").json()["results"]]  # noqa: E731
    assert unread() == ["three", "two @bob", "one"]
    client_for(bob).post(f"/api/rooms/{direct['id']}/read", {"seq": first["seq"]}, format="json")  # the phone
    assert unread() == ["three", "two @bob"]
    client_for(bob).post(f"/api/rooms/{direct['id']}/read", {"seq": last["seq"]}, format="json")
    assert unread() == ["two @bob"]  # a mention stays until it is opened
