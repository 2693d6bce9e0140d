"""The authorisation matrix: every HTTP route and method, the WebSocket routes and every client
frame type, against every kind of caller, as ../shared/API.md (the public contract) says.

- `ROUTES` has one row per (URL pattern, HTTP method), `WS_ROUTES` one per socket route and
  `CLIENT_FRAMES` one per client frame type; each row says what each actor gets.
- The completeness tests walk the URL resolver, the ASGI-level routes of files/streaming.py, the
  socket routing and the consumer's frame dispatch table: a route, a method or a frame type added
  without a row fails them (and a row for something that no longer exists fails them too).
- The matrix tests send each row's request as each actor against a fresh world (one per test, so a
  removal or a deletion never leaks into the next case); `RULES` adds the cases one request per row
  cannot show (who may make owners, the last owner, a member who is not the author, CSRF...).
- What another thread or process must read (the tus PATCH handler before Django, the socket server)
  gets a committed world instead, one per module; no case there changes what another one sees.
- Actors: anonymous, a signed-in non-member, a member, a room admin, the room owner, and staff (a
  site `is_staff` user who is in no room).
- Where the server disagrees with the contract the row keeps the contract's answer and the case is
  `xfail(strict=True)` with the reason (`Expect.bug`); fixing the server turns it into a failure that
  asks for the mark to go.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import inspect
import json
import re
import textwrap
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, ClientHandler, encode_multipart
from django.urls import URLPattern, URLResolver, get_resolver, path, re_path, resolve
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import User
from accounts.services import tokens_for
from accounts.ws_auth import ticket_issue
from files import services as file_services
from files import streaming
from files.models import Upload
from messaging import store
from messaging.rendering import render_body
from notifications.models import Notification
from realtime import consumers, routing
from realtime.stream import UserStreamConsumer
from rooms.invites import invite_create
from rooms.models import Membership, Role, Room
from search import indexing
from tests.asgi_call import call_asgi
from tests.live import ServerProcess, bearer, close_code, connect, recv_json, running_server
from tests.push_endpoint import Browser, vapid_key_pair
from tests.test_uploads import png_bytes

PASSWORD = "correct horse battery staple"

# --- the actors ---------------------------------------------------------------------------------

ANON, NONMEMBER, MEMBER, ADMIN, OWNER, STAFF = "anonymous", "nonmember", "member", "admin", "owner", "staff"
ACTORS = (ANON, NONMEMBER, MEMBER, ADMIN, OWNER, STAFF)
ROOM_KINDS = ("public", "private")
MEMBER_ROLES = {MEMBER: Role.MEMBER, ADMIN: Role.ADMIN, OWNER: Role.OWNER}


@dataclass(frozen=True)
class Expect:
    """One cell: the status (an int, or a class such as "3xx"; on a socket OPEN, a reply frame type
    or a close code), the error body's `code`, a redirect's Location prefix."""

    status: int | str
    code: str | None = None
    location: str | None = None
    bug: str | None = None  # the server breaks the contract here: the case is xfail(strict) with this reason
    note: str = ""


E = Expect
UNAUTH = E(401, "not_authenticated")
NOT_MEMBER = E(403, "not_a_member")
NO_ROOM = E(404, "room_not_found")
NO_MESSAGE = E(404, "message_not_found")
NOT_MANAGER = E(403, "not_a_manager")
NO_BAN = E(404, "ban_not_found", note="nobody is banned: the moderator got past the rules to the lookup")
NO_MUTE = E(404, "mute_not_found", note="nobody is muted: the moderator got past the rules to the lookup")
NO_FILE = E(404, "file_not_found")
NO_UPLOAD = E(404, "upload_not_found")
ROLE_IRRELEVANT = "not about a room: the room role is irrelevant, any signed-in user gets this"


def cols(
    *, anonymous: Expect, nonmember: Expect, member: Expect, admin: Expect, owner: Expect, staff: Expect
) -> dict[str, Expect]:
    return {ANON: anonymous, NONMEMBER: nonmember, MEMBER: member, ADMIN: admin, OWNER: owner, STAFF: staff}


def signed_in(answer: Expect, anonymous: Expect = UNAUTH, note: str = ROLE_IRRELEVANT) -> dict[str, Expect]:
    """A route that is not about a room: the columns exist, the room role does not matter."""
    same = E(answer.status, answer.code, answer.location, answer.bug, note)
    return cols(anonymous=anonymous, nonmember=same, member=same, admin=same, owner=same, staff=same)


def anyone(answer: Expect, note: str = "open to everyone, signed in or not") -> dict[str, Expect]:
    return signed_in(answer, anonymous=answer, note=note)


def members(answer: Expect, *, outsider: Expect, anonymous: Expect = UNAUTH) -> dict[str, Expect]:
    """Members (any role) get `answer`; the non-member and staff (a non-member too) get `outsider`."""
    return cols(anonymous=anonymous, nonmember=outsider, member=answer, admin=answer, owner=answer, staff=outsider)


def moderators(answer: Expect, *, outsider: Expect) -> dict[str, Expect]:
    """Owners, admins and staff (who moderate every room) get `answer`; plain members 403."""
    return cols(anonymous=UNAUTH, nonmember=outsider, member=NOT_MANAGER, admin=answer, owner=answer, staff=answer)


def managers(answer: Expect, *, outsider: Expect) -> dict[str, Expect]:
    """Owners and admins get `answer`, plain members 403 `not_a_manager`."""
    return cols(anonymous=UNAUTH, nonmember=outsider, member=NOT_MANAGER, admin=answer, owner=answer, staff=outsider)


# --- the world ----------------------------------------------------------------------------------


class World:
    """A public and a private room owned by `owner`, with `admin`, `member` and `target` (a second
    plain member, the one member-management requests act on); `nonmember`, `staff` (is_staff, in no
    room) and `candidate` (in no room, the one added). Messages (by `member`, with a reaction by
    `owner`) and uploads (by `member`) are made the first time a case needs them. Rows are made
    with the ORM and the services, never over HTTP."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        hashed = make_password(PASSWORD)
        names = [NONMEMBER, MEMBER, ADMIN, OWNER, STAFF, "target", "candidate"]
        made = User.objects.bulk_create(
            [User(username=f"{name}_{tag}", password=hashed, is_staff=name == STAFF) for name in names]
        )
        people = dict(zip(names, made, strict=True))
        self.target = people.pop("target")
        self.candidate = people.pop("candidate")
        self.users: dict[str, User] = people
        self.rooms: dict[str, Room] = {}
        self.tokens: dict[str, str] = {}  # access tokens, made ahead where a case cannot reach the database
        self.sessions: dict[str, str] = {}  # the committed world: a signed-in session (its key) per actor
        self.leavers: dict[str, User] = {}  # the committed world: a member per room that gets removed
        self.case_partials: dict[tuple[str, str], Upload] = {}  # the committed world: a partial per ASGI case
        for kind in ROOM_KINDS:
            room = Room.objects.create(name=f"{kind}-{tag}", created_by=people[OWNER], is_private=kind == "private")
            self.rooms[kind] = room
        Membership.objects.bulk_create(
            [
                Membership(room=room, user=people[actor], role=role)
                for room in self.rooms.values()
                for actor, role in MEMBER_ROLES.items()
            ]
            + [Membership(room=room, user=self.target, role=Role.MEMBER) for room in self.rooms.values()]
        )

    def user(self, actor: str) -> User | None:
        return self.users.get(actor)

    def is_member(self, actor: str) -> bool:
        return actor in MEMBER_ROLES

    @cached_property
    def invites(self) -> dict[str, str]:
        """An invite code per room kind, made by `owner`."""
        owner = self.users[OWNER]
        return {kind: invite_create(actor=owner, room_id=room.pk).code for kind, room in self.rooms.items()}

    @cached_property
    def messages(self) -> dict[str, str]:
        """A message by `member` in each room, with a reaction by `owner`: the id per room kind.

        Straight into the store: the services would also announce them (sockets, the search index),
        which costs more than the rest of the world together and no case but search needs.
        """
        ids = {}
        for kind, room in self.rooms.items():
            body = "hello matrix"
            stored, _, _ = store.insert_message(
                room_id=room.pk,
                author_id=self.users[MEMBER].pk,
                body=body,
                rendered=render_body(body, lambda names: {}),
                now=timezone.now(),
            )
            store.set_reaction(
                room_id=room.pk,
                message_id=stored.id,
                emoji="👍",
                user_id=self.users[OWNER].pk,
                present=True,
                max_distinct=50,
            )
            ids[kind] = stored.id
        return ids

    @cached_property
    def indexed(self) -> bool:
        """The messages, in the search index (what the announcement's task would have done)."""
        assert self.messages
        for room in self.rooms.values():
            indexing.catch_up_room(room.pk)
        return True

    def build(self, part: str) -> None:
        getattr(self, part)

    def delete(self) -> None:
        """For a world outside a test transaction (the sockets' one): everything it made."""
        Room.objects.filter(pk__in=[room.pk for room in self.rooms.values()]).delete()
        people = [*self.users.values(), *self.leavers.values(), self.target, self.candidate]
        User.objects.filter(pk__in=[user.pk for user in people]).delete()

    @cached_property
    def uploads(self) -> dict[str, Upload]:
        """A complete upload (an attachment with a thumbnail) by `member` in each room."""
        done = {}
        for kind, room in self.rooms.items():
            upload = file_services.store_small_file(
                user=self.users[MEMBER], room_id=room.pk, uploaded=SimpleUploadedFile("note.txt", b"hello file")
            )
            upload.thumbnail_name = default_storage.save(f"thumbs/{upload.pk}.webp", ContentFile(b"RIFF\0\0\0\0WEBP"))
            upload.save(update_fields=["thumbnail_name"])
            done[kind] = upload
        return done

    @cached_property
    def partials(self) -> dict[str, Upload]:
        """An unfinished tus upload of 4 bytes by `member` in each room."""
        return {
            kind: file_services.upload_create(user=self.users[MEMBER], room_id=room.pk, length=4, name="part.bin")
            for kind, room in self.rooms.items()
        }

    @cached_property
    def target_uploads(self) -> dict[str, Upload]:
        """A complete upload by `target` (another member) in each room."""
        return {
            kind: file_services.store_small_file(
                user=self.target, room_id=room.pk, uploaded=SimpleUploadedFile("theirs.txt", b"not yours")
            )
            for kind, room in self.rooms.items()
        }

    @cached_property
    def target_partials(self) -> dict[str, Upload]:
        """An unfinished upload by `target` in each room."""
        return {
            kind: file_services.upload_create(user=self.target, room_id=room.pk, length=4, name="theirs.bin")
            for kind, room in self.rooms.items()
        }

    @cached_property
    def target_notification(self) -> Notification:
        """A notice for `target` (a mention by `member` in the public room)."""
        return Notification.objects.create(
            user=self.target,
            type="mention",
            room=self.rooms["public"],
            message_id=self.messages["public"],
            actor=self.users[MEMBER],
            created_at=timezone.now(),
        )


class PathVars(Mapping[str, str]):
    """What a row's path template names, made only when asked for (messages and files cost)."""

    def __init__(
        self, world: World, kind: str, *, sample_ids: bool = False, overrides: Mapping[str, str] | None = None
    ) -> None:
        self.world = world
        self.kind = kind
        self.sample_ids = sample_ids  # OPTIONS never looks its ids up: no need to make messages and files
        self.overrides = overrides or {}

    def __getitem__(self, key: str) -> str:
        world, kind = self.world, self.kind
        if key in self.overrides:
            return self.overrides[key]
        if self.sample_ids and key in ("message", "upload", "partial"):
            return SampleVars()[key]
        getters: dict[str, Callable[[], object]] = {
            "room": lambda: world.rooms[kind].pk,
            "message": lambda: world.messages[kind],
            "upload": lambda: world.uploads[kind].pk,
            "partial": lambda: world.partials[kind].pk,
            "target": lambda: world.target.pk,
            "owner_id": lambda: world.users[OWNER].pk,
            "admin_id": lambda: world.users[ADMIN].pk,
            "member_id": lambda: world.users[MEMBER].pk,
            "target_upload": lambda: world.target_uploads[kind].pk,
            "target_partial": lambda: world.target_partials[kind].pk,
            "room_name": lambda: world.rooms[kind].name,
            "invite": lambda: world.invites[kind],
        }
        return str(getters[key]())

    def __iter__(self) -> Iterator[str]:
        return iter(("room", "message", "upload", "partial", "target"))

    def __len__(self) -> int:
        return 5


class SampleVars(Mapping[str, str]):
    """Made-up values for a row's path: enough to see which route it reaches."""

    made_up = {"room": "7", "message": "6650f0c2a1b2c3d4e5f60718", "upload": str(uuid.UUID(int=1))}

    def __getitem__(self, key: str) -> str:
        return self.made_up.get(key, self.made_up["upload"] if key in ("partial", "target_partial") else "3")

    def __iter__(self) -> Iterator[str]:
        return iter(self.made_up)

    def __len__(self) -> int:
        return len(self.made_up)


# --- the HTTP rows ------------------------------------------------------------------------------

Body = Callable[[World, str], Any]


@dataclass(frozen=True)
class Row:
    """How to send the request, and what each actor gets.

    `public` holds the columns (for a room route: against the public room); a room route also has
    `private`, the columns against the private room. Path templates name `{room}`, `{message}` (by
    `member`), `{upload}` (complete, by `member`), `{partial}` (unfinished, by `member`), `{target}`.
    """

    path: str
    public: Mapping[str, Expect]
    private: Mapping[str, Expect] | None = None
    json: Body | None = None  # a JSON body, made for (world, actor)
    form: Body | None = None  # a form (web pages)
    multipart: Body | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    session: bool = False  # web pages: signed in with the session cookie, not a bearer token
    csrf: str | None = None  # with the session: None, CSRF checks off (the test client's way); "missing" or "sent"
    asgi: bool = False  # answered before Django (files/streaming.py): sent through the ASGI application
    check: Callable[[Answer, World, str, str], None] | None = None  # more to see in a successful answer
    needs: tuple[str, ...] = ()  # parts of the world to make even though the path does not name them


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # the JSON body, or None
    text: bytes = b""


def fresh_name(world: World, actor: str) -> str:
    return f"new_{actor}_{uuid.uuid4().hex[:8]}"


def member_login(world: World, actor: str) -> dict[str, str]:
    return {"username": world.users[MEMBER].username, "password": PASSWORD}


def staff_login(world: World, actor: str) -> dict[str, str]:
    return {"username": world.users[STAFF].username, "password": PASSWORD}


def refresh_token(world: World, actor: str) -> dict[str, str]:
    return {"refresh": tokens_for(world.users.get(actor) or world.users[MEMBER]).refresh}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


TUS = {"Tus-Resumable": "1.0.0"}
TUS_CREATE = {**TUS, "Upload-Length": "4", "Upload-Metadata": metadata(filename="new.bin")}
TUS_PATCH = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}


def rooms_listed_are_the_callers(answer: Answer, world: World, actor: str, kind: str) -> None:
    listed = {item["id"] for item in answer.body["results"]}
    world_rooms = {str(room.pk) for room in world.rooms.values()}
    expected = world_rooms if world.is_member(actor) else set()
    assert listed & world_rooms == expected, f"{actor} sees rooms {listed & world_rooms}"


def search_finds_only_the_callers_rooms(answer: Answer, world: World, actor: str, kind: str) -> None:
    found = {item["room_id"] for item in answer.body["results"]}
    world_rooms = {str(room.pk) for room in world.rooms.values()}
    expected = world_rooms if world.is_member(actor) else set()
    assert found & world_rooms == expected, f"{actor} finds messages of rooms {found & world_rooms}"


def notifications_are_the_callers(answer: Answer, world: World, actor: str, kind: str) -> None:
    shown = {item["id"] for item in answer.body["results"]}
    assert str(world.target_notification.pk) not in shown, "another user's notice"
    mine = {str(pk) for pk in Notification.objects.filter(user=world.user(actor)).values_list("pk", flat=True)}
    assert shown <= mine


def page_shows_messages_to_members_only(answer: Answer, world: World, actor: str, kind: str) -> None:
    """The page is rendered on the server: a member's carries the room's messages, anyone else's
    none of them (and, for a private room, not even its name)."""
    body = b"hello matrix"
    if world.is_member(actor):
        assert world.rooms[kind].name.encode() in answer.text and body in answer.text
        return
    assert body not in answer.text
    if kind == "private":
        assert world.rooms[kind].name.encode() not in answer.text


OPTIONS_API = signed_in(E(200), note="DRF's OPTIONS metadata; the room is not looked at")
OPTIONS_TUS = signed_in(E(204), note="tus discovery (Tus-Version, Tus-Extension); the room is not looked at")
OPTIONS_OPEN = anyone(E(200), note="DRF's OPTIONS metadata of an open endpoint")

ROOM = "(?P<room_id>[^/]+)"
MSG = "(?P<message_id>[^/]+)"

ROUTES: dict[tuple[str, str], Row] = {
    # --- web pages (session cookie) ---
    ("", "GET"): Row(
        "/",
        signed_in(E(302, location="/chat/"), anonymous=E(302, location="/login/"), note="redirect; no room"),
        session=True,
    ),
    ("login/", "GET"): Row("/login/", anyone(E(200)), session=True),
    ("login/", "POST"): Row(
        "/login/", anyone(E(302, location="/chat/"), note="signs in as `member`"), form=member_login, session=True
    ),
    ("register/", "GET"): Row("/register/", anyone(E(200)), session=True),
    ("register/", "POST"): Row(
        "/register/",
        anyone(E(302, location="/chat/"), note="a new account"),
        form=lambda w, a: {"username": fresh_name(w, a), "password": PASSWORD},
        session=True,
    ),
    ("logout/", "POST"): Row("/logout/", anyone(E(302, location="/login/")), session=True),
    ("chat/", "GET"): Row(
        "/chat/", signed_in(E(200), anonymous=E(302, location="/login/"), note="the app shell"), session=True
    ),
    ("chat/<int:room_id>/", "GET"): Row(
        "/chat/{room}/",
        signed_in(E(200), anonymous=E(302, location="/login/"), note="non-members see the room and a Join button"),
        members(E(200), outsider=E(404), anonymous=E(302, location="/login/")),
        session=True,
        check=page_shows_messages_to_members_only,
        needs=("messages",),
    ),
    ("invite/<str:code>/", "GET"): Row(
        "/invite/{invite}/",
        signed_in(E(200), anonymous=E(302, location="/login/"), note="the room and a Join button"),
        signed_in(E(200), anonymous=E(302, location="/login/"), note="a private room's too"),
        session=True,
    ),
    ("invite/<str:code>/", "POST"): Row(
        "/invite/{invite}/",
        signed_in(E(302, location="/chat/"), anonymous=E(302, location="/login/"), note="joins, then the room"),
        signed_in(E(302, location="/chat/"), anonymous=E(302, location="/login/")),
        form=lambda w, a: {},
        session=True,
    ),
    ("unsubscribe/<str:token>/", "GET"): Row(
        "/unsubscribe/not-a-signed-token/",
        anyone(E(400), note="the signed token in a digest e-mail is the only proof (tests/test_email_digest.py)"),
        session=True,
    ),
    ("unsubscribe/<str:token>/", "POST"): Row(
        "/unsubscribe/not-a-signed-token/",
        anyone(E(400), note="RFC 8058 one-click: no session, no CSRF; the token decides"),
        form=lambda w, a: {"List-Unsubscribe": "One-Click"},
        session=True,
    ),
    ("sw.js", "GET"): Row("/sw.js", anyone(E(200), note="the service worker script, as any static file")),
    ("health", "GET"): Row("/health", anyone(E(200))),
    ("health/ready", "GET"): Row("/health/ready", anyone(E(200))),
    ("metrics", "GET"): Row("/metrics", anyone(E(200), note="no METRICS_TOKEN set: loopback callers only")),
    ("admin/login/", "GET"): Row(
        "/admin/login/",
        cols(
            anonymous=E(200),
            nonmember=E(200),
            member=E(200),
            admin=E(200),
            owner=E(200),
            staff=E(302, location="/admin/"),
        ),
        session=True,
    ),
    ("admin/login/", "POST"): Row(
        "/admin/login/",
        anyone(E(302, location="/admin/"), note="signs in as `staff`"),
        form=lambda w, a: {**staff_login(w, a), "next": "/admin/"},
        session=True,
    ),
    ("admin/", "*"): Row(
        "/admin/",
        cols(
            anonymous=E(302, location="/admin/login/"),
            nonmember=E(302, location="/admin/login/"),
            member=E(302, location="/admin/login/"),
            admin=E(302, location="/admin/login/"),
            owner=E(302, location="/admin/login/"),
            staff=E(200, note="site staff, whatever their rooms"),
        ),
        session=True,
    ),
    ("api-auth/login/", "GET"): Row("/api-auth/login/", anyone(E(200)), session=True),
    ("api-auth/login/", "POST"): Row(
        "/api-auth/login/", anyone(E(302), note="signs in as `member`"), form=member_login, session=True
    ),
    ("api-auth/login/", "PUT"): Row(
        "/api-auth/login/", anyone(E(200), note="Django's LoginView: PUT shows the form again"), session=True
    ),
    ("api-auth/login/", "OPTIONS"): Row("/api-auth/login/", anyone(E(200)), session=True),
    ("api-auth/", "*"): Row("/api-auth/logout/", anyone(E("2xx"), note="POST logout/"), session=True),
    ("api/schema/", "GET"): Row("/api/schema/", anyone(E(200))),
    ("api/schema/", "OPTIONS"): Row("/api/schema/", OPTIONS_OPEN),
    ("api/docs/", "GET"): Row("/api/docs/", anyone(E(200))),
    ("api/docs/", "OPTIONS"): Row("/api/docs/", OPTIONS_OPEN),
    # --- accounts ---
    ("api/auth/register/?$", "POST"): Row(
        "/api/auth/register",
        anyone(E(201), note="no authentication: a bearer token is ignored"),
        json=lambda w, a: {"username": fresh_name(w, a), "password": PASSWORD},
    ),
    ("api/auth/register/?$", "OPTIONS"): Row("/api/auth/register", OPTIONS_OPEN),
    ("api/auth/login/?$", "POST"): Row("/api/auth/login", anyone(E(200)), json=member_login),
    ("api/auth/login/?$", "OPTIONS"): Row("/api/auth/login", OPTIONS_OPEN),
    ("api/auth/refresh/?$", "POST"): Row("/api/auth/refresh", anyone(E(200)), json=refresh_token),
    ("api/auth/refresh/?$", "OPTIONS"): Row("/api/auth/refresh", OPTIONS_OPEN),
    ("api/auth/logout/?$", "POST"): Row("/api/auth/logout", anyone(E(204)), json=refresh_token),
    ("api/auth/logout/?$", "OPTIONS"): Row("/api/auth/logout", OPTIONS_OPEN),
    ("api/auth/me/?$", "GET"): Row("/api/auth/me", signed_in(E(200))),
    ("api/auth/me/?$", "OPTIONS"): Row("/api/auth/me", OPTIONS_API),
    ("api/auth/ws-ticket/?$", "POST"): Row("/api/auth/ws-ticket", signed_in(E(201))),
    ("api/auth/ws-ticket/?$", "OPTIONS"): Row("/api/auth/ws-ticket", OPTIONS_API),
    ("api/auth/me/?$", "PATCH"): Row(
        "/api/auth/me", signed_in(E(200), note="one's own account only"), json=lambda w, a: {"display_name": "Renamed"}
    ),
    ("api/auth/password/?$", "POST"): Row(
        "/api/auth/password",
        signed_in(E(204), note="one's own password"),
        json=lambda w, a: {"old_password": PASSWORD, "new_password": "an entirely new passphrase 77"},
    ),
    ("api/auth/password/?$", "OPTIONS"): Row("/api/auth/password", OPTIONS_API),
    ("api/rooms/directory/?$", "GET"): Row(
        "/api/rooms/directory", signed_in(E(200), note="public rooms only, members or not")
    ),
    ("api/rooms/directory/?$", "OPTIONS"): Row("/api/rooms/directory", OPTIONS_API),
    ("api/dms/?$", "POST"): Row(
        "/api/dms",
        signed_in(E("2xx"), note="a direct room of one's own with the target"),
        json=lambda w, a: {"user_ids": [str(w.target.pk)]},
    ),
    ("api/dms/?$", "OPTIONS"): Row("/api/dms", OPTIONS_API),
    # --- people ---
    ("api/users/?$", "GET"): Row("/api/users?q=a", signed_in(E(200), note="active accounts, public shape only")),
    ("api/users/?$", "OPTIONS"): Row("/api/users", OPTIONS_API),
    ("api/users/(?P<user_id>[^/]+)/?$", "GET"): Row("/api/users/{target}", signed_in(E(200))),
    ("api/users/(?P<user_id>[^/]+)/?$", "OPTIONS"): Row("/api/users/{target}", OPTIONS_API),
    ("api/users/(?P<user_id>[^/]+)/block/?$", "POST"): Row(
        "/api/users/{target}/block", signed_in(E(204), note="one's own block list")
    ),
    ("api/users/(?P<user_id>[^/]+)/block/?$", "DELETE"): Row(
        "/api/users/{target}/block", signed_in(E(204), note="one's own block list")
    ),
    ("api/users/(?P<user_id>[^/]+)/block/?$", "OPTIONS"): Row("/api/users/{target}/block", OPTIONS_API),
    ("api/auth/blocks/?$", "GET"): Row("/api/auth/blocks", signed_in(E(200), note="one's own block list")),
    ("api/auth/blocks/?$", "OPTIONS"): Row("/api/auth/blocks", OPTIONS_API),
    ("api/auth/me/avatar/?$", "PUT"): Row(
        "/api/auth/me/avatar",
        signed_in(E(200), note="one's own picture"),
        multipart=lambda w, a: {"file": SimpleUploadedFile("me.png", png_bytes(), content_type="image/png")},
    ),
    ("api/auth/me/avatar/?$", "DELETE"): Row("/api/auth/me/avatar", signed_in(E(204), note="one's own picture")),
    ("api/auth/me/avatar/?$", "OPTIONS"): Row("/api/auth/me/avatar", OPTIONS_API),
    ("api/users/(?P<user_id>[^/]+)/avatar/?$", "GET"): Row(
        "/api/users/{target}/avatar", signed_in(E(200, note="a picture, or initials"))
    ),
    ("api/users/(?P<user_id>[^/]+)/avatar/?$", "OPTIONS"): Row("/api/users/{target}/avatar", OPTIONS_API),
    # --- rooms ---
    ("api/rooms/$", "GET"): Row(
        "/api/rooms/", signed_in(E(200), note="the caller's own rooms only"), check=rooms_listed_are_the_callers
    ),
    ("api/rooms/$", "POST"): Row("/api/rooms/", signed_in(E(201)), json=lambda w, a: {"name": "made by the matrix"}),
    ("api/rooms/$", "OPTIONS"): Row("/api/rooms/", OPTIONS_API),
    (f"api/rooms/{ROOM}/?$", "GET"): Row(
        "/api/rooms/{room}",
        members(E(200), outsider=E(200, note="public rooms are visible to every signed-in user")),
        members(E(200), outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/?$", "PATCH"): Row(
        "/api/rooms/{room}",
        managers(E(200), outsider=NOT_MEMBER),
        managers(E(200), outsider=NO_ROOM),
        json=lambda w, a: {"description": "changed by the matrix"},
    ),
    (f"api/rooms/{ROOM}/?$", "OPTIONS"): Row("/api/rooms/{room}", OPTIONS_API),
    (f"api/rooms/{ROOM}/join/?$", "POST"): Row(
        "/api/rooms/{room}/join",
        signed_in(E(200), note="anyone joins a public room; members again, harmlessly"),
        members(E(200, note="already a member: harmless"), outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/join/?$", "OPTIONS"): Row("/api/rooms/{room}/join", OPTIONS_API),
    (f"api/rooms/{ROOM}/members/?$", "GET"): Row(
        "/api/rooms/{room}/members", members(E(200), outsider=NOT_MEMBER), members(E(200), outsider=NO_ROOM)
    ),
    (f"api/rooms/{ROOM}/members/?$", "POST"): Row(
        "/api/rooms/{room}/members",
        managers(E(201), outsider=NOT_MEMBER),
        managers(E(201), outsider=NO_ROOM),
        json=lambda w, a: {"user_id": str(w.candidate.pk)},
    ),
    (f"api/rooms/{ROOM}/members/?$", "OPTIONS"): Row("/api/rooms/{room}/members", OPTIONS_API),
    (f"api/rooms/{ROOM}/members/(?P<user_id>[^/]+)/?$", "PATCH"): Row(
        "/api/rooms/{room}/members/{target}",
        managers(E(200), outsider=NOT_MEMBER),
        managers(E(200), outsider=NO_ROOM),
        json=lambda w, a: {"role": "admin"},
    ),
    (f"api/rooms/{ROOM}/members/(?P<user_id>[^/]+)/?$", "DELETE"): Row(
        "/api/rooms/{room}/members/{target}",
        managers(E(204), outsider=NOT_MEMBER),
        managers(E(204), outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/members/(?P<user_id>[^/]+)/?$", "OPTIONS"): Row(
        "/api/rooms/{room}/members/{target}", OPTIONS_API
    ),
    (f"api/rooms/{ROOM}/read/?$", "POST"): Row(
        "/api/rooms/{room}/read",
        members(E(204), outsider=NOT_MEMBER),
        members(E(204), outsider=NO_ROOM),
        json=lambda w, a: {"seq": 1},
    ),
    (f"api/rooms/{ROOM}/read/?$", "OPTIONS"): Row("/api/rooms/{room}/read", OPTIONS_API),
    (f"api/rooms/{ROOM}/settings/?$", "GET"): Row(
        "/api/rooms/{room}/settings",
        members(E(200, note="one's own settings"), outsider=NOT_MEMBER),
        members(E(200), outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/settings/?$", "PATCH"): Row(
        "/api/rooms/{room}/settings",
        members(E(200, note="one's own settings"), outsider=NOT_MEMBER),
        members(E(200), outsider=NO_ROOM),
        json=lambda w, a: {"notify": "all"},
    ),
    (f"api/rooms/{ROOM}/settings/?$", "OPTIONS"): Row("/api/rooms/{room}/settings", OPTIONS_API),
    (f"api/rooms/{ROOM}/presence/?$", "GET"): Row(
        "/api/rooms/{room}/presence", members(E(200), outsider=NOT_MEMBER), members(E(200), outsider=NO_ROOM)
    ),
    (f"api/rooms/{ROOM}/presence/?$", "OPTIONS"): Row("/api/rooms/{room}/presence", OPTIONS_API),
    (f"api/rooms/{ROOM}/invites/?$", "GET"): Row(
        "/api/rooms/{room}/invites", managers(E(200), outsider=NOT_MEMBER), managers(E(200), outsider=NO_ROOM)
    ),
    (f"api/rooms/{ROOM}/invites/?$", "POST"): Row(
        "/api/rooms/{room}/invites",
        managers(E(201), outsider=NOT_MEMBER),
        managers(E(201), outsider=NO_ROOM),
        json=lambda w, a: {"max_uses": 5, "expires_in": 3600},
    ),
    (f"api/rooms/{ROOM}/invites/?$", "OPTIONS"): Row("/api/rooms/{room}/invites", OPTIONS_API),
    (f"api/rooms/{ROOM}/invites/(?P<code>[^/]+)/?$", "DELETE"): Row(
        "/api/rooms/{room}/invites/{invite}",
        managers(E(204), outsider=NOT_MEMBER),
        managers(E(204), outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/invites/(?P<code>[^/]+)/?$", "OPTIONS"): Row("/api/rooms/{room}/invites/{invite}", OPTIONS_API),
    ("api/invites/(?P<code>[^/]+)/?$", "GET"): Row(
        "/api/invites/{invite}",
        signed_in(E(200), note="anyone signed in who holds the code"),
        signed_in(E(200), note="a private room's too: the code is the key"),
    ),
    ("api/invites/(?P<code>[^/]+)/?$", "OPTIONS"): Row("/api/invites/{invite}", OPTIONS_API),
    ("api/invites/(?P<code>[^/]+)/accept/?$", "POST"): Row(
        "/api/invites/{invite}/accept",
        signed_in(E(200), note="joins (members again: harmless, no use counted)"),
        signed_in(E(200), note="a private room too"),
    ),
    ("api/invites/(?P<code>[^/]+)/accept/?$", "OPTIONS"): Row("/api/invites/{invite}/accept", OPTIONS_API),
    # --- messages ---
    ("api/messages/(?P<ident>[^/]+)/?$", "GET"): Row(
        "/api/messages/{room}", members(E(200), outsider=NOT_MEMBER), members(E(200), outsider=NO_ROOM)
    ),
    ("api/messages/(?P<ident>[^/]+)/?$", "POST"): Row(
        "/api/messages/{room}",
        members(E(201), outsider=NOT_MEMBER),
        members(E(201), outsider=NO_ROOM),
        json=lambda w, a: {"body": "posted by the matrix"},
    ),
    ("api/messages/(?P<ident>[^/]+)/?$", "PUT"): Row(
        "/api/messages/{message}",
        cols(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=E(200, note="the author"),
            admin=E(403, "not_author"),
            owner=E(403, "not_author"),
            staff=NOT_MEMBER,
        ),
        cols(
            anonymous=UNAUTH,
            nonmember=NO_MESSAGE,
            member=E(200, note="the author"),
            admin=E(403, "not_author"),
            owner=E(403, "not_author"),
            staff=NO_MESSAGE,
        ),
        json=lambda w, a: {"body": "edited by the matrix"},
    ),
    ("api/messages/(?P<ident>[^/]+)/?$", "DELETE"): Row(
        "/api/messages/{message}",
        cols(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=E(204, note="the author"),
            admin=E(204),
            owner=E(204),
            staff=E(204, note="staff moderate every room"),
        ),
        cols(
            anonymous=UNAUTH,
            nonmember=NO_MESSAGE,
            member=E(204, note="the author"),
            admin=E(204),
            owner=E(204),
            staff=E(204, note="staff moderate every room"),
        ),
    ),
    ("api/messages/(?P<ident>[^/]+)/?$", "OPTIONS"): Row("/api/messages/{room}", OPTIONS_API),
    (f"api/messages/{MSG}/react/?$", "POST"): Row(
        "/api/messages/{message}/react",
        members(E(200), outsider=NOT_MEMBER),
        members(E(200), outsider=NO_MESSAGE),
        json=lambda w, a: {"emoji": "🎉"},
    ),
    (f"api/messages/{MSG}/react/?$", "DELETE"): Row(
        "/api/messages/{message}/react",
        members(E(200), outsider=NOT_MEMBER),
        members(E(200), outsider=NO_MESSAGE),
        json=lambda w, a: {"emoji": "👍"},
    ),
    (f"api/messages/{MSG}/react/?$", "OPTIONS"): Row("/api/messages/{message}/react", OPTIONS_API),
    (f"api/messages/{MSG}/history/?$", "GET"): Row(
        "/api/messages/{message}/history",
        members(E(200), outsider=NOT_MEMBER),
        members(E(200), outsider=NO_MESSAGE),
    ),
    (f"api/messages/{MSG}/history/?$", "OPTIONS"): Row("/api/messages/{message}/history", OPTIONS_API),
    (f"api/messages/{MSG}/thread/?$", "GET"): Row(
        "/api/messages/{message}/thread",
        members(E(200), outsider=NOT_MEMBER),
        members(E(200), outsider=NO_MESSAGE),
    ),
    (f"api/messages/{MSG}/thread/?$", "OPTIONS"): Row("/api/messages/{message}/thread", OPTIONS_API),
    # --- search, notifications ---
    ("api/search", "GET"): Row(
        "/api/search?q=hello",
        signed_in(E(200), note="every room the caller is a member of: checked on the results"),
        check=search_finds_only_the_callers_rooms,
        needs=("indexed",),
    ),
    ("api/search", "OPTIONS"): Row("/api/search", OPTIONS_API),
    ("api/notifications/$", "GET"): Row(
        "/api/notifications/",
        signed_in(E(200), note="the caller's own: checked on the results"),
        check=notifications_are_the_callers,
        needs=("target_notification",),
    ),
    ("api/notifications/$", "OPTIONS"): Row("/api/notifications/", OPTIONS_API),
    ("api/notifications/read/?$", "POST"): Row(
        "/api/notifications/read", signed_in(E(200), note="the caller's own"), json=lambda w, a: {"all": True}
    ),
    ("api/notifications/read/?$", "OPTIONS"): Row("/api/notifications/read", OPTIONS_API),
    ("api/push/key/?$", "GET"): Row("/api/push/key", signed_in(E(200))),
    ("api/push/key/?$", "OPTIONS"): Row("/api/push/key", OPTIONS_API),
    ("api/push/subscriptions/?$", "POST"): Row(
        "/api/push/subscriptions",
        signed_in(E(201), note="one's own browser"),
        json=lambda w, a: Browser(f"https://8.8.8.8/push/{a}-{uuid.uuid4().hex}").subscription(),
    ),
    ("api/push/subscriptions/?$", "DELETE"): Row(
        "/api/push/subscriptions",
        signed_in(E(204), note="only one's own is forgotten"),
        json=lambda w, a: {"endpoint": "https://8.8.8.8/push/none"},
    ),
    ("api/push/subscriptions/?$", "OPTIONS"): Row("/api/push/subscriptions", OPTIONS_API),
    # --- moderation (tests/test_moderation_matrix.py adds the muted and banned columns) ---
    (f"api/rooms/{ROOM}/bans/?$", "GET"): Row(
        "/api/rooms/{room}/bans", moderators(E(200), outsider=NOT_MEMBER), moderators(E(200), outsider=NO_ROOM)
    ),
    (f"api/rooms/{ROOM}/bans/?$", "POST"): Row(
        "/api/rooms/{room}/bans",
        moderators(E(201), outsider=NOT_MEMBER),
        moderators(E(201), outsider=NO_ROOM),
        json=lambda w, a: {"user_id": str(w.target.pk), "reason": "matrix"},
    ),
    (f"api/rooms/{ROOM}/bans/?$", "OPTIONS"): Row("/api/rooms/{room}/bans", OPTIONS_API),
    (f"api/rooms/{ROOM}/bans/(?P<user_id>[^/]+)/?$", "DELETE"): Row(
        "/api/rooms/{room}/bans/{target}",
        moderators(NO_BAN, outsider=NOT_MEMBER),
        moderators(NO_BAN, outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/bans/(?P<user_id>[^/]+)/?$", "OPTIONS"): Row("/api/rooms/{room}/bans/{target}", OPTIONS_API),
    (f"api/rooms/{ROOM}/mutes/?$", "GET"): Row(
        "/api/rooms/{room}/mutes", moderators(E(200), outsider=NOT_MEMBER), moderators(E(200), outsider=NO_ROOM)
    ),
    (f"api/rooms/{ROOM}/mutes/?$", "POST"): Row(
        "/api/rooms/{room}/mutes",
        moderators(E(201), outsider=NOT_MEMBER),
        moderators(E(201), outsider=NO_ROOM),
        json=lambda w, a: {"user_id": str(w.target.pk)},
    ),
    (f"api/rooms/{ROOM}/mutes/?$", "OPTIONS"): Row("/api/rooms/{room}/mutes", OPTIONS_API),
    (f"api/rooms/{ROOM}/mutes/(?P<user_id>[^/]+)/?$", "DELETE"): Row(
        "/api/rooms/{room}/mutes/{target}",
        moderators(NO_MUTE, outsider=NOT_MEMBER),
        moderators(NO_MUTE, outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/mutes/(?P<user_id>[^/]+)/?$", "OPTIONS"): Row("/api/rooms/{room}/mutes/{target}", OPTIONS_API),
    (f"api/rooms/{ROOM}/audit/?$", "GET"): Row(
        "/api/rooms/{room}/audit", moderators(E(200), outsider=NOT_MEMBER), moderators(E(200), outsider=NO_ROOM)
    ),
    (f"api/rooms/{ROOM}/audit/?$", "OPTIONS"): Row("/api/rooms/{room}/audit", OPTIONS_API),
    (f"api/rooms/{ROOM}/reports/?$", "GET"): Row(
        "/api/rooms/{room}/reports?status=open",
        moderators(E(200), outsider=NOT_MEMBER),
        moderators(E(200), outsider=NO_ROOM),
    ),
    (f"api/rooms/{ROOM}/reports/?$", "OPTIONS"): Row("/api/rooms/{room}/reports", OPTIONS_API),
    (f"api/messages/{MSG}/report/?$", "POST"): Row(
        "/api/messages/{message}/report",
        cols(
            anonymous=UNAUTH,
            nonmember=NOT_MEMBER,
            member=E(400, "own_message", note="the message is the member's own"),
            admin=E(201),
            owner=E(201),
            staff=NOT_MEMBER,
        ),
        cols(
            anonymous=UNAUTH,
            nonmember=NO_MESSAGE,
            member=E(400, "own_message", note="the message is the member's own"),
            admin=E(201),
            owner=E(201),
            staff=NO_MESSAGE,
        ),
        json=lambda w, a: {"reason": "matrix"},
    ),
    (f"api/messages/{MSG}/report/?$", "OPTIONS"): Row("/api/messages/{message}/report", OPTIONS_API),
    ("api/reports/?$", "GET"): Row(
        "/api/reports?status=open", signed_in(E(403, "staff_only"), note="staff only") | {STAFF: E(200)}
    ),
    ("api/reports/?$", "OPTIONS"): Row("/api/reports", OPTIONS_API),
    ("api/reports/(?P<report_id>[^/]+)/resolve/?$", "POST"): Row(
        "/api/reports/999999999/resolve",
        signed_in(E(404, "report_not_found"), note="no such report; the rules: tests/test_moderation_matrix.py"),
        json=lambda w, a: {"action": "dismiss"},
    ),
    ("api/reports/(?P<report_id>[^/]+)/resolve/?$", "OPTIONS"): Row("/api/reports/1/resolve", OPTIONS_API),
    ("api/admin/users/(?P<user_id>[^/]+)/deactivate/?$", "POST"): Row(
        "/api/admin/users/{target}/deactivate",
        signed_in(E(403, "staff_only"), note="staff only") | {STAFF: E(204)},
    ),
    ("api/admin/users/(?P<user_id>[^/]+)/deactivate/?$", "OPTIONS"): Row(
        "/api/admin/users/{target}/deactivate", OPTIONS_API
    ),
    # --- files ---
    (f"api/rooms/{ROOM}/uploads/?$", "POST"): Row(
        "/api/rooms/{room}/uploads/",
        members(E(201), outsider=NOT_MEMBER),
        members(E(201), outsider=NO_ROOM),
        headers=TUS_CREATE,
    ),
    (f"api/rooms/{ROOM}/uploads/?$", "OPTIONS"): Row("/api/rooms/{room}/uploads/", OPTIONS_TUS),
    (f"api/rooms/{ROOM}/files/?$", "POST"): Row(
        "/api/rooms/{room}/files",
        members(E(201), outsider=NOT_MEMBER),
        members(E(201), outsider=NO_ROOM),
        multipart=lambda w, a: {"file": SimpleUploadedFile("small.txt", b"small file")},
    ),
    (f"api/rooms/{ROOM}/files/?$", "OPTIONS"): Row("/api/rooms/{room}/files", OPTIONS_API),
    ("api/uploads/(?P<upload_id>[^/]+)/?$", "GET"): Row(
        "/api/uploads/{upload}",
        members(E(200), outsider=NO_FILE),
        members(E(200), outsider=NO_FILE),
    ),
    ("api/uploads/(?P<upload_id>[^/]+)/?$", "HEAD"): Row(
        "/api/uploads/{partial}",
        cols(
            anonymous=UNAUTH,
            nonmember=NO_UPLOAD,
            member=E(200, note="the uploader"),
            admin=E(404, "upload_not_found", note="only the uploader continues an upload"),
            owner=E(404, "upload_not_found", note="only the uploader continues an upload"),
            staff=NO_UPLOAD,
        ),
        cols(
            anonymous=UNAUTH,
            nonmember=NO_UPLOAD,
            member=E(200, note="the uploader"),
            admin=E(404, "upload_not_found", note="only the uploader continues an upload"),
            owner=E(404, "upload_not_found", note="only the uploader continues an upload"),
            staff=NO_UPLOAD,
        ),
        headers=TUS,
    ),
    ("api/uploads/(?P<upload_id>[^/]+)/?$", "PATCH"): Row(
        "/api/uploads/{partial}",
        cols(
            anonymous=UNAUTH,
            nonmember=NO_UPLOAD,
            member=E(204, note="the uploader"),
            admin=E(404, "upload_not_found", note="only the uploader continues an upload"),
            owner=E(404, "upload_not_found", note="only the uploader continues an upload"),
            staff=NO_UPLOAD,
        ),
        cols(
            anonymous=UNAUTH,
            nonmember=NO_UPLOAD,
            member=E(204, note="the uploader"),
            admin=E(404, "upload_not_found", note="only the uploader continues an upload"),
            owner=E(404, "upload_not_found", note="only the uploader continues an upload"),
            staff=NO_UPLOAD,
        ),
        headers=TUS_PATCH,
        asgi=True,
    ),
    ("api/uploads/(?P<upload_id>[^/]+)/?$", "DELETE"): Row(
        "/api/uploads/{partial}",
        cols(
            anonymous=UNAUTH,
            nonmember=NO_UPLOAD,
            member=E(204, note="the uploader"),
            admin=E(404, "upload_not_found", note="only the uploader terminates an upload"),
            owner=E(404, "upload_not_found", note="only the uploader terminates an upload"),
            staff=NO_UPLOAD,
        ),
        cols(
            anonymous=UNAUTH,
            nonmember=NO_UPLOAD,
            member=E(204, note="the uploader"),
            admin=E(404, "upload_not_found", note="only the uploader terminates an upload"),
            owner=E(404, "upload_not_found", note="only the uploader terminates an upload"),
            staff=NO_UPLOAD,
        ),
        headers=TUS,
    ),
    ("api/uploads/(?P<upload_id>[^/]+)/?$", "OPTIONS"): Row("/api/uploads/{partial}", OPTIONS_TUS),
    ("api/files/(?P<upload_id>[^/]+)/?$", "GET"): Row(
        "/api/files/{upload}",
        members(E(200), outsider=E(404, "file_not_found", note="the contract: 404, even in a public room")),
        members(E(200), outsider=NO_FILE),
    ),
    ("api/files/(?P<upload_id>[^/]+)/?$", "HEAD"): Row(
        "/api/files/{upload}",
        members(E(200), outsider=E(404, note="the contract: 404, even in a public room")),
        members(E(200), outsider=E(404)),
    ),
    ("api/files/(?P<upload_id>[^/]+)/?$", "OPTIONS"): Row("/api/files/{upload}", OPTIONS_API),
    ("api/files/(?P<upload_id>[^/]+)/thumbnail/?$", "GET"): Row(
        "/api/files/{upload}/thumbnail",
        members(E(200), outsider=E(404, "file_not_found", note="the contract: 404, even in a public room")),
        members(E(200), outsider=NO_FILE),
    ),
    ("api/files/(?P<upload_id>[^/]+)/thumbnail/?$", "OPTIONS"): Row("/api/files/{upload}/thumbnail", OPTIONS_API),
}

# --- rules one request per row cannot show ------------------------------------------------------
# Role rules (who may make owners, leaving, the last owner), a plain member who is not the author,
# other people's uploads and notices, bad credentials, CSRF on the session cookie. Each sends its
# row's request with what it changes; the world is the matrix's (a fresh one per case).

MEMBERS_ROUTE = (f"api/rooms/{ROOM}/members/?$", "POST")
MEMBER_ROUTE = (f"api/rooms/{ROOM}/members/(?P<user_id>[^/]+)/?$", "PATCH")
MEMBER_DELETE = (f"api/rooms/{ROOM}/members/(?P<user_id>[^/]+)/?$", "DELETE")
MESSAGE_PUT = ("api/messages/(?P<ident>[^/]+)/?$", "PUT")
MESSAGE_DELETE = ("api/messages/(?P<ident>[^/]+)/?$", "DELETE")
MESSAGES_POST = ("api/messages/(?P<ident>[^/]+)/?$", "POST")
MESSAGES_GET = ("api/messages/(?P<ident>[^/]+)/?$", "GET")


@dataclass(frozen=True)
class Rule:
    """One more case of a row: `changes` replaces fields of the row (path, json, headers, session...);
    `actor` may also be "target", the plain member who is not the author of `{message}`."""

    says: str  # what the contract says
    key: tuple[str, str]
    actor: str
    expect: Expect
    kind: str = "public"
    changes: Mapping[str, Any] = field(default_factory=dict)
    setup: Callable[[World], object] | None = None


def _hide_history(world: World) -> None:
    Room.objects.filter(pk__in=[room.pk for room in world.rooms.values()]).update(edit_history_visibility="moderators")


def _deactivate_member(world: World) -> None:
    User.objects.filter(pk=world.users[MEMBER].pk).update(is_active=False)


RULES: list[Rule] = [
    Rule(
        "only an owner makes owners (add)",
        MEMBERS_ROUTE,
        ADMIN,
        E(403, "owner_required"),
        changes={"json": lambda w, a: {"user_id": str(w.candidate.pk), "role": "owner"}},
    ),
    Rule(
        "only an owner makes owners (add)",
        MEMBERS_ROUTE,
        OWNER,
        E(201),
        changes={"json": lambda w, a: {"user_id": str(w.candidate.pk), "role": "owner"}},
    ),
    Rule(
        "already a member: 409",
        MEMBERS_ROUTE,
        ADMIN,
        E(409),
        changes={"json": lambda w, a: {"user_id": str(w.target.pk)}},
    ),
    Rule(
        "only an owner makes owners (role)",
        MEMBER_ROUTE,
        ADMIN,
        E(403, "owner_required"),
        changes={"json": lambda w, a: {"role": "owner"}},
    ),
    Rule(
        "only an owner makes owners (role)",
        MEMBER_ROUTE,
        OWNER,
        E(200),
        changes={"json": lambda w, a: {"role": "owner"}},
    ),
    Rule(
        "an admin cannot demote the owner",
        MEMBER_ROUTE,
        ADMIN,
        E(403, "owner_required"),
        changes={"path": "/api/rooms/{room}/members/{owner_id}", "json": lambda w, a: {"role": "member"}},
    ),
    Rule(
        "a room always keeps an owner (demotion)",
        MEMBER_ROUTE,
        OWNER,
        E(409),
        changes={"path": "/api/rooms/{room}/members/{owner_id}", "json": lambda w, a: {"role": "member"}},
    ),
    Rule(
        "an admin cannot remove the owner",
        MEMBER_DELETE,
        ADMIN,
        E(403),
        changes={"path": "/api/rooms/{room}/members/{owner_id}"},
    ),
    Rule(
        "a member may leave", MEMBER_DELETE, MEMBER, E(204), changes={"path": "/api/rooms/{room}/members/{member_id}"}
    ),
    Rule(
        "a member may leave a private room",
        MEMBER_DELETE,
        MEMBER,
        E(204),
        kind="private",
        changes={"path": "/api/rooms/{room}/members/{member_id}"},
    ),
    Rule(
        "a room always keeps an owner (leaving)",
        MEMBER_DELETE,
        OWNER,
        E(409),
        changes={"path": "/api/rooms/{room}/members/{owner_id}"},
    ),
    Rule(
        "a plain member cannot remove another",
        MEMBER_DELETE,
        MEMBER,
        NOT_MANAGER,
        changes={"path": "/api/rooms/{room}/members/{admin_id}"},
    ),
    Rule("edit: author only", MESSAGE_PUT, "target", E(403, "not_author")),
    Rule("edit: author only (private room)", MESSAGE_PUT, "target", E(403, "not_author"), kind="private"),
    Rule("delete: author, owner/admin or staff", MESSAGE_DELETE, "target", E(403)),
    Rule("delete: author, owner/admin or staff (private room)", MESSAGE_DELETE, "target", E(403), kind="private"),
    Rule(
        "edit history hidden to plain members",
        ("api/messages/(?P<message_id>[^/]+)/history/?$", "GET"),
        "target",
        E(403, "history_hidden"),
        setup=_hide_history,
    ),
    Rule(
        "edit history: the author still sees it",
        ("api/messages/(?P<message_id>[^/]+)/history/?$", "GET"),
        MEMBER,
        E(200),
        setup=_hide_history,
    ),
    Rule(
        "edit history: moderators still see it",
        ("api/messages/(?P<message_id>[^/]+)/history/?$", "GET"),
        ADMIN,
        E(200),
        setup=_hide_history,
    ),
    Rule(
        "another member's unfinished upload is not theirs to read",
        ("api/uploads/(?P<upload_id>[^/]+)/?$", "GET"),
        MEMBER,
        NO_FILE,
        changes={"path": "/api/uploads/{target_partial}"},
    ),
    Rule(
        "another member's finished upload can be read by members",
        ("api/uploads/(?P<upload_id>[^/]+)/?$", "GET"),
        MEMBER,
        E(200),
        changes={"path": "/api/uploads/{target_upload}"},
    ),
    Rule(
        "another member's upload cannot be attached",
        MESSAGES_POST,
        MEMBER,
        E(400, "invalid_attachments"),
        changes={"json": lambda w, a: {"body": "mine?", "attachments": [str(w.target_uploads["public"].pk)]}},
    ),
    Rule(
        "a reply cannot name a message of a room one is not in",
        MESSAGES_POST,
        NONMEMBER,
        E(400, "invalid_parent"),
        setup=lambda w: Membership.objects.create(room=w.rooms["public"], user=w.users[NONMEMBER]),
        changes={"json": lambda w, a: {"body": "re", "parent_id": w.messages["private"]}},
    ),
    Rule(
        "another user's notices cannot be marked read",
        ("api/notifications/read/?$", "POST"),
        MEMBER,
        E(200),
        changes={
            "json": lambda w, a: {"ids": [str(w.target_notification.pk)]},
            "check": lambda answer, w, a, k: _still_unread(answer, w),
        },
    ),
    Rule(
        "a bad token: 401",
        ("api/auth/me/?$", "GET"),
        ANON,
        E(401),
        changes={"headers": {"Authorization": "Bearer x.y.z"}},
    ),
    Rule("a deactivated user's token: 401", ("api/auth/me/?$", "GET"), MEMBER, E(401), setup=_deactivate_member),
    Rule(
        "a deactivated user's socket ticket: 401",
        ("api/auth/ws-ticket/?$", "POST"),
        MEMBER,
        E(401),
        setup=_deactivate_member,
    ),
    Rule(
        "session cookie: CSRF on unsafe methods",
        MESSAGES_POST,
        MEMBER,
        E(403),
        changes={"session": True, "csrf": "missing"},
    ),
    Rule(
        "session cookie with the CSRF token", MESSAGES_POST, MEMBER, E(201), changes={"session": True, "csrf": "sent"}
    ),
    Rule(
        "session cookie: safe methods need no CSRF token",
        ("api/messages/(?P<ident>[^/]+)/?$", "GET"),
        MEMBER,
        E(200),
        changes={"session": True, "csrf": "missing"},
    ),
    Rule(
        "a room's search (?q=) is members only",
        MESSAGES_GET,
        NONMEMBER,
        NOT_MEMBER,
        changes={"path": "/api/messages/{room}?q=hello", "needs": ("indexed",)},
    ),
    Rule(
        "a room's search (?q=) is members only",
        MESSAGES_GET,
        NONMEMBER,
        NO_ROOM,
        kind="private",
        changes={"path": "/api/messages/{room}?q=hello", "needs": ("indexed",)},
    ),
    Rule(
        "a room's search (?q=): staff are not members",
        MESSAGES_GET,
        STAFF,
        NO_ROOM,
        kind="private",
        changes={"path": "/api/messages/{room}?q=hello", "needs": ("indexed",)},
    ),
    Rule(
        "a room's search (?q=) for a member",
        MESSAGES_GET,
        MEMBER,
        E(200),
        kind="private",
        changes={"path": "/api/messages/{room}?q=hello", "needs": ("indexed",)},
    ),
    Rule(
        "search: in:<private room> finds it for a member",
        ("api/search", "GET"),
        MEMBER,
        E(200),
        kind="private",
        changes={
            "path": "/api/search?q=hello%20in:{room_name}",
            "needs": ("indexed",),
            "check": lambda answer, w, a, k: _finds_only(answer, w.messages[k]),
        },
    ),
    Rule(
        "search: in:<private room> finds nothing for a non-member",
        ("api/search", "GET"),
        NONMEMBER,
        E(200),
        kind="private",
        changes={
            "path": "/api/search?q=hello%20in:{room_name}",
            "needs": ("indexed",),
            "check": lambda answer, w, a, k: _finds_nothing(answer),
        },
    ),
]


def _still_unread(answer: Answer, world: World) -> None:
    assert answer.body == {"updated": 0}, answer.body
    assert Notification.objects.get(pk=world.target_notification.pk).read is False


def _finds_nothing(answer: Answer) -> None:
    assert answer.body["results"] == [], answer.body


def _finds_only(answer: Answer, message_id: str) -> None:
    assert [item["id"] for item in answer.body["results"]] == [message_id], answer.body


# Requests answered before Django's URL resolver (chatproject/asgi.py: files.streaming.with_upload_routes):
# each regex of files/streaming.py and the (pattern, method) rows its requests are checked under.
ASGI_ROUTES: dict[str, list[tuple[str, str]]] = {
    r"^/api/uploads/([^/]+)/?$": [("api/uploads/(?P<upload_id>[^/]+)/?$", "PATCH")],
    r"^/api/rooms/[^/]+/files/?$": [(f"api/rooms/{ROOM}/files/?$", "POST")],  # size and sign-in checked first
    r"^/api/auth/me/avatar/?$": [("api/auth/me/avatar/?$", "PUT")],  # size and sign-in checked first
}

# Includes kept as one row each, keyed by their prefix and "*": third-party URL sets we do not write.
COLLAPSED_NAMESPACES = {
    "admin": "the Django admin (staff only): one row, GET /admin/",
    "rest_framework": "DRF's browsable-API login/logout (api-auth/login/ itself is ours, and has rows)",
}

# Function views that do not declare their methods (no require_http_methods): the methods that mean something.
FUNCTION_VIEW_METHODS = {
    "chatproject.pages.home": ["GET"],  # a redirect whatever the method
    "chatproject.pages.chat_page": ["GET"],  # the shell renders whatever the method
    "chatproject.monitoring.metrics_view": ["GET"],
    "django.contrib.admin.sites.AdminSite.login": ["GET", "POST"],
}


# --- discovering the routes ---------------------------------------------------------------------


def _declared_methods(view: Callable[..., Any]) -> list[str] | None:
    """The methods of a `require_http_methods` (require_GET, require_POST) view, through decorators."""
    func: Any = view
    while func is not None:
        if inspect.isfunction(func):
            methods = inspect.getclosurevars(func).nonlocals.get("request_method_list")
            if methods is not None:
                return [str(m).upper() for m in methods]
        func = getattr(func, "__wrapped__", None)
    return None


def view_methods(view: Callable[..., Any]) -> list[str]:
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is not None:  # DRF APIView and Django class-based views: the handlers the class has
        return [m.upper() for m in cls.http_method_names if hasattr(cls, m)]
    declared = _declared_methods(view)
    if declared is not None:
        return declared
    name = f"{view.__module__}.{view.__qualname__}"
    if name not in FUNCTION_VIEW_METHODS:
        raise AssertionError(f"{name} does not declare its methods: add it to FUNCTION_VIEW_METHODS")
    return FUNCTION_VIEW_METHODS[name]


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Callable[..., Any] | None]]:
    for entry in patterns:
        route = prefix + str(entry.pattern).removeprefix("^")
        if isinstance(entry, URLResolver):
            if entry.namespace in COLLAPSED_NAMESPACES:
                yield route, None
            else:
                yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback


def discovered_http_routes(patterns: list[Any] | None = None) -> set[tuple[str, str]]:
    """Every (route, method) of the site (or of `patterns`), and the ASGI-level ones."""
    found: set[tuple[str, str]] = set()
    for route, view in _walk(get_resolver().url_patterns if patterns is None else patterns):
        if view is None:
            found.add((route, "*"))
        else:
            found.update((route, method) for method in view_methods(view))
    for rows in ASGI_ROUTES.values():
        found.update(rows)
    return found


def consumer_frame_types(receive: Any = None) -> set[str]:
    """The keys of the frame dispatch table in RoomConsumer.receive (realtime/consumers.py), or in
    the `receive` given."""
    source = textwrap.dedent(inspect.getsource(receive or consumers.RoomConsumer.receive))
    tables = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Dict)
        and node.keys
        and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys)
        and all(isinstance(v, ast.Attribute) and v.attr.startswith("_on_") for v in node.values)
    ]
    assert len(tables) == 1, "RoomConsumer.receive no longer has one frame dispatch table: update this test"
    return {str(k.value) for k in tables[0].keys if isinstance(k, ast.Constant)}


# --- the WebSocket rows -------------------------------------------------------------------------

OPEN = "open"  # accepted: the socket stays open (a ping gets a pong)

WS_ROUTES: dict[str, dict[str, Mapping[str, Expect]]] = {
    r"^api/ws/(?P<room_id>[^/]*)/?$": {
        "public": members(E(OPEN), outsider=E(4403), anonymous=E(4401)),
        "private": members(E(OPEN), outsider=E(4404, note="the room's existence is not given away"), anonymous=E(4401)),
    },
    # The user stream: anyone signed in opens their own (it carries only their rooms' frames).
    r"^api/ws$": {"public": signed_in(E(OPEN), anonymous=E(4401), note="the caller's own stream")},
    "": {"public": anyone(E(4404), note="any other path: no such endpoint")},
}
WS_PATHS = {r"^api/ws/(?P<room_id>[^/]*)/?$": "/api/ws/{room}", r"^api/ws$": "/api/ws", "": "/api/elsewhere"}


@dataclass(frozen=True)
class FrameRow:
    """A client frame, and what each actor gets for it: members the reply (`message.ack`, "no error",
    `pong`); everyone else cannot open the socket, so the close code (and nothing happens)."""

    frame: Mapping[str, Any]
    public: Mapping[str, Expect]
    private: Mapping[str, Expect]


NO_ERROR = "no error"
CLIENT_FRAMES: dict[str, FrameRow] = {
    "message.send": FrameRow(
        {"type": "message.send", "body": "sent on the socket", "client_id": "matrix-1"},
        members(E("message.ack"), outsider=E(4403, note="not a member: cannot post"), anonymous=E(4401)),
        members(E("message.ack"), outsider=E(4404, note="not a member: cannot post"), anonymous=E(4401)),
    ),
    "typing": FrameRow(
        {"type": "typing", "state": "start"},
        members(E(NO_ERROR), outsider=E(4403), anonymous=E(4401)),
        members(E(NO_ERROR), outsider=E(4404), anonymous=E(4401)),
    ),
    "ping": FrameRow(
        {"type": "ping"},
        members(E("pong"), outsider=E(4403), anonymous=E(4401)),
        members(E("pong"), outsider=E(4404), anonymous=E(4401)),
    ),
}

# The user stream's client frames: each names its room, so a non-member's socket stays open and
# the frame gets an `error` (the room's existence is not revealed for a private room).
NOT_IN_ROOM = E("error", "not_a_member")
NOT_VISIBLE = E("error", "room_not_found")
STREAM_FRAMES: dict[str, FrameRow] = {
    "message.send": FrameRow(
        {"type": "message.send", "body": "sent on the stream", "client_id": "matrix-1"},
        members(E("message.ack"), outsider=NOT_IN_ROOM, anonymous=E(4401)),
        members(E("message.ack"), outsider=NOT_VISIBLE, anonymous=E(4401)),
    ),
    "typing": FrameRow(
        {"type": "typing", "state": "start"},
        members(E(NO_ERROR), outsider=NOT_IN_ROOM, anonymous=E(4401)),
        members(E(NO_ERROR), outsider=NOT_VISIBLE, anonymous=E(4401)),
    ),
    "read": FrameRow(
        {"type": "read", "seq": 0},
        members(E(NO_ERROR), outsider=NOT_IN_ROOM, anonymous=E(4401)),
        members(E(NO_ERROR), outsider=NOT_VISIBLE, anonymous=E(4401)),
    ),
    "ping": FrameRow(
        {"type": "ping"}, signed_in(E("pong"), anonymous=E(4401)), signed_in(E("pong"), anonymous=E(4401))
    ),
}


# --- completeness -------------------------------------------------------------------------------


def test_every_http_route_and_method_has_a_row() -> None:
    found = discovered_http_routes()
    missing = sorted(found - set(ROUTES))
    stale = sorted(set(ROUTES) - found)
    assert not missing, f"routes without a row in ROUTES (add what each actor gets): {missing}"
    assert not stale, f"rows in ROUTES for no route: {stale}"


def test_the_completeness_check_catches_a_route_without_a_row() -> None:
    """The guard itself: a site with one more route (and methods) than the table is caught."""

    class PinsView(APIView):
        def get(self, request: Any, room_id: str) -> Any: ...
        def put(self, request: Any, room_id: str) -> Any: ...

    def undeclared(request: Any) -> Any: ...

    pins = r"^api/rooms/(?P<room_id>[^/]+)/pins/?$"
    site = [*get_resolver().url_patterns, re_path(pins, PinsView.as_view())]
    assert discovered_http_routes(site) - set(ROUTES) == {
        (pins.removeprefix("^"), method) for method in ("GET", "PUT", "OPTIONS")
    }
    with pytest.raises(AssertionError, match="FUNCTION_VIEW_METHODS"):
        discovered_http_routes([path("api/undeclared", undeclared)])


def test_every_row_reaches_its_route() -> None:
    """The request each row sends is answered by the route it is the row of."""
    for (pattern, method), row in ROUTES.items():
        if row.asgi:
            regexes = [regex for regex, rows in ASGI_ROUTES.items() if (pattern, method) in rows]
            assert regexes and re.match(regexes[0], row.path.split("?")[0].format_map(SampleVars())), row.path
        match = resolve(row.path.split("?")[0].format_map(SampleVars()))
        if method == "*":
            assert match.namespace in COLLAPSED_NAMESPACES and pattern.startswith(str(match.route).split("/")[0])
        else:
            assert str(match.route).removeprefix("^") == pattern, (row.path, match.route)


def test_asgi_level_routes_have_rows() -> None:
    regexes = {value.pattern for value in vars(streaming).values() if isinstance(value, re.Pattern)}
    assert regexes == set(ASGI_ROUTES), "files/streaming.py answers paths of its own: give each rows in ASGI_ROUTES"


def test_every_socket_route_and_client_frame_has_a_row() -> None:
    assert {str(entry.pattern) for entry in routing.websocket_urlpatterns} == set(WS_ROUTES)
    assert set(WS_PATHS) == set(WS_ROUTES)
    assert consumer_frame_types() == set(CLIENT_FRAMES)
    assert consumer_frame_types(UserStreamConsumer.receive) == set(STREAM_FRAMES)


def test_every_row_has_every_actor() -> None:
    for key, row in ROUTES.items():
        for columns in (row.public, row.private):
            assert columns is None or set(columns) == set(ACTORS), key
        about_a_room = any(f"{{{name}}}" in row.path for name in ("room", "message", "upload", "partial"))
        if about_a_room and row.private is None:
            assert "OPTIONS" in key, f"{key} is about a room: give the private room's columns too"
    for ws_key, by_room in WS_ROUTES.items():
        assert all(set(columns) == set(ACTORS) for columns in by_room.values()), ws_key
    for kind, frame_row in [*CLIENT_FRAMES.items(), *STREAM_FRAMES.items()]:
        assert set(frame_row.public) == set(frame_row.private) == set(ACTORS), kind


# --- the HTTP matrix ----------------------------------------------------------------------------


def _marks(expect: Expect) -> list[pytest.MarkDecorator]:
    """A cell where the server breaks the contract: xfail, strictly (a fix must remove the mark)."""
    return [pytest.mark.xfail(strict=True, reason=expect.bug)] if expect.bug is not None else []


def _http_cases(*, asgi: bool) -> Iterator[Any]:
    for (pattern, method), row in ROUTES.items():
        if row.asgi != asgi:
            continue
        kinds = [("public", row.public)] + ([("private", row.private)] if row.private is not None else [])
        for kind, columns in kinds:
            for actor in ACTORS:
                expect = columns[actor]
                marks = _marks(expect)
                where = f" [{kind}]" if row.private is not None else ""
                yield pytest.param(
                    (pattern, method), kind, actor, id=f"{method} {row.path}{where} {actor}", marks=marks
                )


@pytest.fixture(scope="module")
def file_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("authz-files")


VAPID_KEY = vapid_key_pair()[0]


def _file_settings(file_root: Path) -> dict[str, str]:
    """Where files go, and a VAPID key (push is on) for the cases' settings."""
    return {
        "MEDIA_ROOT": str(file_root / "media"),
        "UPLOAD_TEMP_DIR": str(file_root / "partial"),
        "VAPID_PRIVATE_KEY": VAPID_KEY,
    }


@pytest.fixture
def world(settings: Any, file_root: Path) -> World:
    for name, value in _file_settings(file_root).items():
        setattr(settings, name, value)
    return World()


_handlers: dict[bool, ClientHandler] = {}
CSRF_SECRET = "matrixcsrfsecret0123456789abcdef"  # a CSRF cookie value: 32 letters and digits


def _shared_handler(enforce_csrf: bool) -> ClientHandler:
    """One test-client handler for all cases: building one loads the middleware, and WhiteNoise's
    scan of the static files then costs more than most requests."""
    if enforce_csrf not in _handlers:
        _handlers[enforce_csrf] = ClientHandler(enforce_csrf_checks=enforce_csrf)
    return _handlers[enforce_csrf]


def _client(row: Row, world: World, actor: str) -> Client:
    user = world.user(actor)
    client: Client = Client(raise_request_exception=False) if row.session else APIClient(raise_request_exception=False)
    client.handler = _shared_handler(row.csrf is not None)
    if row.csrf is not None:
        client.cookies["csrftoken"] = CSRF_SECRET
        if row.csrf == "sent":
            client.defaults["HTTP_X_CSRFTOKEN"] = CSRF_SECRET
    if user is not None:
        if row.session:
            client.force_login(user)
        else:
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens_for(user).access}"
    return client


def send_request(key: tuple[str, str], row: Row, world: World, actor: str, kind: str) -> Answer:
    pattern, method = key
    for part in row.needs:
        world.build(part)
    path = row.path.format_map(PathVars(world, kind, sample_ids=method == "OPTIONS"))
    if method == "*":  # a collapsed include: the one request its row sends
        method = "POST" if pattern == "api-auth/" else "GET"
    client = _client(row, world, actor)
    headers = dict(row.headers)
    if row.json is not None:
        body = json.dumps(row.json(world, actor))
        response = client.generic(method, path, body, content_type="application/json", headers=headers)
    elif row.form is not None:
        assert method == "POST", key
        response = client.post(path, row.form(world, actor), headers=headers)
    elif row.multipart is not None:
        body = encode_multipart(BOUNDARY, row.multipart(world, actor))
        response = client.generic(method, path, body, content_type=MULTIPART_CONTENT, headers=headers)
    else:
        response = client.generic(method, path, headers=headers)
    content = None
    if "application/json" in response.get("Content-Type", "") and not response.streaming and response.content:
        content = response.json()
    text = b"" if response.streaming else response.content
    return Answer(response.status_code, {k.lower(): v for k, v in response.items()}, content, text)


def verify(answer: Answer, expect: Expect, *, api: bool, method: str) -> None:
    observed = f"observed {answer.status} {answer.body!r}"
    if isinstance(expect.status, int):
        assert answer.status == expect.status, observed
    else:
        assert str(answer.status)[0] == expect.status[0], observed
    assert answer.headers.get("x-request-id"), answer.headers  # "Every response carries X-Request-ID"
    if method == "HEAD":
        return  # no body to hold a code
    if expect.code is not None:
        assert isinstance(answer.body, dict) and answer.body.get("code") == expect.code, observed
    if expect.location is not None:
        assert answer.headers.get("location", "").startswith(expect.location), answer.headers.get("location")
    if api and answer.status >= 400:  # the contract's error shape, never an HTML page
        assert isinstance(answer.body, dict) and {"code", "detail"} <= set(answer.body), observed


def _columns(row: Row, kind: str) -> Mapping[str, Expect]:
    return row.private if kind == "private" and row.private is not None else row.public


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "kind", "actor"), list(_http_cases(asgi=False)))
def test_http_matrix(key: tuple[str, str], kind: str, actor: str, world: World) -> None:
    row = ROUTES[key]
    answer = send_request(key, row, world, actor, kind)
    verify(answer, _columns(row, kind)[actor], api=row.path.startswith("/api/"), method=key[1])
    if row.check is not None and 200 <= answer.status < 300:
        row.check(answer, world, actor, kind)


def _rule_cases() -> Iterator[Any]:
    for rule in RULES:
        marks = _marks(rule.expect)
        yield pytest.param(
            rule,
            id=f"{rule.key[1]} {rule.changes.get('path', ROUTES[rule.key].path)} [{rule.kind}] "
            f"{rule.actor}: {rule.says}",
            marks=marks,
        )


@pytest.mark.django_db
@pytest.mark.parametrize("rule", list(_rule_cases()))
def test_contract_rules(rule: Rule, world: World) -> None:
    if rule.setup is not None:
        rule.setup(world)
    row = replace(ROUTES[rule.key], **rule.changes)
    actor = rule.actor
    if actor == "target":  # the plain member who is not the author: acts as `member` would
        world.users = {**world.users, "target": world.target}
    answer = send_request(rule.key, row, world, actor, rule.kind)
    verify(answer, rule.expect, api=row.path.startswith("/api/"), method=rule.key[1])
    if row.check is not None and 200 <= answer.status < 300:
        row.check(answer, world, actor, rule.kind)


# --- the committed world: what another thread or process reads ---------------------------------
# The ASGI-level handlers (files/streaming.py) read the database from threads of their own, and the
# socket server is another process: neither sees a test's transaction. Their world is committed,
# made once for the module and removed at its end. Nothing they do spoils another case: each tus
# PATCH case has an unfinished upload of its own, connecting, pinging and typing change nothing, each
# socket post is found by its own client_id, and a membership that gets taken away is a `leaver`'s
# (one per room), whom no other case uses.


@pytest.fixture(scope="module")
def committed_world(django_db_setup: Any, django_db_blocker: Any, file_root: Path) -> Iterator[World]:
    with override_settings(**_file_settings(file_root)):
        with django_db_blocker.unblock():
            made = World()
            for kind, room in made.rooms.items():
                leaver = User.objects.create_user(username=f"leaver_{kind}_{uuid.uuid4().hex[:8]}", password=PASSWORD)
                Membership.objects.create(room=room, user=leaver, role=Role.MEMBER)
                made.leavers[kind] = leaver
                for actor in ACTORS:
                    made.case_partials[kind, actor] = file_services.upload_create(
                        user=made.users[MEMBER], room_id=room.pk, length=4, name=f"part-{actor}.bin"
                    )
            people = [*made.users.items(), *((f"leaver_{kind}", user) for kind, user in made.leavers.items())]
            made.tokens = {name: tokens_for(user).access for name, user in people}
            for actor, user in made.users.items():
                browser = Client()
                browser.force_login(user)
                made.sessions[actor] = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
        yield made
        with django_db_blocker.unblock():
            made.delete()


def send_asgi(method: str, path: str, headers: Mapping[str, str], body: bytes, token: str | None) -> Answer:
    """Through chatproject.asgi.application itself, as a server calls it (tests/test_uploads.py's way)."""
    sent_headers = {name.lower(): value for name, value in headers.items()}
    if token is not None:
        sent_headers["authorization"] = f"Bearer {token}"
    sent_headers["content-length"] = str(len(body))
    status, answer_headers, content = call_asgi(method, path, sent_headers, body)
    return Answer(status, answer_headers, json.loads(content) if content else None)


COMMITTED = pytest.mark.django_db  # the test database must exist; what is read elsewhere is committed above


@COMMITTED
@pytest.mark.parametrize(("key", "kind", "actor"), list(_http_cases(asgi=True)))
def test_asgi_matrix(key: tuple[str, str], kind: str, actor: str, committed_world: World) -> None:
    row = ROUTES[key]
    partial = committed_world.case_partials[kind, actor]
    path = row.path.format_map(PathVars(committed_world, kind, overrides={"partial": str(partial.pk)}))
    answer = send_asgi(key[1], path, row.headers, b"data", committed_world.tokens.get(actor))
    verify(answer, _columns(row, kind)[actor], api=True, method=key[1])


@COMMITTED
@pytest.mark.parametrize("actor", [ANON, NONMEMBER])
def test_asgi_answers_carry_the_request_id(actor: str, committed_world: World) -> None:
    """The tus PATCH answers (files/streaming.py, raw ASGI) carry the caller's X-Request-ID."""
    key = ("api/uploads/(?P<upload_id>[^/]+)/?$", "PATCH")
    partial = committed_world.case_partials["public", actor]  # refused (401, 404): nothing changes
    path = ROUTES[key].path.format_map(PathVars(committed_world, "public", overrides={"partial": str(partial.pk)}))
    headers = {**ROUTES[key].headers, "X-Request-ID": "matrix-request-1"}
    answer = send_asgi("PATCH", path, headers, b"data", committed_world.tokens.get(actor))
    assert answer.status in (401, 404), answer
    assert answer.headers.get("x-request-id") == "matrix-request-1", answer.headers


# --- the WebSocket matrix -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    django_db_setup: Any, django_db_blocker: Any, mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("authz-ws")) as process:
        yield process


# The contract's three ways to sign a socket in; who gets in must not depend on which one is used.
WS_AUTH = ("bearer", "ticket", "cookie")


def _ws_cases() -> Iterator[Any]:
    for ws_key, by_room in WS_ROUTES.items():
        for kind, columns in by_room.items():
            for actor in ACTORS:
                for auth in WS_AUTH if "room_id" in ws_key else WS_AUTH[:1]:
                    marks = _marks(columns[actor])
                    name = f"WS {WS_PATHS[ws_key]} [{kind}] {actor} ({auth})"
                    yield pytest.param(ws_key, kind, actor, auth, id=name, marks=marks)


def _open(server: ServerProcess, path: str, world: World, actor: str, auth: str, origin: str | None = None) -> Any:
    """A handshake signed in the `auth` way as `actor` (no credentials at all for the anonymous)."""
    url = f"ws://127.0.0.1:{server.port}{path}"
    user = world.user(actor)
    if auth == "bearer" or user is None:
        return connect(url, world.tokens.get(actor))
    if auth == "ticket":
        return connect(f"{url}?ticket={ticket_issue(user, None)}")
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={world.sessions[actor]}"
    return websockets.connect(
        url,
        additional_headers={"Cookie": cookie},
        origin=origin or f"http://127.0.0.1:{server.port}",  # type: ignore[arg-type]
        open_timeout=5,
    )


def _frame_cases(table: Mapping[str, FrameRow] = CLIENT_FRAMES, label: str = "frame") -> Iterator[Any]:
    for frame_type, row in table.items():
        for kind in ROOM_KINDS:
            columns = row.public if kind == "public" else row.private
            for actor in ACTORS:
                marks = _marks(columns[actor])
                yield pytest.param(frame_type, kind, actor, id=f"{label} {frame_type} [{kind}] {actor}", marks=marks)


async def _until(ws: Any, wanted: set[str], timeout: float = 5.0) -> dict[str, Any]:
    """The next frame of a wanted type, or an error frame; presence and typing are skipped."""
    while True:
        frame = await recv_json(ws, timeout)
        if frame["type"] in wanted or frame["type"] == "error":
            return frame


@COMMITTED
@pytest.mark.parametrize(("ws_key", "kind", "actor", "auth"), list(_ws_cases()))
async def test_socket_connect_matrix(
    ws_key: str, kind: str, actor: str, auth: str, server: ServerProcess, committed_world: World
) -> None:
    expect = WS_ROUTES[ws_key][kind][actor]
    path = WS_PATHS[ws_key].format_map(PathVars(committed_world, kind))
    async with _open(server, path, committed_world, actor, auth) as ws:
        if expect.status == OPEN:
            await ws.send('{"type": "ping"}')
            assert (await _until(ws, {"pong"}))["type"] == "pong"
        else:
            assert await close_code(ws) == expect.status


async def _exchange(ws: Any, frame: Mapping[str, Any], expect: Expect, *, refusal_keeps_socket: bool = False) -> None:
    """Send one client frame and check the answer `expect` names (a close code, no error, a reply
    type); with `refusal_keeps_socket`, an error reply has the expected code and the socket stays."""
    if isinstance(expect.status, int):  # not let in: whatever it sends, the socket closes
        with contextlib.suppress(websockets.ConnectionClosed):  # closed before it went out: refused all the same
            await ws.send(json.dumps(frame))
        assert await close_code(ws) == expect.status
    elif expect.status == NO_ERROR:  # the answer goes to the others; a ping after it gets no error first
        await ws.send(json.dumps(frame))
        await ws.send('{"type": "ping"}')
        reply = await _until(ws, {"pong"})
        assert reply["type"] == "pong", reply
    else:
        await ws.send(json.dumps(frame))
        reply = await _until(ws, {str(expect.status)})
        assert reply["type"] == expect.status, reply
        if refusal_keeps_socket:
            if expect.code is not None:
                assert reply["code"] == expect.code, reply
            await ws.send('{"type": "ping"}')
            assert (await _until(ws, {"pong"}))["type"] == "pong"  # the socket stays open


@COMMITTED
@pytest.mark.parametrize(("frame_type", "kind", "actor"), list(_frame_cases()))
async def test_client_frame_matrix(
    frame_type: str, kind: str, actor: str, server: ServerProcess, committed_world: World
) -> None:
    row = CLIENT_FRAMES[frame_type]
    expect = (row.public if kind == "public" else row.private)[actor]
    room = committed_world.rooms[kind]
    client_id = f"matrix-{uuid.uuid4().hex[:12]}"
    frame = {**row.frame, "client_id": client_id} if "client_id" in row.frame else dict(row.frame)
    async with connect(server.ws_url(room.pk), committed_world.tokens.get(actor)) as ws:
        await _exchange(ws, frame, expect)
    if frame_type == "message.send":
        posted = [m for m in store.messages_by_version(room.pk, 0, 10**9) if m.client_id == client_id]
        assert len(posted) == (1 if committed_world.is_member(actor) else 0)


@COMMITTED
@pytest.mark.parametrize(("frame_type", "kind", "actor"), list(_frame_cases(STREAM_FRAMES, "stream")))
async def test_stream_frame_matrix(
    frame_type: str, kind: str, actor: str, server: ServerProcess, committed_world: World
) -> None:
    row = STREAM_FRAMES[frame_type]
    expect = (row.public if kind == "public" else row.private)[actor]
    room = committed_world.rooms[kind]
    client_id = f"matrix-{uuid.uuid4().hex[:12]}"
    frame: dict[str, Any] = {**row.frame, "room_id": str(room.pk)} if frame_type != "ping" else dict(row.frame)
    if "client_id" in frame:
        frame["client_id"] = client_id
    async with connect(f"ws://127.0.0.1:{server.port}/api/ws", committed_world.tokens.get(actor)) as ws:
        await _exchange(ws, frame, expect, refusal_keeps_socket=True)
    if frame_type == "message.send":
        posted = [m for m in store.messages_by_version(room.pk, 0, 10**9) if m.client_id == client_id]
        assert len(posted) == (1 if committed_world.is_member(actor) else 0)


@COMMITTED
@pytest.mark.parametrize("kind", ROOM_KINDS)
@pytest.mark.parametrize("actor", list(MEMBER_ROLES))
async def test_cookie_socket_from_another_origin_is_refused(
    actor: str, kind: str, server: ServerProcess, committed_world: World
) -> None:
    """The contract: cookie auth needs an allowed Origin, else 4403, members included."""
    path = f"/api/ws/{committed_world.rooms[kind].pk}"
    async with _open(server, path, committed_world, actor, "cookie", origin="https://evil.example") as ws:
        assert await close_code(ws) == 4403


@COMMITTED
@pytest.mark.parametrize("kind", ROOM_KINDS)
async def test_removed_member_cannot_post_on_an_open_socket(
    kind: str, server: ServerProcess, committed_world: World
) -> None:
    """A member removed (by the owner, through the API) while its socket is open cannot post on it:
    no ack, at most an error frame with the REST code for a non-member, 4403, and nothing stored."""
    room = committed_world.rooms[kind]
    leaver = committed_world.leavers[kind]
    async with connect(server.ws_url(room.pk), committed_world.tokens[f"leaver_{kind}"]) as ws:
        await ws.send('{"type": "ping"}')
        assert (await _until(ws, {"pong"}))["type"] == "pong"
        async with httpx.AsyncClient(base_url=server.http, headers=bearer(committed_world.tokens[OWNER])) as owner:
            removed = await owner.delete(f"/api/rooms/{room.pk}/members/{leaver.pk}")
        assert removed.status_code == 204, removed.text
        with contextlib.suppress(websockets.ConnectionClosed):  # the revocation may have closed it first
            await ws.send(json.dumps({"type": "message.send", "body": "after removal", "client_id": "late"}))
        frames: list[dict[str, Any]] = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frames.append(await recv_json(ws, 5.0))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403, closed.value
    assert not [f for f in frames if f["type"] == "message.ack"], frames
    assert {f["code"] for f in frames if f["type"] == "error"} <= {"not_a_member", "room_not_found"}, frames
    assert not [m for m in store.messages_by_version(room.pk, 0, 10**9) if m.author_id == leaver.pk]
