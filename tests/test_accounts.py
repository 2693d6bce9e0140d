from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from core.errors import ApiError
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

STRONG = "correct horse battery staple"


def register(client: APIClient, username: str, password: str = STRONG, **extra: Any) -> Any:
    return client.post("/api/auth/register", {"username": username, "password": password, **extra}, format="json")


def test_register_returns_user_and_working_tokens(anon: APIClient) -> None:
    response = register(anon, "dana", email="dana@example.com", display_name="Dana")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["username"] == "dana"
    assert body["user"]["display_name"] == "Dana"
    assert isinstance(body["user"]["id"], str)
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.get("/api/auth/me").json()["username"] == "dana"
    assert "password" not in me.get("/api/auth/me").json()


def test_register_rejects_weak_password_with_field_errors(anon: APIClient) -> None:
    response = register(anon, "erin", password="password")
    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"
    assert response.json()["fields"]["password"]
    assert not User.objects.filter(username="erin").exists()


def test_register_rejects_password_similar_to_username(anon: APIClient) -> None:
    response = register(anon, "frankenstein", password="frankenstein1")
    assert response.status_code == 400
    assert "password" in response.json()["fields"]


def test_username_is_unique_case_insensitively(anon: APIClient) -> None:
    assert register(anon, "Grace").status_code == 201
    response = register(anon, "grace")
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"
    assert "username" in response.json()["fields"]
    assert User.objects.filter(username__iexact="grace").count() == 1


def test_register_rejects_bad_usernames_and_missing_fields(anon: APIClient) -> None:
    assert register(anon, "has space").status_code == 400
    assert register(anon, "x" * 151).status_code == 400
    missing = anon.post("/api/auth/register", {"username": "heidi"}, format="json")
    assert missing.status_code == 400
    assert missing.json()["fields"]["password"]
    wrong_type = anon.post("/api/auth/register", {"username": ["a"], "password": STRONG}, format="json")
    assert wrong_type.status_code == 400


@pytest.mark.parametrize("via", ["api", "page"])
def test_look_alike_empty_and_long_usernames_are_refused_on_both_ways_in(anon: APIClient, via: str) -> None:
    """One rule for the API and the sign-up page: NFKC, then ASCII letters, digits, '.', '_', '-'."""
    from django.test import Client

    def sign_up(username: str) -> tuple[int, str]:
        if via == "api":
            answer = register(anon, username)
            return answer.status_code, answer.json().get("code", "")
        page = Client().post("/register/", {"username": username, "password": STRONG})
        return page.status_code, page.content.decode()

    assert sign_up("Grace")[0] in (201, 302)
    full_width, zero_width = "\uff47\uff52\uff41\uff43\uff45", "gra\u200bce"  # full-width "grace"; "gra<ZWSP>ce"
    status, said = sign_up(full_width)  # NFKC makes it "grace": taken
    assert status in (400, 409) and ("username_taken" in said or "taken" in said), said[:300]
    if via == "page":
        assert said.count("That username is taken.") == 1  # under the field, not once more on top
    for bad in (zero_width, "", "   ", "x" * 151):
        status, said = sign_up(bad)
        assert status == 400 and ("invalid_username" in said or "letters, digits" in said), (bad, said[:300])
    assert User.objects.filter(username__iexact="grace").count() == 1
    assert not User.objects.exclude(username__regex=r"^[A-Za-z0-9_.-]{1,150}$").exists()


def test_login_case_insensitive_and_wrong_password(anon: APIClient, alice: User) -> None:
    ok = anon.post("/api/auth/login", {"username": "ALICE", "password": STRONG}, format="json")
    assert ok.status_code == 200
    assert ok.json()["user"]["id"] == str(alice.pk)
    assert ok.json()["access"] and ok.json()["refresh"]
    bad = anon.post("/api/auth/login", {"username": "alice", "password": "nope"}, format="json")
    assert bad.status_code == 401
    assert bad.json() == {"code": "invalid_credentials", "detail": "Wrong username or password."}
    unknown = anon.post("/api/auth/login", {"username": "nobody", "password": "nope"}, format="json")
    assert unknown.status_code == 401


def test_repeated_failed_logins_are_throttled_with_retry_after(anon: APIClient, alice: User) -> None:
    limit = int(settings.LOGIN_RATE_LIMIT.split("/")[0])
    for _ in range(limit):
        assert anon.post("/api/auth/login", {"username": "alice", "password": "bad"}, format="json").status_code == 401
    throttled = anon.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "rate_limited"
    assert int(throttled["Retry-After"]) > 0


def test_failed_logins_are_also_limited_per_account_name_across_addresses(
    settings: Any, anon: APIClient, alice: User
) -> None:
    """A slow guess at one account from many addresses (or behind one proxy) still hits a limit."""
    settings.LOGIN_NAME_RATE_LIMIT = "3/h"
    for i in range(3):
        guess = anon.post(
            "/api/auth/login", {"username": "Alice", "password": "bad"}, format="json", REMOTE_ADDR=f"192.0.2.{i}"
        )
        assert guess.status_code == 401
    refused = anon.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # Other accounts are not affected.
    assert anon.post("/api/auth/login", {"username": "nobody", "password": "x"}, format="json").status_code == 401


@pytest.mark.parametrize("path", ["/admin/login/", "/api-auth/login/"])
def test_the_admin_and_browsable_api_logins_share_the_limits(settings: Any, alice: User, path: str) -> None:
    from django.test import Client

    settings.LOGIN_RATE_LIMIT = "3/5m"
    browser = Client()
    for _ in range(3):
        assert browser.post(path, {"username": "alice", "password": "bad"}).status_code == 200  # the form again
    refused = browser.post(path, {"username": "alice", "password": STRONG})
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0


def test_successful_logins_are_not_throttled(anon: APIClient, alice: User) -> None:
    limit = int(settings.LOGIN_RATE_LIMIT.split("/")[0])
    for _ in range(limit + 3):
        assert anon.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json").status_code == 200


def test_refresh_rotates_and_old_refresh_stops_working(anon: APIClient, alice: User) -> None:
    first = anon.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json").json()
    rotated = anon.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["access"] and rotated.json()["refresh"] != first["refresh"]
    reused = anon.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_racing_with_one_token_rotate_it_once(alice: User) -> None:
    from accounts import services

    refresh = services.tokens_for(alice).refresh
    barrier = threading.Barrier(2)

    def rotate(_: int) -> str:
        barrier.wait()
        try:
            return services.token_refresh(refresh).refresh
        except ApiError as refused:
            return refused.code
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(rotate, range(2)))
    assert sorted(o == "token_not_valid" for o in outcomes) == [False, True], outcomes


def test_logout_blacklists_refresh(anon: APIClient, alice: User) -> None:
    pair = anon.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json").json()
    assert anon.post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json").status_code == 204
    assert anon.post("/api/auth/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 401
    # Logging out twice is harmless.
    assert anon.post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json").status_code == 204


def test_me_requires_valid_token(anon: APIClient, alice: User) -> None:
    assert anon.get("/api/auth/me").status_code == 401
    assert anon.get("/api/auth/me").json()["code"] == "not_authenticated"
    forged = jwt.encode(
        {"user_id": str(alice.pk), "token_type": "access", "exp": 9999999999, "jti": "x"},
        "not-the-secret-but-just-as-long-0123456789abcdef",
        algorithm="HS256",
    )
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    response = anon.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_expired_access_token_is_refused(alice: User) -> None:
    expired = jwt.encode(
        {"user_id": str(alice.pk), "token_type": "access", "exp": 1, "jti": "y"},
        settings.SECRET_KEY,
        algorithm=settings.ALGORITHM,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}")
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert set(response.json()) >= {"code", "detail"}


def test_refresh_token_is_not_an_access_token(anon: APIClient, alice: User) -> None:
    pair = anon.post("/api/auth/login", {"username": "alice", "password": STRONG}, format="json").json()
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['refresh']}")
    assert anon.get("/api/auth/me").status_code == 401


def test_other_users_never_see_email(alice: User, bob: User) -> None:
    alice.email = "alice@example.com"
    alice.save()
    client = client_for(bob)
    room = client.post("/api/rooms/", {"name": "general"}, format="json").json()
    client_for(alice).post(f"/api/rooms/{room['id']}/join")
    members = client.get(f"/api/rooms/{room['id']}/members").json()["results"]
    assert all("email" not in m["user"] and "password" not in m["user"] for m in members)
    assert {m["user"]["username"] for m in members} == {"alice", "bob"}


def test_user_rows_are_reused_only_briefly(settings: Any, make_user: Any) -> None:
    """Authentication and author names reuse a user row for USER_CACHE_SECONDS, no longer."""
    import time

    from tests.test_rooms import create_room

    settings.USER_CACHE_SECONDS = 0.3
    user = make_user("brief")
    client = client_for(user)
    room = create_room(user)
    client.post(f"/api/messages/{room['id']}", {"body": "hi"}, format="json")
    assert client.get(f"/api/messages/{room['id']}").json()["results"][0]["author"]["display_name"] == ""
    User.objects.filter(pk=user.pk).update(display_name="Brief Person", is_active=False)
    time.sleep(0.4)
    assert client.get("/api/auth/me").status_code == 401  # deactivated: refused once the entry expired
    User.objects.filter(pk=user.pk).update(is_active=True)
    author = client.get(f"/api/messages/{room['id']}").json()["results"][0]["author"]
    assert author["display_name"] == "Brief Person"


def test_socket_authentication_reuses_the_user_row_briefly(
    settings: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    import time

    from accounts.services import tokens_for
    from accounts.ws_auth import SocketAuthError, authenticate_socket

    settings.USER_CACHE_SECONDS = 0.3
    user = make_user("socketbrief")
    scope = {"headers": [(b"authorization", f"Bearer {tokens_for(user).access}".encode())]}
    assert authenticate_socket(scope).user.pk == user.pk
    User.objects.filter(pk=user.pk).update(is_active=False)
    with django_assert_num_queries(0):  # a reconnect within USER_CACHE_SECONDS reads nothing
        assert authenticate_socket(scope).user.pk == user.pk
    time.sleep(0.4)
    with pytest.raises(SocketAuthError):  # deactivated: refused once the entry expired
        authenticate_socket(scope)
