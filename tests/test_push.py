"""Web Push: subscriptions and which endpoints may be called, and pushes as a real local push
service receives them (decrypted with the browser's keys, the VAPID signature checked)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import http_ece
import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from notifications.models import PushSubscription
from tests.conftest import client_for
from tests.push_endpoint import Browser, PushService, push_service, vapid_key_pair, verify_vapid
from tests.test_messages import post
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db

PUBLIC = "https://8.8.8.8/push/some-browser"  # a public address: no DNS needed to check it


@pytest.fixture
def vapid(settings: Any) -> str:
    private, public = vapid_key_pair()
    settings.VAPID_PRIVATE_KEY = private
    settings.PUSH_ALLOW_INSECURE_ENDPOINTS = False
    return public


@pytest.fixture
def service(settings: Any, vapid: str) -> Iterator[PushService]:
    settings.PUSH_ALLOW_INSECURE_ENDPOINTS = True  # the local service is plain http on loopback
    with push_service() as running:
        yield running


def subscribe(user: User, subscription: dict[str, Any]) -> Any:
    return client_for(user).post("/api/push/subscriptions", subscription, format="json")


def test_the_key_and_what_a_subscription_must_be(vapid: str, alice: User, bob: User, anon: Any) -> None:
    assert client_for(alice).get("/api/push/key").json() == {"public_key": vapid}
    keys = Browser(PUBLIC).subscription()["keys"]
    assert subscribe(alice, {"endpoint": PUBLIC, "keys": keys}).status_code == 201
    refused = {
        "http://8.8.8.8/push/x": "https",
        "https://127.0.0.1/push/x": "public",
        "https://10.1.2.3/push/x": "public",
        "https://192.168.0.7/push/x": "public",
        "https://169.254.169.254/latest/meta-data": "public",  # the cloud metadata address
        "https://[::1]/push/x": "public",
        "https://localhost/push/x": "public",
        "https://user:secret@8.8.8.8/push/x": "credentials",
        "https://8.8.8.8:notaport/x": "port",
        "ftp://8.8.8.8/x": "https",
        "": "required",
    }
    for endpoint, why in refused.items():
        answer = subscribe(alice, {"endpoint": endpoint, "keys": keys})
        assert answer.status_code == 400, endpoint
        assert answer.json()["code"] == "invalid_subscription" and why in answer.json()["detail"], (endpoint, answer)
    for bad_keys in ({}, {"p256dh": keys["p256dh"]}, {"p256dh": "short", "auth": keys["auth"]}, {**keys, "auth": "x"}):
        answer = subscribe(alice, {"endpoint": PUBLIC + "2", "keys": bad_keys})
        assert answer.status_code == 400 and answer.json()["fields"]["keys"], bad_keys
    assert client_for(alice).post("/api/push/subscriptions", ["x"], format="json").status_code == 400
    assert anon.post("/api/push/subscriptions", {}, format="json").status_code == 401
    assert anon.get("/api/push/key").status_code == 401
    assert list(PushSubscription.objects.values_list("user__username", "endpoint")) == [("alice", PUBLIC)]

    # The same browser signed in as Bob now: the endpoint is his.
    assert subscribe(bob, {"endpoint": PUBLIC, "keys": keys}).status_code == 201
    assert list(PushSubscription.objects.values_list("user__username", flat=True)) == ["bob"]
    assert client_for(alice).delete("/api/push/subscriptions", {"endpoint": PUBLIC}, format="json").status_code == 204
    assert PushSubscription.objects.count() == 1  # not Alice's to forget
    assert client_for(bob).delete("/api/push/subscriptions", {"endpoint": PUBLIC}, format="json").status_code == 204
    assert PushSubscription.objects.count() == 0


def test_a_user_keeps_the_newest_subscriptions(settings: Any, vapid: str, alice: User) -> None:
    settings.PUSH_MAX_SUBSCRIPTIONS_PER_USER = 3
    for n in range(5):
        assert subscribe(alice, Browser(f"{PUBLIC}/{n}").subscription()).status_code == 201
    kept = sorted(PushSubscription.objects.values_list("endpoint", flat=True))
    assert kept == [f"{PUBLIC}/{n}" for n in (2, 3, 4)]


def test_without_a_vapid_key_push_is_off(settings: Any, alice: User) -> None:
    settings.VAPID_PRIVATE_KEY = ""
    for answer in (
        client_for(alice).get("/api/push/key"),
        subscribe(alice, Browser(PUBLIC).subscription()),
    ):
        assert answer.status_code == 503 and answer.json()["code"] == "push_unavailable"
    assert PushSubscription.objects.count() == 0


def test_a_mention_reaches_the_browser_encrypted_and_signed(
    service: PushService, vapid: str, alice: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    room = create_room(alice, "ops")
    client_for(bob).post(f"/api/rooms/{room['id']}/join")
    phone, laptop = service.browser("bob-phone"), service.browser("bob-laptop")
    for browser in (phone, laptop):
        assert subscribe(bob, browser.subscription()).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        message = post(alice, room["id"], "@bob the   deploy is   done").json()
    for browser in (phone, laptop):
        (received,) = service.wait_for(browser, 1)
        payload = browser.decrypt(received)
        assert payload["title"] == "alice mentioned you in #ops"
        assert payload["body"] == "@bob the deploy is done"
        assert payload["url"] == f"/chat/{room['id']}/?message={message['id']}"
        assert (
            payload["type"] == "mention" and payload["room_id"] == room["id"] and payload["tag"] == f"room-{room['id']}"
        )
        verify_vapid(received, vapid, service.origin)
        assert int(received.headers["ttl"]) > 0 and received.headers["urgency"] == "high"
    other = Browser(phone.endpoint, auth=b"0" * 16)  # another browser's secret cannot read it
    with pytest.raises(http_ece.ECEException):
        other.decrypt(service.to(phone)[0])


def test_nothing_is_pushed_during_do_not_disturb_or_for_a_muted_room(
    service: PushService, alice: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    room = create_room(alice, "ops")
    client_for(bob).post(f"/api/rooms/{room['id']}/join")
    phone = service.browser("bob-phone")
    subscribe(bob, phone.subscription())
    client_for(bob).patch(
        "/api/auth/me", {"dnd_until": (timezone.now() + timedelta(hours=1)).isoformat()}, format="json"
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(alice, room["id"], "@bob during dnd")
    client_for(bob).patch("/api/auth/me", {"dnd_until": None}, format="json")
    client_for(bob).patch(f"/api/rooms/{room['id']}/settings", {"muted": True}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        post(alice, room["id"], "@bob while muted")
    client_for(bob).patch(f"/api/rooms/{room['id']}/settings", {"muted": False}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        post(alice, room["id"], "@bob now")
    (received,) = service.wait_for(phone, 1)
    assert phone.decrypt(received)["body"] == "@bob now"
    # The DND one is still in the in-app list; the muted one was never a notice.
    listed = [n["excerpt"] for n in client_for(bob).get("/api/notifications/").json()["results"]]
    assert listed == ["@bob now", "@bob during dnd"]


def test_a_gone_subscription_is_forgotten_and_a_failing_service_is_tried_again(
    service: PushService, alice: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    gone, flaky = service.browser("gone"), service.browser("flaky")
    subscribe(bob, gone.subscription())
    subscribe(bob, flaky.subscription())
    service.answers[gone.endpoint.removeprefix(service.origin)] = [410]
    service.answers[flaky.endpoint.removeprefix(service.origin)] = [503, 429]
    before = metric_values()
    with django_capture_on_commit_callbacks(execute=True):
        post(alice, direct["id"], "are you there?")
    assert len(service.wait_for(gone, 1)) == 1
    received = service.wait_for(flaky, 3)  # 503, 429, then taken (eager tasks retry at once)
    assert flaky.decrypt(received[-1])["title"] == "alice" and flaky.decrypt(received[-1])["type"] == "dm"
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [flaky.endpoint]
    after = metric_values()
    assert after["chat_push_sent_total"] - before.get("chat_push_sent_total", 0) == 1
    assert after['chat_push_failed_total{reason="gone"}'] - before.get('chat_push_failed_total{reason="gone"}', 0) == 1
    assert (
        after['chat_push_failed_total{reason="retry"}'] - before.get('chat_push_failed_total{reason="retry"}', 0) == 2
    )
    assert after['chat_notifications_created_total{type="dm"}'] > before.get(
        'chat_notifications_created_total{type="dm"}', 0
    )
    assert after["chat_push_delay_seconds_count"] > before.get("chat_push_delay_seconds_count", 0)


def metric_values() -> dict[str, float]:
    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(chat_(?:push|notifications|emails)\S*) ([0-9.e+]+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found
