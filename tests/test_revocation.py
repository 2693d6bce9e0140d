"""Lost access cuts sockets off within a second, however it is lost and whether or not the
channel layer carries the news (accounts/revocations.py, realtime/hub.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.utils import timezone

from accounts import revocations
from accounts.models import AccessRevocation, User
from accounts.services import tokens_for
from accounts.tasks import forget_old_revocations
from rooms.models import Membership, Role, Room
from tests.live import ServerProcess, bearer, close_code, connect, ready, recv_until, running_server
from tests.test_websocket_cluster import PrivateRedis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The bound the servers run with (REVOCATION_POLL_SECONDS, the default) and the slack a loaded
# two-core machine needs on top of it to schedule a close.
POLL_SECONDS = 0.5
SLACK_SECONDS = 0.8


@pytest.fixture(scope="module")
def deaf_server(
    django_db_setup: Any, django_db_blocker: Any, mongo_url: str, tmp_path_factory: Any
) -> Iterator[ServerProcess]:
    """A server on a Redis server of its own (pub/sub ignores database numbers): no channel-layer
    signal this test process sends reaches it, so only its revocation poll can close a socket."""
    tmp = tmp_path_factory.mktemp("deaf")
    own_redis = PrivateRedis(tmp)
    own_redis.start()
    try:
        with running_server(tmp, redis_url=own_redis.url) as process:
            yield process
    finally:
        own_redis.kill()


@pytest.fixture(scope="module")
def listening_server(
    django_db_setup: Any, django_db_blocker: Any, mongo_url: str, tmp_path_factory: Any
) -> Iterator[ServerProcess]:
    """A server sharing this process's Redis: the channel layer's signal arrives (the fast path).
    Its poll is set to a minute, so a close within a second can only come from the signal."""
    with running_server(tmp_path_factory.mktemp("listening"), REVOCATION_POLL_SECONDS="60") as process:
        yield process


def make_room(owner: User, *members: User, name: str = "room") -> Room:
    room = Room.objects.create(name=name, created_by=owner)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    for member in members:
        Membership.objects.create(room=room, user=member)
    return room


async def closed_within(ws: Any, seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    code = await close_code(ws, timeout=seconds + 5)
    return code, time.monotonic() - started


async def test_admin_removal_without_a_signal_closes_the_socket_within_a_second(
    deaf_server: ServerProcess, alice: User, bob: User
) -> None:
    room = make_room(alice, bob)
    other_room = make_room(alice, bob, name="other")
    access = tokens_for(bob).access
    async with (
        connect(deaf_server.ws_url(room.pk), access) as removed,
        connect(deaf_server.ws_url(other_room.pk), access) as kept,
        connect(deaf_server.ws_url(room.pk), tokens_for(alice).access) as owner,
    ):
        await ready(removed, kept, owner)
        # As the Django admin deletes a membership: the ORM, nothing of the API.
        Membership.objects.filter(room=room, user=bob).delete()
        error = await recv_until(removed, "error", timeout=POLL_SECONDS + SLACK_SECONDS + 1)
        assert error["code"] == "not_a_member"
        code, _ = await closed_within(removed, 1)
        assert code == 4403
        # Only that room: bob's other socket and alice's stay open and working.
        await ready(kept, owner)
        await owner.send(json.dumps({"type": "message.send", "body": "after", "client_id": "a1"}))
        await recv_until(owner, "message.ack")


async def test_the_poll_closes_within_the_bound(deaf_server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(deaf_server.ws_url(room.pk), tokens_for(bob).access) as ws:
        await ready(ws)
        started = time.monotonic()
        Membership.objects.filter(room=room, user=bob).delete()
        assert await close_code(ws, timeout=10) == 4403
        assert time.monotonic() - started < POLL_SECONDS + SLACK_SECONDS


async def test_deactivation_closes_every_socket_and_refuses_rest(
    deaf_server: ServerProcess, alice: User, bob: User
) -> None:
    rooms = [make_room(alice, bob, name=f"r{i}") for i in range(3)]
    access = tokens_for(bob).access
    api = httpx.Client(base_url=deaf_server.http, headers=bearer(access), timeout=10)
    assert api.get("/api/auth/me").status_code == 200  # the server now has bob's row cached
    sockets = [connect(deaf_server.ws_url(room.pk), access) for room in rooms]
    opened = [await s.__aenter__() for s in sockets]
    try:
        await ready(*opened)
        started = time.monotonic()
        bob.is_active = False
        bob.save()  # what the admin's change form does
        codes = await asyncio.gather(*(close_code(ws, timeout=10) for ws in opened))
        assert codes == [4401, 4401, 4401]
        assert time.monotonic() - started < POLL_SECONDS + SLACK_SECONDS
        me = api.get("/api/auth/me")
        assert me.status_code == 401 and me.json()["code"] in ("user_inactive", "token_not_valid")
    finally:
        for s in sockets:
            await s.__aexit__(None, None, None)
    # A socket that tries again is refused.
    async with connect(deaf_server.ws_url(rooms[0].pk), access) as again:
        assert await close_code(again) == 4401


async def test_password_change_ends_tokens_refresh_and_sockets(
    deaf_server: ServerProcess, alice: User, bob: User
) -> None:
    room = make_room(alice, bob)
    pair = tokens_for(bob)
    async with connect(deaf_server.ws_url(room.pk), pair.access) as ws:
        await ready(ws)
        bob.set_password("a whole new password 42")
        bob.save()
        assert await close_code(ws, timeout=POLL_SECONDS + SLACK_SECONDS + 2) == 4401
    api = httpx.Client(base_url=deaf_server.http, timeout=10)
    assert api.get("/api/auth/me", headers=bearer(pair.access)).status_code == 401
    refreshed = api.post("/api/auth/refresh", json={"refresh": pair.refresh})
    assert refreshed.status_code == 401 and refreshed.json()["code"] == "token_not_valid"
    async with connect(deaf_server.ws_url(room.pk), pair.access) as again:
        assert await close_code(again) == 4401
    # The new password's tokens work.
    assert api.get("/api/auth/me", headers=bearer(tokens_for(bob).access)).status_code == 200


async def test_an_unrelated_save_revokes_nothing(deaf_server: ServerProcess, alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    async with connect(deaf_server.ws_url(room.pk), tokens_for(bob).access) as ws:
        await ready(ws)
        bob.display_name = "Robert"
        bob.save()
        Membership.objects.filter(room=room, user=bob).update(last_read_seq=3)
        await asyncio.sleep(POLL_SECONDS + SLACK_SECONDS)
        await ready(ws)  # still open and answering
    assert AccessRevocation.objects.count() == 0


async def test_api_removal_reaches_the_socket_by_the_channel_layer_at_once(
    listening_server: ServerProcess, alice: User, bob: User
) -> None:
    room = make_room(alice, bob)
    async with connect(listening_server.ws_url(room.pk), tokens_for(bob).access) as ws:
        await ready(ws)
        started = time.monotonic()
        removed = httpx.delete(
            f"{listening_server.http}/api/rooms/{room.pk}/members/{bob.pk}",
            headers=bearer(tokens_for(alice).access),
            timeout=10,
        )
        assert removed.status_code == 204
        assert await close_code(ws, timeout=5) == 4403
        assert time.monotonic() - started < SLACK_SECONDS + 0.5  # the poll here runs once a minute


async def test_a_member_added_again_after_removal_connects_and_stays(
    deaf_server: ServerProcess, alice: User, bob: User
) -> None:
    room = make_room(alice, bob)
    Membership.objects.filter(room=room, user=bob).delete()
    Membership.objects.create(room=room, user=bob)
    async with connect(deaf_server.ws_url(room.pk), tokens_for(bob).access) as ws:
        await asyncio.sleep(POLL_SECONDS + SLACK_SECONDS)
        await ready(ws)  # the earlier revocation is older than this socket: it stays open


async def test_cookie_socket_closes_when_its_session_ends(deaf_server: ServerProcess, alice: User) -> None:
    room = make_room(alice)
    session = SessionStore()
    session[SESSION_KEY] = str(alice.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = alice.get_session_auth_hash()
    session.set_expiry(2)
    session.create()
    headers = {"Cookie": f"sessionid={session.session_key}", "Origin": deaf_server.http}
    async with websockets.connect(deaf_server.ws_url(room.pk), additional_headers=headers) as ws:
        await ready(ws)
        error = await recv_until(ws, "error", timeout=5)
        assert error["code"] == "token_expired"
        assert await close_code(ws) == 4401


def test_every_way_of_losing_access_is_recorded(alice: User, bob: User, carol: User) -> None:
    room = make_room(alice, bob, carol)
    doomed = make_room(alice, bob, name="doomed")
    staff = User.objects.create_superuser("moderator", password="moderator password 1")
    web = Client()
    web.force_login(staff)

    def recorded_since(epoch: int) -> set[tuple[int, int | None]]:
        return set(AccessRevocation.objects.filter(epoch__gt=epoch).values_list("user_id", "room_id"))

    epoch = revocations.current_epoch()
    membership = Membership.objects.get(room=room, user=carol)
    page = web.post(f"/admin/rooms/membership/{membership.pk}/delete/", {"post": "yes"})  # the admin's delete
    assert page.status_code == 302
    assert recorded_since(epoch) == {(carol.pk, room.pk)}

    epoch, doomed_id, bob_id = revocations.current_epoch(), doomed.pk, bob.pk
    doomed.delete()  # the room's memberships go with it
    assert recorded_since(epoch) == {(alice.pk, doomed_id), (bob_id, doomed_id)}

    epoch = revocations.current_epoch()
    bob.delete()
    assert recorded_since(epoch) == {(bob_id, None), (bob_id, room.pk)}

    epochs = list(AccessRevocation.objects.order_by("id").values_list("epoch", flat=True))
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs) == 5
    assert revocations.current_epoch() == epochs[-1]


def test_beat_forgets_revocations_older_than_a_day(alice: User, bob: User) -> None:
    room = make_room(alice, bob)
    Membership.objects.filter(room=room, user=bob).delete()
    Membership.objects.filter(room=room, user=alice).delete()
    old, recent = AccessRevocation.objects.order_by("epoch")
    AccessRevocation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    assert forget_old_revocations.delay().get() == 1
    assert list(AccessRevocation.objects.values_list("pk", flat=True)) == [recent.pk]
