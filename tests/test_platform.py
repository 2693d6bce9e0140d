"""Health, request ids, the OpenAPI schema, the admin and the browsable API."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from rooms.models import Room
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_liveness_and_readiness_check_every_service(anon: APIClient) -> None:
    assert anon.get("/health").json() == {"status": "ok"}
    ready = anon.get("/health/ready")
    assert ready.status_code == 200, ready.content
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "mongodb", "redis", "channel_layer", "cache"}
    assert all(check["status"] == "ok" for check in checks.values())


def test_readiness_names_a_failing_redis(settings: Any, anon: APIClient) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    ready = anon.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["status"] == "error"
    assert ready.json()["failing"] == ["redis"]


def test_request_id_echoed_or_minted(anon: APIClient) -> None:
    echoed = anon.get("/health", HTTP_X_REQUEST_ID="abc-123")
    assert echoed["X-Request-ID"] == "abc-123"
    minted = anon.get("/health")
    assert len(minted["X-Request-ID"]) == 32
    hostile = anon.get("/health", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert hostile["X-Request-ID"] != "bad id\nwith newline"
    assert anon.get("/api/nowhere")["X-Request-ID"]


def test_unknown_api_path_is_json_404(anon: APIClient) -> None:
    response = anon.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}


def test_openapi_schema_documents_the_contract(anon: APIClient) -> None:
    response = anon.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = set(schema["paths"])
    for expected in (
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/rooms/",
        "/api/rooms/{room_id}/join",
        "/api/rooms/{room_id}/members",
        "/api/rooms/{room_id}/members/{user_id}",
        "/api/rooms/{room_id}/read",
        "/api/messages/{room_id}",
        "/api/messages/{message_id}",
        "/api/messages/{message_id}/react",
        "/api/messages/{message_id}/history",
        "/api/messages/{message_id}/thread",
    ):
        assert any(p.rstrip("/").replace("/?", "") == expected.rstrip("/") for p in paths), expected
    message = schema["components"]["schemas"]["Message"]["properties"]
    assert {"id", "room_id", "seq", "version", "author", "reactions", "client_id"} <= set(message)
    assert anon.get("/api/docs/").status_code == 200


def test_admin_lists_users_rooms_and_memberships(make_user: Any, alice: User) -> None:
    staff = make_user("moderator", is_staff=True, is_superuser=True)
    client_for(alice).post("/api/rooms/", {"name": "general"}, format="json")
    browser = Client()
    browser.force_login(staff)
    for url in ("/admin/accounts/user/", "/admin/rooms/room/", "/admin/rooms/membership/"):
        page = browser.get(url)
        assert page.status_code == 200, url
    room = Room.objects.get()
    assert b"general" in browser.get(f"/admin/rooms/room/{room.pk}/change/").content
    assert Client().get("/admin/rooms/room/").status_code == 302  # anonymous goes to the login page


def test_browsable_api_works_with_session_login(alice: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    login_page = browser.get("/api-auth/login/")
    assert login_page.status_code == 200
    token = login_page.cookies["csrftoken"].value
    logged_in = browser.post(
        "/api-auth/login/",
        {"username": "alice", "password": "correct horse battery staple", "csrfmiddlewaretoken": token},
    )
    assert logged_in.status_code == 302
    page = browser.get("/api/rooms/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"<html" in page.content.lower()
    # An unsafe call through the session needs the CSRF token.
    refused = browser.post("/api/rooms/", {"name": "x"}, content_type="application/json")
    assert refused.status_code == 403
    created = browser.post(
        "/api/rooms/",
        {"name": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert created.status_code == 201


def _sample(text: str, name: str) -> float:
    """The value of one sample line of the Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.django_db
def test_metrics_count_requests_and_posts(settings: Any, alice: User) -> None:
    from tests.test_rooms import create_room

    anon = Client()
    before = _sample(anon.get("/metrics").content.decode(), "chat_messages_posted_total")
    room = create_room(alice)
    client_for(alice).post(f"/api/messages/{room['id']}", {"body": "counted", "client_id": "m1"}, format="json")
    client_for(alice).post(f"/api/messages/{room['id']}", {"body": "counted", "client_id": "m1"}, format="json")
    response = anon.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert _sample(text, "chat_messages_posted_total") == before + 1  # the repeat stored nothing
    assert 'route="messages"' in text and 'status="201"' in text
    # No token set: readable from this machine only (the test client's REMOTE_ADDR, no network).
    from_elsewhere = anon.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert from_elsewhere.status_code == 403 and from_elsewhere.json()["code"] == "metrics_token_required"
    settings.METRICS_TOKEN = "s3cret-token"
    assert anon.get("/metrics").status_code == 401
    assert anon.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 401
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert anon.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
