"""People: the directory of accounts by name prefix, one account, one's own profile and password."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for
from tests.conftest import client_for

STRONG = "a long enough passphrase 42"


def names(response: Any) -> list[str]:
    return [user["username"] for user in response.json()["results"]]


def test_people_by_the_start_of_a_name_ignoring_case_and_accents(make_user: Any, alice: User) -> None:
    make_user("zadams", display_name="Zoë Adams")
    make_user("zed")
    make_user("ziggy", display_name="Éloïse")
    gone = make_user("zorro")
    gone.is_active = False
    gone.save()
    search = client_for(alice)
    assert names(search.get("/api/users", {"q": "ZOE"})) == ["zadams"]  # the display name, accents folded
    assert names(search.get("/api/users", {"q": "z"})) == ["zadams", "zed", "ziggy"]  # never the inactive one
    assert names(search.get("/api/users", {"q": "elo"})) == ["ziggy"]
    assert names(search.get("/api/users", {"q": "z_"})) == []  # LIKE wildcards are literal
    found = search.get("/api/users", {"q": "zad"}).json()["results"][0]
    assert set(found) == {"id", "username", "display_name", "avatar_url"}  # the public shape: no email, no hash


def test_people_come_twenty_a_page(make_user: Any, alice: User) -> None:
    for i in range(25):
        make_user(f"member{i:02d}")
    first = client_for(alice).get("/api/users", {"q": "member"}).json()
    assert len(first["results"]) == 20 and first["next"]
    rest = client_for(alice).get(first["next"]).json()
    assert len(rest["results"]) == 5 and rest["next"] is None
    assert sorted(u["username"] for u in first["results"] + rest["results"]) == [f"member{i:02d}" for i in range(25)]
    assert len(client_for(alice).get("/api/users", {"q": "member", "limit": 200}).json()["results"]) == 20


def test_people_search_refusals(settings: Any, alice: User, anon: APIClient) -> None:
    assert anon.get("/api/users", {"q": "a"}).status_code == 401
    for bad in ({}, {"q": ""}, {"q": "   "}, {"q": "x" * 151}):
        answer = client_for(alice).get("/api/users", bad)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid", bad
    settings.PEOPLE_SEARCH_RATE_LIMIT = "2/m"
    assert client_for(alice).get("/api/users", {"q": "a"}).status_code == 200
    assert client_for(alice).get("/api/users", {"q": "b"}).status_code == 200
    limited = client_for(alice).get("/api/users", {"q": "c"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1


def test_the_search_is_two_index_ranges_not_a_scan(make_user: Any, alice: User) -> None:
    make_user("indexed", display_name="Index Me")
    from accounts.selectors import people_matching

    sql, params = people_matching("ind").order_by("username_key", "id")[:21].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a table this small would be scanned anyway
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "accounts_user_username_key_prefix" in plan and "accounts_user_display_name_key_prefix" in plan, plan


def test_one_person(make_user: Any, alice: User, bob: User) -> None:
    shown = client_for(alice).get(f"/api/users/{bob.pk}")
    assert shown.status_code == 200 and shown.json() == {
        "id": str(bob.pk),
        "username": "bob",
        "display_name": "",
        "avatar_url": None,
    }
    bob.is_active = False
    bob.save()
    for missing in (str(bob.pk), "999999999", "not-an-id"):
        answer = client_for(alice).get(f"/api/users/{missing}")
        assert answer.status_code == 404 and answer.json()["code"] == "user_not_found"


def test_own_profile_changes(alice: User) -> None:
    me = client_for(alice)
    changed = me.patch(
        "/api/auth/me",
        {"display_name": "  Alice Liddell ", "email": "alice@example.com", "email_notifications": False},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["display_name"] == "Alice Liddell" and body["email"] == "alice@example.com"
    assert body["email_notifications"] is False and body["dnd_until"] is None
    assert names(me.get("/api/users", {"q": "lidd"})) == []  # prefixes only
    assert names(me.get("/api/users", {"q": "alice l"})) == ["alice"]  # the new name is searchable at once
    later = me.patch("/api/auth/me", {"dnd_until": "2030-01-01T08:00:00Z"}, format="json").json()
    assert later["dnd_until"].startswith("2030-01-01T08:00:00") and later["display_name"] == "Alice Liddell"
    assert me.patch("/api/auth/me", {"dnd_until": None}, format="json").json()["dnd_until"] is None
    for bad in ({"email": "not an address"}, {"display_name": "x" * 151}, {"email_notifications": "often"}):
        refused = me.patch("/api/auth/me", bad, format="json")
        assert refused.status_code == 400 and refused.json()["code"] == "invalid", bad
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"  # a refused change wrote nothing


def test_a_new_password_ends_every_token_but_keeps_the_asking_session(alice: User) -> None:
    old = tokens_for(alice)
    bearer = client_for(alice)
    refused = bearer.post("/api/auth/password", {"old_password": "wrong", "new_password": STRONG}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "wrong_password"
    weak = bearer.post(
        "/api/auth/password", {"old_password": "correct horse battery staple", "new_password": "123"}, format="json"
    )
    assert weak.status_code == 400 and weak.json()["code"] == "weak_password"

    browser = Client()
    browser.force_login(alice)
    changed = browser.post(
        "/api/auth/password",
        {"old_password": "correct horse battery staple", "new_password": STRONG},
        content_type="application/json",
    )
    assert changed.status_code == 204, changed.content
    assert browser.get("/api/auth/me").status_code == 200  # the session that asked goes on
    api = APIClient()
    assert api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {old.access}").status_code == 401
    assert api.post("/api/auth/refresh", {"refresh": old.refresh}, format="json").status_code == 401
    login = api.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json")
    assert login.status_code == 200
