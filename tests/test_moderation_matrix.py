"""Who may do what in moderation: every moderation route, and what moderation forbids (posting,
editing, reacting, joining, accepting an invitation, the room socket's frames), for each of eight
actors: anonymous, a non-member, a member, a muted member, a banned user, an admin, an owner and
staff (in no room). It fails when a moderation route is added without a row here.

Each HTTP case gets a world of its own (a case may ban, resolve or deactivate); the socket cases
share one world and one server, since what they send is refused or harmless."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_for
from messaging import store
from messaging.models import Report
from messaging.rendering import render_body
from rooms.invites import invite_create
from rooms.models import Membership, Role, Room, RoomBan, RoomMute
from rooms.sanctions import FOREVER
from tests.live import ServerProcess, close_code, connect, recv_until, running_server

ACTORS = ("anonymous", "nonmember", "member", "muted", "banned", "admin", "owner", "staff")


class World:
    """A public room: `owner`, `admin`, `member`, `muted` (muted for good) and `target` (a plain
    member whom bans and mutes act on) are in it; `banned` was banned from it; `nonmember` and
    `staff` are in no room. `message` is `member`'s, `owners_message` the owner's; `report` is an
    open report of the owner's message by `target`; `invite` is a usable invite code."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        hashed = make_password("pw-matrix-1")
        names = ["nonmember", "member", "muted", "banned", "admin", "owner", "staff", "target"]
        made = User.objects.bulk_create(
            [User(username=f"{n}_{tag}", password=hashed, is_staff=n == "staff") for n in names]
        )
        self.users = dict(zip(names, made, strict=True))
        owner = self.users["owner"]
        self.room = Room.objects.create(name=f"mod-{tag}", created_by=owner)
        roles = {
            "owner": Role.OWNER,
            "admin": Role.ADMIN,
            "member": Role.MEMBER,
            "muted": Role.MEMBER,
            "target": Role.MEMBER,
        }
        Membership.objects.bulk_create(
            Membership(
                room=self.room, user=self.users[n], role=role, posting_muted_until=FOREVER if n == "muted" else None
            )
            for n, role in roles.items()
        )
        RoomMute.objects.create(room=self.room, user=self.users["muted"], created_by=owner)
        RoomBan.objects.create(room=self.room, user=self.users["banned"], created_by=owner, reason="matrix")
        self.message = self._post("member", "a member's words")
        self.muted_message = self._post("muted", "said before the mute")
        self.owners_message = self._post("owner", "the owner's words")
        self.report = Report.objects.create(
            room=self.room, message_id=self.owners_message, reporter=self.users["target"], reason="matrix"
        )
        self.invite = invite_create(actor=owner, room_id=self.room.pk).code

    def _post(self, who: str, body: str) -> str:
        stored, _, _ = store.insert_message(
            room_id=self.room.pk,
            author_id=self.users[who].pk,
            body=body,
            rendered=render_body(body, lambda names: {}),
            now=timezone.now(),
        )
        return stored.id

    def path(self, template: str, actor: str) -> str:
        own = {"muted": self.muted_message}.get(actor, self.message)
        return template.format(
            room=self.room.pk,
            target=self.users["target"].pk,
            banned=self.users["banned"].pk,
            muted=self.users["muted"].pk,
            message=self.message,
            own_message=own,
            owners_message=self.owners_message,
            report=self.report.pk,
            invite=self.invite,
        )

    def token(self, actor: str) -> str | None:
        return None if actor == "anonymous" else tokens_for(self.users[actor]).access


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    expect: dict[str, tuple[int, str | None]]
    body: dict[str, Any] | None = None


def table(**answers: tuple[int, str | None]) -> dict[str, tuple[int, str | None]]:
    assert set(answers) == set(ACTORS), set(ACTORS) ^ set(answers)
    return answers


UNAUTH = (401, "not_authenticated")
NOT_MEMBER = (403, "not_a_member")
NOT_MANAGER = (403, "not_a_manager")
STAFF_ONLY = (403, "staff_only")


def moderators(answer: tuple[int, str | None]) -> dict[str, tuple[int, str | None]]:
    """Owners, admins and staff; the rest refused by what they are."""
    return table(
        anonymous=UNAUTH,
        nonmember=NOT_MEMBER,
        member=NOT_MANAGER,
        muted=NOT_MANAGER,
        banned=NOT_MEMBER,
        admin=answer,
        owner=answer,
        staff=answer,
    )


def staff_only(answer: tuple[int, str | None]) -> dict[str, tuple[int, str | None]]:
    return {**dict.fromkeys(ACTORS, STAFF_ONLY), "anonymous": UNAUTH, "staff": answer}


# Route patterns (as the resolver spells them) -> the cases that exercise them.
ROUTES: dict[tuple[str, str], Case] = {
    ("api/rooms/(?P<room_id>[^/]+)/bans/?$", "POST"): Case(
        "POST", "/api/rooms/{room}/bans", moderators((201, None)), {"user_id": "{target}"}
    ),
    ("api/rooms/(?P<room_id>[^/]+)/bans/?$", "GET"): Case("GET", "/api/rooms/{room}/bans", moderators((200, None))),
    ("api/rooms/(?P<room_id>[^/]+)/bans/(?P<user_id>[^/]+)/?$", "DELETE"): Case(
        "DELETE", "/api/rooms/{room}/bans/{banned}", moderators((204, None))
    ),
    ("api/rooms/(?P<room_id>[^/]+)/mutes/?$", "POST"): Case(
        "POST", "/api/rooms/{room}/mutes", moderators((201, None)), {"user_id": "{target}"}
    ),
    ("api/rooms/(?P<room_id>[^/]+)/mutes/?$", "GET"): Case("GET", "/api/rooms/{room}/mutes", moderators((200, None))),
    ("api/rooms/(?P<room_id>[^/]+)/mutes/(?P<user_id>[^/]+)/?$", "DELETE"): Case(
        "DELETE", "/api/rooms/{room}/mutes/{muted}", moderators((204, None))
    ),
    ("api/rooms/(?P<room_id>[^/]+)/audit/?$", "GET"): Case("GET", "/api/rooms/{room}/audit", moderators((200, None))),
    ("api/rooms/(?P<room_id>[^/]+)/reports/?$", "GET"): Case(
        "GET", "/api/rooms/{room}/reports?status=open", moderators((200, None))
    ),
    ("api/reports/?$", "GET"): Case("GET", "/api/reports?status=open", staff_only((200, None))),
    ("api/reports/(?P<report_id>[^/]+)/resolve/?$", "POST"): Case(
        "POST",
        "/api/reports/{report}/resolve",
        table(
            anonymous=UNAUTH,
            nonmember=(404, "report_not_found"),
            member=NOT_MANAGER,
            muted=NOT_MANAGER,
            banned=(404, "report_not_found"),
            admin=(200, None),
            owner=(200, None),
            staff=(200, None),
        ),
        {"action": "dismiss"},
    ),
    ("api/messages/(?P<message_id>[^/]+)/report/?$", "POST"): Case(
        "POST",
        "/api/messages/{owners_message}/report",
        table(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=(201, None),
            muted=(201, None),  # a muted member may still tell the moderators
            banned=NOT_MEMBER,
            admin=(201, None),
            owner=(400, "own_message"),
            staff=NOT_MEMBER,
        ),
        {"reason": "matrix"},
    ),
    ("api/admin/users/(?P<user_id>[^/]+)/deactivate/?$", "POST"): Case(
        "POST", "/api/admin/users/{target}/deactivate", staff_only((204, None))
    ),
}

# What moderation forbids on routes that are not its own: by actor.
FORBIDS = {
    "post": Case(
        "POST",
        "/api/messages/{room}",
        table(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=(201, None),
            muted=(403, "muted"),
            banned=NOT_MEMBER,
            admin=(201, None),
            owner=(201, None),
            staff=NOT_MEMBER,
        ),
        {"body": "hello from the matrix"},
    ),
    "edit one's own": Case(
        "PUT",
        "/api/messages/{own_message}",
        table(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=(200, None),
            muted=(403, "muted"),
            banned=NOT_MEMBER,
            admin=(403, "not_author"),
            owner=(403, "not_author"),
            staff=NOT_MEMBER,
        ),
        {"body": "edited by the matrix"},
    ),
    "react": Case(
        "POST",
        "/api/messages/{message}/react",
        table(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=(200, None),
            muted=(403, "muted"),
            banned=NOT_MEMBER,
            admin=(200, None),
            owner=(200, None),
            staff=NOT_MEMBER,
        ),
        {"emoji": "👍"},
    ),
    "join": Case(
        "POST",
        "/api/rooms/{room}/join",
        table(
            anonymous=UNAUTH,
            nonmember=(200, None),
            member=(200, None),
            muted=(200, None),
            banned=(403, "banned"),
            admin=(200, None),
            owner=(200, None),
            staff=(200, None),
        ),
    ),
    "accept an invitation": Case(
        "POST",
        "/api/invites/{invite}/accept",
        table(
            anonymous=UNAUTH,
            nonmember=(200, None),
            member=(200, None),
            muted=(200, None),
            banned=(403, "banned"),
            admin=(200, None),
            owner=(200, None),
            staff=(200, None),
        ),
    ),
    "slow mode": Case(
        "PATCH",
        "/api/rooms/{room}",
        table(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=NOT_MANAGER,
            muted=NOT_MANAGER,
            banned=NOT_MEMBER,
            admin=(200, None),
            owner=(200, None),
            staff=NOT_MEMBER,  # staff change a room's settings as members of it
        ),
        {"slow_mode_seconds": 10},
    ),
}

# Patterns of the moderation routes: each must have a row above.
MODERATION_WORDS = ("bans", "mutes", "audit", "reports", "report", "admin/users")


def _moderation_routes() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(patterns: Any, prefix: str) -> None:
        for entry in patterns:
            pattern = prefix + str(entry.pattern).lstrip("^")
            if hasattr(entry, "url_patterns"):
                walk(entry.url_patterns, pattern)
                continue
            if any(f"/{word}" in f"/{pattern}" for word in MODERATION_WORDS) and not pattern.startswith("admin/"):
                view = getattr(entry.callback, "view_class", None)
                methods = [
                    m.upper() for m in getattr(view, "http_method_names", []) if hasattr(view, m) and m != "options"
                ]
                found.update((pattern, method) for method in methods if method != "HEAD")

    walk(get_resolver().url_patterns, "")
    return found


def _send(world: World, case: Case, actor: str) -> tuple[int, str | None]:
    client = APIClient()
    token = world.token(actor)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {k: world.path(v, actor) if isinstance(v, str) else v for k, v in (case.body or {}).items()}
    answer = client.generic(
        case.method, world.path(case.path, actor), json.dumps(body), content_type="application/json"
    )
    payload = answer.json() if answer.content and answer["Content-Type"].startswith("application/json") else {}
    return answer.status_code, payload.get("code") if isinstance(payload, dict) else None


def _check(got: tuple[int, str | None], want: tuple[int, str | None], what: str) -> None:
    assert got[0] == want[0] and (want[1] is None or got[1] == want[1]), f"{what}: got {got}, want {want}"


@pytest.mark.django_db
def test_every_moderation_route_has_a_row() -> None:
    missing = _moderation_routes() - set(ROUTES)
    assert not missing, f"moderation routes without a row: {sorted(missing)}"


@pytest.mark.django_db
@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("route", list(ROUTES), ids=[f"{m} {p}" for p, m in ROUTES])
def test_moderation_route(route: tuple[str, str], actor: str) -> None:
    case = ROUTES[route]
    _check(_send(World(), case, actor), case.expect[actor], f"{actor} {case.method} {case.path}")


@pytest.mark.django_db
@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("name", list(FORBIDS))
def test_what_moderation_forbids(name: str, actor: str) -> None:
    case = FORBIDS[name]
    _check(_send(World(), case, actor), case.expect[actor], f"{actor}: {name}")


# --- the room socket ----------------------------------------------------------------------------

# Opening the room socket, then its frames (`message.send`; `typing` and `ping` stay allowed for all
# who are in). Edits and reactions go over REST: their rows are in FORBIDS.
SOCKET = {
    "anonymous": ("closed", 4401),
    "nonmember": ("closed", 4403),
    "banned": ("closed", 4403),
    "staff": ("closed", 4403),
    "member": ("open", None),
    "admin": ("open", None),
    "owner": ("open", None),
    "muted": ("open", "muted"),  # open, reading; each write answered with an error frame
}


@pytest.fixture(scope="module")
def socket_world(django_db_setup: Any, django_db_blocker: Any, mongo_url: str) -> Iterator[World]:
    with django_db_blocker.unblock():
        world = World()
    yield world
    with django_db_blocker.unblock():
        world.room.delete()
        User.objects.filter(pk__in=[u.pk for u in world.users.values()]).delete()


@pytest.fixture(scope="module")
def server(django_db_setup: Any, mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(Path(tmp_path_factory.mktemp("moderation-ws"))) as process:
        yield process


@pytest.mark.django_db
@pytest.mark.parametrize("actor", ACTORS)
async def test_room_socket(actor: str, socket_world: World, server: ServerProcess) -> None:
    world = socket_world
    state, detail = SOCKET[actor]
    async with connect(server.ws_url(world.room.pk), world.token(actor)) as ws:
        if state == "closed":
            assert await close_code(ws) == detail
            return
        await ws.send(json.dumps({"type": "message.send", "body": f"matrix {actor}", "client_id": f"mx-{actor}"}))
        if detail == "muted":
            assert (await recv_until(ws, "error"))["code"] == "muted"
        else:
            assert (await recv_until(ws, "message.ack"))["client_id"] == f"mx-{actor}"
        await ws.send('{"type": "typing"}')  # reading and typing stay allowed
        await ws.send('{"type": "ping"}')
        await recv_until(ws, "pong")  # still open
