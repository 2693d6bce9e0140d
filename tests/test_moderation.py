"""Moderation through the API: bans, mutes, slow mode, spam limits, reports and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.authentication import forget_user
from accounts.models import User
from accounts.services import tokens_for
from rooms.models import Membership, Role, RoomBan, RoomMute
from tests.conftest import client_for
from tests.test_messages import post
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(alice: User, bob: User, carol: User) -> dict[str, Any]:
    """Alice owns it, Carol is an admin, Bob a member."""
    created = create_room(alice, "town square")
    for user in (bob, carol):
        client_for(user).post(f"/api/rooms/{created['id']}/join")
    Membership.objects.filter(room_id=created["id"], user=carol).update(role=Role.ADMIN)
    return created


def ban(actor: User, room: dict[str, Any], target: User, **extra: Any) -> Any:
    return client_for(actor).post(f"/api/rooms/{room['id']}/bans", {"user_id": str(target.pk), **extra}, format="json")


def mute(actor: User, room: dict[str, Any], target: User, **extra: Any) -> Any:
    return client_for(actor).post(f"/api/rooms/{room['id']}/mutes", {"user_id": str(target.pk), **extra}, format="json")


def audit_actions(actor: User, room: dict[str, Any]) -> list[str]:
    answer = client_for(actor).get(f"/api/rooms/{room['id']}/audit")
    assert answer.status_code == 200, answer.content
    return [entry["action"] for entry in answer.json()["results"]]


def member_names(room: dict[str, Any], viewer: User) -> set[str]:
    members = client_for(viewer).get(f"/api/rooms/{room['id']}/members").json()["results"]
    return {m["user"]["username"] for m in members}


def test_a_ban_removes_and_keeps_out_until_lifted(alice: User, bob: User, carol: User, room: dict[str, Any]) -> None:
    made = ban(carol, room, bob, reason="spam links", duration_seconds=3600)
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["user"]["username"] == "bob" and body["reason"] == "spam links" and body["expires_at"]
    assert "bob" not in member_names(room, alice)
    refused = client_for(bob).post(f"/api/rooms/{room['id']}/join")
    assert refused.status_code == 403 and refused.json()["code"] == "banned"
    added = client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": str(bob.pk)}, format="json")
    assert added.status_code == 403 and added.json()["code"] == "banned"
    code = client_for(alice).post(f"/api/rooms/{room['id']}/invites", {}, format="json").json()["code"]
    accepted = client_for(bob).post(f"/api/invites/{code}/accept")
    assert accepted.status_code == 403 and accepted.json()["code"] == "banned"
    gone = post(bob, room["id"], "still here?")
    assert gone.status_code == 403 and gone.json()["code"] == "not_a_member"
    listed = client_for(alice).get(f"/api/rooms/{room['id']}/bans").json()["results"]
    assert [b["user"]["username"] for b in listed] == ["bob"]

    assert client_for(alice).delete(f"/api/rooms/{room['id']}/bans/{bob.pk}").status_code == 204
    again = client_for(alice).delete(f"/api/rooms/{room['id']}/bans/{bob.pk}")
    assert again.status_code == 404 and again.json()["code"] == "ban_not_found"
    assert client_for(bob).post(f"/api/rooms/{room['id']}/join").status_code == 200
    assert audit_actions(alice, room)[:2] == ["unban", "ban"]


def test_a_ban_ends_on_time_without_any_job(alice: User, bob: User, room: dict[str, Any]) -> None:
    assert ban(alice, room, bob, duration_seconds=60).status_code == 201
    assert client_for(bob).post(f"/api/rooms/{room['id']}/join").status_code == 403
    RoomBan.objects.filter(user=bob).update(expires_at=timezone.now() - timedelta(seconds=1))  # its end came
    assert client_for(bob).post(f"/api/rooms/{room['id']}/join").status_code == 200
    assert client_for(alice).get(f"/api/rooms/{room['id']}/bans").json()["results"] == []


def test_who_may_ban_whom(alice: User, bob: User, carol: User, make_user: Any, room: dict[str, Any], anon: Any) -> None:
    dave = make_user("dave")
    client_for(dave).post(f"/api/rooms/{room['id']}/join")
    Membership.objects.filter(room_id=room["id"], user=dave).update(role=Role.ADMIN)
    staff = make_user("moderator", is_staff=True)
    cases = [
        (bob, dave, 403, "not_a_manager"),  # members do not ban
        (carol, alice, 403, "owner_protected"),  # owners cannot be banned
        (staff, alice, 403, "owner_protected"),
        (carol, dave, 403, "admin_protected"),  # admins cannot ban admins
        (carol, carol, 400, "invalid"),
    ]
    for actor, target, status, code in cases:
        answer = ban(actor, room, target)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (actor, target, answer.json())
    for bad in ({"duration_seconds": 0}, {"duration_seconds": "soon"}, {"reason": "x" * 501}):
        assert ban(alice, room, bob, **bad).status_code == 400, bad
    unknown = client_for(alice).post(f"/api/rooms/{room['id']}/bans", {"user_id": "99999999"}, format="json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "user_not_found"
    assert ban(alice, room, dave).status_code == 201  # an owner bans an admin
    assert ban(staff, room, carol).status_code == 201  # staff moderate every room, members or not
    assert anon.post(f"/api/rooms/{room['id']}/bans", {}, format="json").status_code == 401
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    assert ban(alice, {"id": direct["id"]}, bob).json()["code"] == "direct_room"
    assert RoomBan.objects.count() == 2 and not Membership.objects.filter(room_id=room["id"], user=carol).exists()


def test_a_muted_member_reads_but_cannot_post_edit_or_react_even_after_rejoining(
    alice: User, bob: User, room: dict[str, Any]
) -> None:
    earlier = post(bob, room["id"], "before the mute").json()
    theirs = post(alice, room["id"], "a message to react to").json()
    made = mute(alice, room, bob)
    assert made.status_code == 201 and made.json()["expires_at"] is None
    for answer in (
        post(bob, room["id"], "can I?"),
        client_for(bob).put(f"/api/messages/{earlier['id']}", {"body": "edited"}, format="json"),
        client_for(bob).post(f"/api/messages/{theirs['id']}/react", {"emoji": "👍"}, format="json"),
    ):
        assert answer.status_code == 403 and answer.json()["code"] == "muted", answer.json()
    assert client_for(bob).get(f"/api/messages/{room['id']}").status_code == 200  # still reads
    assert client_for(bob).delete(f"/api/rooms/{room['id']}/members/{bob.pk}").status_code == 204
    client_for(bob).post(f"/api/rooms/{room['id']}/join")
    assert post(bob, room["id"], "fresh start?").json()["code"] == "muted"  # leaving ends nothing
    assert [
        m["user"]["username"] for m in client_for(alice).get(f"/api/rooms/{room['id']}/mutes").json()["results"]
    ] == ["bob"]
    assert client_for(alice).delete(f"/api/rooms/{room['id']}/mutes/{bob.pk}").status_code == 204
    assert post(bob, room["id"], "thanks").status_code == 201
    assert mute(alice, room, bob, duration_seconds=60).status_code == 201
    Membership.objects.filter(user=bob, room_id=room["id"]).update(posting_muted_until=timezone.now())
    RoomMute.objects.filter(user=bob).update(expires_at=timezone.now())
    assert post(bob, room["id"], "the minute is up").status_code == 201  # the end is read, exactly
    assert audit_actions(alice, room)[:3] == ["mute", "unmute", "mute"]


def test_slow_mode_holds_for_members_whatever_the_rate_limit_flag(
    settings: Any, alice: User, bob: User, room: dict[str, Any]
) -> None:
    settings.RATELIMIT_ENABLE = False
    changed = client_for(alice).patch(f"/api/rooms/{room['id']}", {"slow_mode_seconds": 30}, format="json")
    assert changed.status_code == 200 and changed.json()["slow_mode_seconds"] == 30
    first = post(bob, room["id"], "one", client_id="slow-1")
    assert first.status_code == 201
    second = post(bob, room["id"], "two")
    assert second.status_code == 429 and second.json()["code"] == "slow_mode"
    assert 1 <= int(second["Retry-After"]) <= 30
    retried = post(bob, room["id"], "one", client_id="slow-1")  # the ack was lost: the same message back
    assert retried.status_code in (200, 201) and retried.json()["id"] == first.json()["id"]
    assert post(alice, room["id"], "moderators are not slowed").status_code == 201
    assert post(alice, room["id"], "twice").status_code == 201
    refused = client_for(bob).patch(f"/api/rooms/{room['id']}", {"slow_mode_seconds": 0}, format="json")
    assert refused.status_code == 403
    assert (
        client_for(alice).patch(f"/api/rooms/{room['id']}", {"slow_mode_seconds": -1}, format="json").status_code == 400
    )
    assert audit_actions(alice, room) == ["setting_change"]


def test_repeated_text_and_links_from_new_accounts(settings: Any, alice: User, bob: User, room: dict[str, Any]) -> None:
    settings.SPAM_REPEAT_LIMIT = 3
    other = create_room(bob, "elsewhere")
    spam = "buy cheap watches at my shop"
    answers = [post(bob, r, spam).status_code for r in (room["id"], other["id"], room["id"], other["id"])]
    assert answers == [201, 201, 201, 429]  # across rooms
    refused = post(bob, room["id"], "  BUY cheap   watches at my shop ")
    assert refused.json()["code"] == "repeated_message" and int(refused["Retry-After"]) > 0
    assert all(post(bob, room["id"], "ok").status_code == 201 for _ in range(5))  # short replies are no spam
    links = "see a.example.com b.example.com c.example.com"
    assert post(bob, room["id"], links).json()["code"] == "too_many_links"  # Bob's account is minutes old
    User.objects.filter(pk=bob.pk).update(date_joined=timezone.now() - timedelta(hours=2))
    forget_user(bob.pk)  # the sign-in cache keeps a user row for USER_CACHE_SECONDS
    assert post(bob, room["id"], links).status_code == 201
    settings.RATELIMIT_ENABLE = False  # benchmarks: every spam limit off
    assert post(bob, room["id"], spam).status_code == 201


def test_reports_reach_the_moderators_and_resolving_can_delete(
    alice: User, bob: User, carol: User, make_user: Any, room: dict[str, Any]
) -> None:
    bad = post(alice, room["id"], "something rude").json()
    reported = client_for(bob).post(f"/api/messages/{bad['id']}/report", {"reason": "rude"}, format="json")
    assert reported.status_code == 201, reported.content
    report = reported.json()
    assert set(report) == {"id", "message_id", "room_id", "reporter", "reason", "created_at", "status"}
    assert report["status"] == "open" and report["reporter"]["username"] == "bob"
    twice = client_for(bob).post(f"/api/messages/{bad['id']}/report", {"reason": "again"}, format="json")
    assert twice.status_code == 409 and twice.json()["code"] == "already_reported"
    own = client_for(alice).post(f"/api/messages/{bad['id']}/report", {"reason": "me"}, format="json")
    assert own.status_code == 400
    assert client_for(bob).post(f"/api/messages/{bad['id']}/report", {}, format="json").status_code == 400
    outsider = make_user("eve")
    assert (
        client_for(outsider).post(f"/api/messages/{bad['id']}/report", {"reason": "x"}, format="json").status_code
        == 403
    )

    queue = client_for(carol).get(f"/api/rooms/{room['id']}/reports", {"status": "open"}).json()["results"]
    assert [r["id"] for r in queue] == [report["id"]]
    assert client_for(bob).get(f"/api/rooms/{room['id']}/reports").status_code == 403
    assert (
        client_for(bob).post(f"/api/reports/{report['id']}/resolve", {"action": "dismiss"}, format="json").status_code
        == 403
    )
    hidden = client_for(outsider).post(f"/api/reports/{report['id']}/resolve", {"action": "dismiss"}, format="json")
    assert hidden.status_code == 404 and hidden.json()["code"] == "report_not_found"
    done = client_for(carol).post(f"/api/reports/{report['id']}/resolve", {"action": "delete_message"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "actioned"
    assert "carol" not in str(done.json())  # who resolved it is never told
    history = client_for(bob).get(f"/api/messages/{room['id']}").json()["results"]
    assert [m["deleted"] for m in history if m["id"] == bad["id"]] == [True]
    again = client_for(carol).post(f"/api/reports/{report['id']}/resolve", {"action": "dismiss"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_resolved"
    assert audit_actions(alice, room)[:2] == ["report_resolve", "message_delete"]

    staff = make_user("moderator", is_staff=True)
    assert len(client_for(staff).get("/api/reports", {"status": "actioned"}).json()["results"]) == 1
    assert client_for(carol).get("/api/reports").json()["code"] == "staff_only"


def test_the_audit_log_records_every_action_and_only_moderators_read_it(
    alice: User, bob: User, carol: User, make_user: Any, room: dict[str, Any]
) -> None:
    dave = make_user("dave")
    client_for(dave).post(f"/api/rooms/{room['id']}/join")
    own = post(bob, room["id"], "my own words").json()
    assert client_for(bob).delete(f"/api/messages/{own['id']}").status_code == 204  # the author's: no entry
    theirs = post(dave, room["id"], "dave's words").json()
    client_for(carol).delete(f"/api/messages/{theirs['id']}")
    client_for(alice).patch(f"/api/rooms/{room['id']}/members/{dave.pk}", {"role": "admin"}, format="json")
    client_for(alice).patch(f"/api/rooms/{room['id']}/members/{dave.pk}", {"role": "admin"}, format="json")  # no change
    client_for(alice).delete(f"/api/rooms/{room['id']}/members/{dave.pk}")
    client_for(alice).patch(f"/api/rooms/{room['id']}", {"description": "be kind"}, format="json")
    entries = client_for(carol).get(f"/api/rooms/{room['id']}/audit").json()["results"]
    assert [e["action"] for e in entries] == ["setting_change", "member_remove", "role_change", "message_delete"]
    deletion = entries[-1]
    assert deletion["actor"]["username"] == "carol" and deletion["target_user"]["username"] == "dave"
    assert deletion["message_id"] == theirs["id"] and entries[2]["data"] == {"from": "member", "to": "admin"}
    refused = client_for(bob).get(f"/api/rooms/{room['id']}/audit")
    assert refused.status_code == 403 and refused.json()["code"] == "not_a_manager"
    staff = make_user("moderator", is_staff=True)
    assert len(client_for(staff).get(f"/api/rooms/{room['id']}/audit").json()["results"]) == 4
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client_for(alice), method)(f"/api/rooms/{room['id']}/audit").status_code == 405


def test_beat_clears_ended_bans_and_mutes(alice: User, bob: User, carol: User, room: dict[str, Any]) -> None:
    from rooms.tasks import forget_ended_sanctions

    ban(alice, room, bob, duration_seconds=60)
    mute(alice, room, carol, duration_seconds=60)
    assert forget_ended_sanctions() == 0  # nothing has ended
    RoomBan.objects.update(expires_at=timezone.now())
    RoomMute.objects.update(expires_at=timezone.now())
    Membership.objects.filter(user=carol).update(posting_muted_until=timezone.now())
    assert forget_ended_sanctions() == 2
    assert not RoomBan.objects.exists() and not RoomMute.objects.exists()
    assert Membership.objects.get(user=carol, room_id=room["id"]).posting_muted_until is None


def test_staff_deactivation_ends_access(make_user: Any, bob: User, alice: User) -> None:
    staff = make_user("moderator", is_staff=True)
    access = tokens_for(bob).access
    assert client_for(alice).post(f"/api/admin/users/{bob.pk}/deactivate").json()["code"] == "staff_only"
    assert client_for(staff).post(f"/api/admin/users/{bob.pk}/deactivate").status_code == 204
    from rest_framework.test import APIClient

    stale = APIClient()
    stale.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert stale.get("/api/auth/me").status_code == 401
    assert client_for(staff).post("/api/admin/users/99999999/deactivate").json()["code"] == "user_not_found"
    assert client_for(staff).post(f"/api/admin/users/{staff.pk}/deactivate").status_code == 400
