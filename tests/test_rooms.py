from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from rooms.models import Membership, Role
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def create_room(user: User, name: str = "general", **extra: Any) -> dict[str, Any]:
    response = client_for(user).post("/api/rooms/", {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def test_create_room_makes_creator_owner(alice: User) -> None:
    room = create_room(alice, "general", description="all hands")
    assert room["name"] == "general"
    assert room["description"] == "all hands"
    assert room["is_private"] is False
    assert room["created_by"]["id"] == str(alice.pk)
    assert room["role"] == "owner"
    assert room["member_count"] == 1
    assert room["unread_count"] == 0
    assert room["last_seq"] == 0
    assert isinstance(room["id"], str)
    assert room["created_at"].endswith("Z")


def test_create_room_validation(alice: User) -> None:
    client = client_for(alice)
    assert client.post("/api/rooms/", {}, format="json").status_code == 400
    too_long = client.post("/api/rooms/", {"name": "x" * 101}, format="json")
    assert too_long.status_code == 400
    assert "name" in too_long.json()["fields"]
    assert client.post("/api/rooms/", {"name": "ok", "is_private": "maybe"}, format="json").status_code == 400


def test_list_shows_only_my_rooms(alice: User, bob: User) -> None:
    mine = create_room(alice, "mine")
    create_room(bob, "theirs")
    listed = client_for(alice).get("/api/rooms/").json()
    assert [r["id"] for r in listed["results"]] == [mine["id"]]
    assert listed["next"] is None


def test_join_public_room_twice_is_harmless(alice: User, bob: User) -> None:
    room = create_room(alice)
    client = client_for(bob)
    first = client.post(f"/api/rooms/{room['id']}/join")
    assert first.status_code == 200
    assert first.json()["role"] == "member"
    assert first.json()["member_count"] == 2
    assert client.post(f"/api/rooms/{room['id']}/join").status_code == 200
    assert Membership.objects.filter(room_id=room["id"], user=bob).count() == 1


def test_private_room_is_invisible_to_outsiders(alice: User, bob: User) -> None:
    room = create_room(alice, "secret", is_private=True)
    client = client_for(bob)
    for response in (
        client.post(f"/api/rooms/{room['id']}/join"),
        client.get(f"/api/rooms/{room['id']}/members"),
        client.get(f"/api/messages/{room['id']}"),
        client.post(f"/api/messages/{room['id']}", {"body": "hi"}, format="json"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "room_not_found"
    # Identical to a room that does not exist.
    assert client.post("/api/rooms/999999/join").json() == client.post(f"/api/rooms/{room['id']}/join").json()


def test_unknown_and_malformed_room_ids_are_404(alice: User) -> None:
    client = client_for(alice)
    for rid in ("999999", "abc", "-1", "0", "99999999999999999999999"):
        response = client.post(f"/api/rooms/{rid}/join")
        assert response.status_code == 404, rid
        assert response.json()["code"] == "room_not_found"


def test_public_room_members_only_actions_are_403_not_a_member(alice: User, bob: User) -> None:
    room = create_room(alice)
    client = client_for(bob)
    members = client.get(f"/api/rooms/{room['id']}/members")
    assert members.status_code == 403
    assert members.json()["code"] == "not_a_member"
    assert client.get(f"/api/messages/{room['id']}").json()["code"] == "not_a_member"


def test_members_list_pages_with_cursor(alice: User, make_user: Any) -> None:
    room = create_room(alice)
    for _ in range(5):
        client_for(make_user()).post(f"/api/rooms/{room['id']}/join")
    client = client_for(alice)
    page = client.get(f"/api/rooms/{room['id']}/members?limit=4").json()
    assert len(page["results"]) == 4
    assert page["results"][0]["role"] == "owner"
    second = client.get(page["next"]).json()
    assert len(second["results"]) == 2
    assert second["next"] is None
    seen = {m["user"]["id"] for m in page["results"] + second["results"]}
    assert len(seen) == 6


def test_owner_invites_to_private_room(alice: User, bob: User) -> None:
    room = create_room(alice, "secret", is_private=True)
    added = client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": str(bob.pk)}, format="json")
    assert added.status_code == 201
    assert added.json()["role"] == "member"
    assert added.json()["user"]["id"] == str(bob.pk)
    assert client_for(bob).get(f"/api/rooms/{room['id']}/members").status_code == 200
    again = client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": bob.pk}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "already_member"


def test_add_member_refusals(alice: User, bob: User, carol: User) -> None:
    room = create_room(alice)
    client_for(bob).post(f"/api/rooms/{room['id']}/join")
    plain = client_for(bob).post(f"/api/rooms/{room['id']}/members", {"user_id": carol.pk}, format="json")
    assert plain.status_code == 403
    assert plain.json()["code"] == "not_a_manager"
    unknown = client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": 99999999}, format="json")
    assert unknown.status_code == 400
    assert "user_id" in unknown.json()["fields"]
    garbage = client_for(alice).post(f"/api/rooms/{room['id']}/members", {"user_id": "x"}, format="json")
    assert garbage.status_code == 400
    bad_role = client_for(alice).post(
        f"/api/rooms/{room['id']}/members", {"user_id": carol.pk, "role": "king"}, format="json"
    )
    assert bad_role.status_code == 400
    assert not Membership.objects.filter(room_id=room["id"], user=carol).exists()


def test_only_owner_makes_owners(alice: User, bob: User, carol: User) -> None:
    room = create_room(alice)
    rid = room["id"]
    assert (
        client_for(alice)
        .post(f"/api/rooms/{rid}/members", {"user_id": bob.pk, "role": "admin"}, format="json")
        .status_code
        == 201
    )
    as_admin = client_for(bob)
    made_owner = as_admin.post(f"/api/rooms/{rid}/members", {"user_id": carol.pk, "role": "owner"}, format="json")
    assert made_owner.status_code == 403
    assert made_owner.json()["code"] == "owner_required"
    assert as_admin.post(f"/api/rooms/{rid}/members", {"user_id": carol.pk}, format="json").status_code == 201
    assert as_admin.patch(f"/api/rooms/{rid}/members/{carol.pk}", {"role": "admin"}, format="json").status_code == 200
    assert as_admin.patch(f"/api/rooms/{rid}/members/{carol.pk}", {"role": "owner"}, format="json").status_code == 403
    assert as_admin.patch(f"/api/rooms/{rid}/members/{alice.pk}", {"role": "member"}, format="json").status_code == 403
    promoted = client_for(alice).patch(f"/api/rooms/{rid}/members/{carol.pk}", {"role": "owner"}, format="json")
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "owner"


def test_room_always_keeps_an_owner(alice: User, bob: User) -> None:
    room = create_room(alice)
    rid = room["id"]
    owner = client_for(alice)
    demote = owner.patch(f"/api/rooms/{rid}/members/{alice.pk}", {"role": "member"}, format="json")
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    leave = owner.delete(f"/api/rooms/{rid}/members/{alice.pk}")
    assert leave.status_code == 409
    owner.post(f"/api/rooms/{rid}/members", {"user_id": bob.pk, "role": "owner"}, format="json")
    assert owner.delete(f"/api/rooms/{rid}/members/{alice.pk}").status_code == 204
    assert Membership.objects.get(room_id=rid, user=bob).role == Role.OWNER


def test_remove_and_leave(alice: User, bob: User, carol: User) -> None:
    room = create_room(alice)
    rid = room["id"]
    for user in (bob, carol):
        client_for(user).post(f"/api/rooms/{rid}/join")
    as_bob = client_for(bob)
    kick = as_bob.delete(f"/api/rooms/{rid}/members/{carol.pk}")
    assert kick.status_code == 403
    assert as_bob.delete(f"/api/rooms/{rid}/members/{bob.pk}").status_code == 204  # leaving
    assert client_for(alice).delete(f"/api/rooms/{rid}/members/{carol.pk}").status_code == 204
    assert client_for(alice).delete(f"/api/rooms/{rid}/members/{carol.pk}").status_code == 404
    assert set(Membership.objects.filter(room_id=rid).values_list("user_id", flat=True)) == {alice.pk}
    assert client_for(carol).get(f"/api/messages/{rid}").status_code == 403


def test_admin_cannot_remove_owner(alice: User, bob: User) -> None:
    room = create_room(alice)
    rid = room["id"]
    client_for(alice).post(f"/api/rooms/{rid}/members", {"user_id": bob.pk, "role": "admin"}, format="json")
    response = client_for(bob).delete(f"/api/rooms/{rid}/members/{alice.pk}")
    assert response.status_code == 403


def test_unread_count_and_read_marker(alice: User, bob: User) -> None:
    room = create_room(alice)
    rid = room["id"]
    client_for(bob).post(f"/api/rooms/{rid}/join")
    for i in range(3):
        client_for(alice).post(f"/api/messages/{rid}", {"body": f"hello {i}"}, format="json")
    client_for(bob).post(f"/api/messages/{rid}", {"body": "mine"}, format="json")
    listed = client_for(bob).get("/api/rooms/").json()["results"][0]
    assert listed["last_seq"] == 4
    assert listed["unread_count"] == 3  # bob's own message does not count
    assert client_for(bob).post(f"/api/rooms/{rid}/read", {"seq": 2}, format="json").status_code == 204
    assert client_for(bob).get("/api/rooms/").json()["results"][0]["unread_count"] == 1
    # The marker never moves backwards.
    client_for(bob).post(f"/api/rooms/{rid}/read", {"seq": 1}, format="json")
    assert client_for(bob).get("/api/rooms/").json()["results"][0]["unread_count"] == 1
    assert client_for(bob).post(f"/api/rooms/{rid}/read", {"seq": "x"}, format="json").status_code == 400
    assert client_for(alice).get("/api/rooms/").json()["results"][0]["unread_count"] == 1


def test_unread_count_reads_only_the_newest_cap_messages(settings: Any, alice: User, bob: User) -> None:
    settings.UNREAD_COUNT_CAP = 3
    rid = create_room(alice)["id"]
    client_for(bob).post(f"/api/rooms/{rid}/join")
    for i in range(5):
        client_for(alice).post(f"/api/messages/{rid}", {"body": f"hello {i}"}, format="json")
    assert client_for(bob).get(f"/api/rooms/{rid}").json()["unread_count"] == 3
    client_for(bob).post(f"/api/messages/{rid}", {"body": "mine"}, format="json")
    # Among the newest three unread, one is bob's own: a bounded count, never a scan of the room.
    assert client_for(bob).get(f"/api/rooms/{rid}").json()["unread_count"] == 2


def test_anonymous_is_401_everywhere(anon: APIClient, alice: User) -> None:
    room = create_room(alice)
    for method, url in (
        ("get", "/api/rooms/"),
        ("post", "/api/rooms/"),
        ("post", f"/api/rooms/{room['id']}/join"),
        ("get", f"/api/rooms/{room['id']}/members"),
        ("get", f"/api/messages/{room['id']}"),
        ("post", f"/api/messages/{room['id']}"),
    ):
        response = getattr(anon, method)(url)
        assert response.status_code == 401, url
        assert response.json()["code"] == "not_authenticated"


def test_read_marker_refused_to_outsiders(alice: User, bob: User) -> None:
    public = create_room(alice, "public")
    private = create_room(alice, "private", is_private=True)
    outsider = client_for(bob)
    public_refusal = outsider.post(f"/api/rooms/{public['id']}/read", {"seq": 1}, format="json")
    assert public_refusal.status_code == 403 and public_refusal.json()["code"] == "not_a_member"
    assert outsider.post(f"/api/rooms/{private['id']}/read", {"seq": 1}, format="json").status_code == 404
    assert (
        outsider.patch(f"/api/rooms/{private['id']}/members/{alice.pk}", {"role": "member"}, format="json").status_code
        == 404
    )
    assert outsider.delete(f"/api/rooms/{private['id']}/members/{alice.pk}").status_code == 404


def test_membership_check_reads_what_the_orm_reads(alice: User, bob: User) -> None:
    from django.forms.models import model_to_dict

    from rooms.selectors import membership_get

    room = create_room(alice, "checked", is_private=True)
    client_for(alice).patch(f"/api/rooms/{room['id']}", {"edit_history_visibility": "moderators"}, format="json")
    found = membership_get(alice, int(room["id"]))
    expected = Membership.objects.select_related("room").get(room_id=room["id"], user=alice)
    assert found is not None
    assert model_to_dict(found) == model_to_dict(expected)
    assert model_to_dict(found.room) == model_to_dict(expected.room)
    assert found.joined_at == expected.joined_at and found.room.created_at == expected.room.created_at
    assert found.role == Role.OWNER and found.room.edit_history_visibility == "moderators"
    assert membership_get(bob, int(room["id"])) is None
