"""The Django admin's moderation: the Messages page over MongoDB (list, filters, search, one message
with its edit history, deletion), reports, bans and mutes, the read-only audit log, and deactivating
an account. Each action must go through its service, so it is audited and has its effects.

Messages are posted through the API (indexed inline: Celery is eager in tests) or, for big rooms,
straight into the store; the admin is driven with Django's test client as a staff superuser.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import Browser, expect
from pymongo import monitoring

from accounts.models import User
from accounts.services import tokens_for
from messaging import store
from messaging.admin import index_provided
from messaging.models import Report, ReportStatus
from messaging.rendering import plain_html, render_body
from messaging.reports import report_create
from messaging.store import connection as store_connection
from rooms.models import AuditAction, AuditEntry, Membership, Role, Room, RoomBan, RoomMute
from tests import test_web_ui
from tests.conftest import client_for
from tests.live import ServerProcess
from tests.test_rooms import create_room
from tests.test_web_ui import PASSWORD, shot

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/messaging/message/"
ui_server = test_web_ui.ui_server  # the live server of the browser tests


class MongoCommands(monitoring.CommandListener):
    """MongoDB commands this process sends while `active` (pymongo cannot unregister a listener)."""

    def __init__(self) -> None:
        self.active = False
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active:
            self.commands.append({"name": event.command_name, **dict(event.command)})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_mongo = MongoCommands()
monitoring.register(_mongo)


@pytest.fixture
def staff(make_user: Any) -> User:
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def room(alice: User, bob: User) -> dict[str, Any]:
    created = create_room(alice, "général")
    assert client_for(bob).post(f"/api/rooms/{created['id']}/join").status_code in (200, 201, 204)
    return created


def post(user: User, room_id: Any, body: str, **extra: Any) -> dict[str, Any]:
    response = client_for(user).post(f"/api/messages/{room_id}", {"body": body, **extra}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def listed(response: Any) -> list[str]:
    """The bodies of the Messages page's rows, top to bottom."""
    assert response.status_code == 200, response.content[:2000]
    return [row.message.body for row in response.context["listing"].rows]


def needs_index() -> None:
    assert index_provided(), (
        "The search app does not provide the admin's message index: search/apps.py ready() must call "
        "messaging.admin.provide_index(...) (see the admin's report)"
    )


def seed(room_id: int, author_id: int, count: int, start: int = 1) -> None:
    """`count` messages straight into the store, each with its own transaction (as posts are)."""
    for i in range(start, start + count):
        body = f"seeded {i}"
        store.insert_message(
            room_id=room_id,
            author_id=author_id,
            body=body,
            rendered=render_body(body, lambda n: {}),
            now=timezone.now(),
        )


# --- the Messages page -------------------------------------------------------------------------


def test_messages_are_on_the_admin_index_the_app_page_and_the_sidebar(admin_client: Client) -> None:
    index = admin_client.get("/admin/")
    assert index.status_code == 200
    assert f'href="{MESSAGES}"' in index.content.decode()
    app = admin_client.get("/admin/messaging/")
    assert app.status_code == 200
    names = [m["name"] for m in app.context["app_list"][0]["models"]]
    assert names == ["Messages", "Reports"]
    page = admin_client.get(MESSAGES)
    assert page.status_code == 200
    assert 'aria-current="page">Messages</a>' in page.content.decode()  # the sidebar marks where we are


def test_staff_without_any_model_permission_still_get_the_messages_page(make_user: Any) -> None:
    moderator = make_user("mod", is_staff=True)
    client = Client()
    client.force_login(moderator)
    index = client.get("/admin/")
    assert f'href="{MESSAGES}"' in index.content.decode()
    assert client.get("/admin/messaging/").status_code == 200
    assert client.get(MESSAGES).status_code == 200


def test_a_room_alone_is_read_from_the_store_newest_first_in_pages(
    admin_client: Client, alice: User, room: dict[str, Any]
) -> None:
    seed(int(room["id"]), alice.pk, 120)
    first = admin_client.get(MESSAGES, {"room": room["id"]})
    assert listed(first) == [f"seeded {i}" for i in range(120, 70, -1)]
    assert first.context["listing"].source == "store"
    older = first.context["listing"].older
    assert older == f"room={room['id']}&before=71"
    second = admin_client.get(f"{MESSAGES}?{older}")
    assert listed(second) == [f"seeded {i}" for i in range(70, 20, -1)]
    last = admin_client.get(f"{MESSAGES}?{second.context['listing'].older}")
    assert listed(last) == [f"seeded {i}" for i in range(20, 0, -1)]
    assert last.context["listing"].older is None
    # By name too (case and the room's own spelling: "général"); the page shows the room's name.
    by_name = admin_client.get(MESSAGES, {"room": "GÉNÉRAL"})
    assert listed(by_name)[:2] == ["seeded 120", "seeded 119"]
    assert "général" in by_name.content.decode()


def test_a_name_several_rooms_share_asks_which_and_an_unknown_one_says_so(admin_client: Client, alice: User) -> None:
    one, two = create_room(alice, "ops"), create_room(alice, "Ops")
    page = admin_client.get(MESSAGES, {"room": "ops"})
    assert page.status_code == 200
    assert [r.pk for r in page.context["room_choices"]] == [int(one["id"]), int(two["id"])]
    assert f'href="?room={one["id"]}"' in page.content.decode()
    missing = admin_client.get(MESSAGES, {"room": "nowhere"})
    assert "No room is named or numbered “nowhere”." in missing.content.decode()
    assert admin_client.get(MESSAGES, {"author": "nobody"}).context["errors"] == ["No user is called “nobody”."]


def test_every_room_newest_first_and_filtered_by_author(
    admin_client: Client, alice: User, bob: User, room: dict[str, Any]
) -> None:
    needs_index()
    other = create_room(bob, "elsewhere")
    post(alice, room["id"], "alice one")
    post(bob, room["id"], "bob one")
    post(bob, other["id"], "bob elsewhere")
    post(alice, room["id"], "alice two")
    everything = admin_client.get(MESSAGES)
    assert listed(everything) == ["alice two", "bob elsewhere", "bob one", "alice one"]
    assert everything.context["listing"].source == "index"
    assert listed(admin_client.get(MESSAGES, {"author": "BOB"})) == ["bob elsewhere", "bob one"]
    assert listed(admin_client.get(MESSAGES, {"author": "bob", "room": room["id"]})) == ["bob one"]
    page = admin_client.get(MESSAGES, {"author": "bob"}).content.decode()
    assert "elsewhere" in page and "général" in page  # the rooms' names


def test_the_index_pages_with_a_cursor(admin_client: Client, alice: User, room: dict[str, Any]) -> None:
    needs_index()
    for i in range(55):
        post(alice, room["id"], f"post {i}")
    first = admin_client.get(MESSAGES, {"author": "alice"})
    assert listed(first) == [f"post {i}" for i in range(54, 4, -1)]
    second = admin_client.get(f"{MESSAGES}?{first.context['listing'].older}")
    assert listed(second) == [f"post {i}" for i in range(4, -1, -1)]
    assert second.context["listing"].older is None


def test_text_search_ignores_accents_and_case(
    admin_client: Client, alice: User, bob: User, room: dict[str, Any]
) -> None:
    needs_index()
    post(alice, room["id"], "Le CAFÉ est fermé")
    post(bob, room["id"], "Die Straße ist lang")
    post(bob, room["id"], "nothing to see")
    assert listed(admin_client.get(MESSAGES, {"q": "cafe"})) == ["Le CAFÉ est fermé"]
    assert listed(admin_client.get(MESSAGES, {"q": "strasse"})) == ["Die Straße ist lang"]
    assert listed(admin_client.get(MESSAGES, {"q": "ferme", "room": room["id"]})) == ["Le CAFÉ est fermé"]
    assert listed(admin_client.get(MESSAGES, {"q": "ferme", "author": "bob"})) == []
    assert listed(admin_client.get(MESSAGES, {"q": "from:bob lang"})) == ["Die Straße ist lang"]
    # A query the language refuses is the page's error, not a crash.
    bad = admin_client.get(MESSAGES, {"q": '"unclosed'})
    assert bad.status_code == 200
    assert bad.context["errors"] == ['A quoted phrase is not closed (missing ").']


def test_one_message_with_its_edit_history_reactions_and_thread(
    admin_client: Client, alice: User, bob: User, room: dict[str, Any]
) -> None:
    message = post(alice, room["id"], "first words")
    for body in ("second words", "third words"):
        response = client_for(alice).put(f"/api/messages/{message['id']}", {"body": body}, format="json")
        assert response.status_code == 200, response.content
    client_for(bob).post(f"/api/messages/{message['id']}/react", {"emoji": "👍"}, format="json")
    post(bob, room["id"], "a reply", parent_id=message["id"])
    page = admin_client.get(f"{MESSAGES}{message['id']}/change/")
    assert page.status_code == 200
    assert [r.body for r in page.context["revisions"]] == ["first words", "second words"]
    html = page.content.decode()
    for text in ("third words", "first words", "second words", "alice", "général", "edited", "👍", "bob"):
        assert text in html
    assert page.context["message"].reply_count == 1
    assert f'href="{MESSAGES}{message["id"]}/delete/"' in html
    assert admin_client.get(f"{MESSAGES}{'0' * 24}/change/").status_code == 404
    assert admin_client.get(f"{MESSAGES}not-an-id/change/").status_code == 404


def test_deleting_from_the_admin_leaves_a_tombstone_and_an_audit_entry(
    staff: User, alice: User, bob: User, room: dict[str, Any]
) -> None:
    message = post(alice, room["id"], "something to remove")
    client_for(alice).put(f"/api/messages/{message['id']}", {"body": "something edited"}, format="json")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    delete_url = f"{MESSAGES}{message['id']}/delete/"
    confirm = client.get(delete_url)
    assert confirm.status_code == 200
    assert "Are you sure" in confirm.content.decode() and "something edited" in confirm.content.decode()
    assert client.post(delete_url).status_code == 403  # no CSRF token: refused
    assert store.get_message(message["id"]).deleted is False  # type: ignore[union-attr]
    token = confirm.context["csrf_token"]
    done = client.post(delete_url, {"csrfmiddlewaretoken": str(token), "post": "yes"})
    assert done.status_code == 302 and done["Location"] == f"{MESSAGES}{message['id']}/change/"
    history = client_for(bob).get(f"/api/messages/{room['id']}").json()["results"]
    shown = next(m for m in history if m["id"] == message["id"])
    assert shown["deleted"] is True and shown["body"] == ""
    entry = AuditEntry.objects.get(action=AuditAction.MESSAGE_DELETE, message_id=message["id"])
    assert (entry.actor_id, entry.target_user_id, entry.room_id) == (staff.pk, alice.pk, int(room["id"]))
    after = client.get(f"{MESSAGES}{message['id']}/change/")
    html = after.content.decode()
    assert "deleted" in html and "something" not in html and "/delete/" not in html
    # Its links: the audit entries of this message, its reports.
    audit = client.get(after.context["audit_url"])
    assert [e.pk for e in audit.context["cl"].result_list] == [entry.pk]
    assert client.get(after.context["reports_url"]).context["cl"].result_count == 0
    again = client.get(delete_url)  # nothing left to confirm
    assert again.status_code == 302


def test_people_who_are_not_staff_are_sent_to_the_admin_login(
    alice: User, room: dict[str, Any], client: Client
) -> None:
    message = post(alice, room["id"], "mine")
    urls = [MESSAGES, f"{MESSAGES}{message['id']}/change/", f"{MESSAGES}{message['id']}/delete/"]
    member = Client()
    member.force_login(alice)  # the room's owner, but not staff
    for who in (client, member):
        for url in urls:
            response = who.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/admin/login/?next=")
        assert who.post(urls[2], {"post": "yes"}).status_code == 302
    assert store.get_message(message["id"]).deleted is False  # type: ignore[union-attr]


def bulk_room(owner: User, name: str, count: int) -> Room:
    """A room of `count` messages written in bulk as the store writes them, with their index rows
    (as bench/search_bench.py does): posting 100,000 one by one would take minutes."""
    room = Room.objects.create(name=name, created_by=owner)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    start = timezone.now() - timedelta(days=30)
    docs, rows = [], []
    for seq in range(1, count + 1):
        oid, body = ObjectId(), f"{name} {seq}" + (" needle" if seq == count // 2 else "")
        posted = start + timedelta(seconds=seq)
        posted = posted.replace(microsecond=posted.microsecond // 1000 * 1000)
        docs.append(
            {
                "_id": oid,
                **{"room_id": room.pk, "seq": seq, "version": seq, "created_version": seq, "author_id": owner.pk},
                **{"body": body, "html": plain_html(body), "has_link": False, "mentions": [], "mentions_room": False},
                **{"created_at": posted, "edited_at": None, "deleted": False, "parent_id": None, "reply_count": 0},
                **{"last_reply_at": None, "client_id": None, "idem_key": f"s:{oid}"},
                **{"reactions": [], "attachments": []},
            }
        )
        rows.append(f"{oid}\t{room.pk}\t{seq}\t{owner.pk}\t{posted.isoformat()}\t{body}\tf\tf\tf\t[]\tf\t{seq}\n")
    database = store_connection.db()
    for i in range(0, count, 5_000):
        database["messages"].insert_many(docs[i : i + 5_000])
    database["room_counters"].insert_one({"_id": room.pk, "seq": count, "version": count})
    columns = (
        "message_id, room_id, seq, author_id, posted_at, text, has_file, has_link, in_thread, mentions, "
        "mentions_room, version"
    )
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(f"COPY messaging_searchentry ({columns}) FROM STDIN") as copy:
            copy.write("".join(rows))
        cursor.execute("ANALYZE messaging_searchentry")
    return room


def plan_nodes(sql: str) -> list[dict[str, Any]]:
    """The nodes of PostgreSQL's plan for `sql` when it may not scan the table: what indexes give."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]["Plan"]
        finally:
            cursor.execute("RESET enable_seqscan")
    nodes, todo = [], [plan]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    return nodes


def test_a_page_costs_the_same_in_a_room_of_3000_messages_as_in_one_of_20(
    admin_client: Client, alice: User, mongo_url: str
) -> None:
    """Every read is a bounded range of an index, whatever the room's size: MongoDB is asked for the
    room's head and one `seq` range of 50 (the room_seq index), or the page's ids (`_id`); the
    search index's statements are ordered by a `posted_at` index, never sorted. (Measured with
    100,000 messages in one room: 22 ms a page, 24 ms deep in the room, 24 ms by author, 14 ms for a
    word; bulk-writing that many into SecantusDB takes a minute, so the test uses 3,000.)"""
    small, big = bulk_room(alice, "small", 20), bulk_room(alice, "big", 3_000)

    def cost(params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        _mongo.commands.clear()
        _mongo.active = True
        with CaptureQueriesContext(connection) as sql:
            response = admin_client.get(MESSAGES, params)
        _mongo.active = False
        return listed(response), list(_mongo.commands), [q["sql"] for q in sql.captured_queries]

    store_connection.close()  # a new client, made after the listener was registered
    admin_client.get(MESSAGES, {"room": small.pk})  # warm up (sessions, templates)

    for params in ({}, {"before": 1_000}):
        few, few_mongo, few_sql = cost({"room": small.pk, **params})
        many, many_mongo, many_sql = cost({"room": big.pk, **params})
        assert len(many) == 50 and len(few) == 20  # (`before` past its end: its newest page)
        assert [c["name"] for c in many_mongo] == [c["name"] for c in few_mongo] == ["find", "find"]
        last = 3_000 if not params else 999
        assert many_mongo[0]["filter"] == {"_id": {"$in": [big.pk]}}  # the head
        assert many_mongo[1]["filter"] == {"room_id": big.pk, "seq": {"$gte": last - 49, "$lte": last}}
        assert len(many_sql) == len(few_sql)
        assert many[0] == f"big {last}"

    needs_index()
    for params in ({}, {"author": "alice"}, {"author": "alice", "room": big.pk}):
        rows, mongo, sql = cost(params)
        assert len(rows) == 50 and rows[0] == "big 3000"
        assert [c["name"] for c in mongo] == ["find"]  # the page's 50 documents by id
        assert list(mongo[0]["filter"]) == ["_id"] and len(mongo[0]["filter"]["_id"]["$in"]) == 50
        (listing,) = [q for q in sql if "messaging_searchentry" in q]
        nodes = plan_nodes(listing)
        assert nodes[0]["Node Type"] == "Limit", nodes
        assert not [n for n in nodes if n["Node Type"] in ("Sort", "Seq Scan")], nodes  # index order, bounded
    found, _, _ = cost({"q": "needle"})
    assert found == ["big 1500 needle", "small 10 needle"]


# --- reports -----------------------------------------------------------------------------------


def test_reports_are_listed_and_resolved_by_the_admin_actions(
    admin_client: Client, staff: User, alice: User, bob: User, carol: User, room: dict[str, Any]
) -> None:
    client_for(carol).post(f"/api/rooms/{room['id']}/join")
    rude = post(alice, room["id"], "something rude")
    fine = post(alice, room["id"], "something fine")
    by_bob = report_create(user=bob, message_id=rude["id"], reason="rude")
    by_carol = report_create(user=carol, message_id=rude["id"], reason="very rude")
    mistaken = report_create(user=bob, message_id=fine["id"], reason="mistake")
    listing = admin_client.get("/admin/messaging/report/", {"status__exact": "open", "room": room["id"]})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "something rude" in html and "something fine" in html  # the messages' excerpts, from the store
    assert f'href="{MESSAGES}{rude["id"]}/change/"' in html
    assert admin_client.get("/admin/messaging/report/", {"room": "général"}).context["cl"].result_count == 3
    assert admin_client.get("/admin/messaging/report/", {"room": "other"}).context["cl"].result_count == 0

    dismissed = admin_client.post(
        "/admin/messaging/report/", {"action": "dismiss", "_selected_action": [mistaken.pk], "index": 0}
    )
    assert dismissed.status_code == 302
    mistaken.refresh_from_db()
    assert (mistaken.status, mistaken.resolved_by_id) == (ReportStatus.DISMISSED, staff.pk)
    assert store.get_message(fine["id"]).deleted is False  # type: ignore[union-attr]

    actioned = admin_client.post(
        "/admin/messaging/report/",
        {"action": "delete_messages", "_selected_action": [by_bob.pk, by_carol.pk], "index": 0},
        follow=True,
    )
    assert "2 reports resolved by deleting the message." in actioned.content.decode()
    assert store.get_message(rude["id"]).deleted is True  # type: ignore[union-attr]
    assert set(Report.objects.filter(message_id=rude["id"]).values_list("status", flat=True)) == {"actioned"}
    audited = AuditEntry.objects.filter(actor=staff).values_list("action", "message_id")
    assert (AuditAction.MESSAGE_DELETE, rude["id"]) in audited
    assert (AuditAction.REPORT_RESOLVE, fine["id"]) in audited
    # Resolved already: said so, nothing happens; and nobody adds, edits or deletes a report by hand.
    again = admin_client.post(
        "/admin/messaging/report/", {"action": "dismiss", "_selected_action": [mistaken.pk], "index": 0}, follow=True
    )
    assert "1 report was resolved already." in again.content.decode()
    assert admin_client.get("/admin/messaging/report/add/").status_code == 403
    assert admin_client.post(f"/admin/messaging/report/{mistaken.pk}/change/", {"status": "open"}).status_code == 403
    assert admin_client.get(f"/admin/messaging/report/{mistaken.pk}/delete/").status_code == 403
    view = admin_client.get(f"/admin/messaging/report/{by_bob.pk}/change/")
    assert view.status_code == 200 and "(deleted)" in view.content.decode()
    assert 'value="delete_messages"' not in view.content.decode()  # resolved: no buttons

    # An open report's page has the actions as buttons, posting to the changelist's action.
    other = post(bob, room["id"], "another one")
    third = report_create(user=alice, message_id=other["id"], reason="spam")
    page = admin_client.get(f"/admin/messaging/report/{third.pk}/change/").content.decode()
    assert 'value="delete_messages"' in page and 'action="/admin/messaging/report/"' in page
    admin_client.post("/admin/messaging/report/", {"action": "dismiss", "_selected_action": third.pk, "index": 0})
    third.refresh_from_db()
    assert third.status == ReportStatus.DISMISSED


# --- bans and mutes ----------------------------------------------------------------------------


def test_a_ban_added_in_the_admin_goes_through_the_service_and_is_lifted_by_the_action(
    admin_client: Client, staff: User, alice: User, bob: User, room: dict[str, Any]
) -> None:
    add = admin_client.get("/admin/rooms/roomban/add/")
    assert add.status_code == 200
    made = admin_client.post(
        "/admin/rooms/roomban/add/",
        {"room": room["id"], "user": bob.pk, "reason": "spam", "duration_seconds": str(24 * 3600)},
    )
    assert made.status_code == 302, made.context["adminform"].form.errors if made.context else made
    ban = RoomBan.objects.get(room_id=room["id"], user=bob)
    assert ban.created_by_id == staff.pk and ban.reason == "spam" and ban.expires_at is not None
    assert not Membership.objects.filter(room_id=room["id"], user=bob).exists()  # the service removed him
    assert AuditEntry.objects.filter(action=AuditAction.BAN, actor=staff, target_user=bob).exists()
    assert client_for(bob).post(f"/api/rooms/{room['id']}/join").status_code == 403

    # The service's refusal is the form's error: owners cannot be banned.
    refused = admin_client.post("/admin/rooms/roomban/add/", {"room": room["id"], "user": alice.pk, "reason": ""})
    assert refused.status_code == 200
    assert "Owners cannot be banned." in refused.content.decode()
    assert not RoomBan.objects.filter(user=alice).exists()

    listing = admin_client.get("/admin/rooms/roomban/", {"room": room["id"], "state": "in_force"})
    assert listing.context["cl"].result_count == 1
    # Never edited or deleted as a row: that would skip the audit log.
    assert admin_client.post(f"/admin/rooms/roomban/{ban.pk}/change/", {"reason": "x"}).status_code == 403
    assert admin_client.post(f"/admin/rooms/roomban/{ban.pk}/delete/", {"post": "yes"}).status_code == 403
    lifted = admin_client.post(
        "/admin/rooms/roomban/", {"action": "lift", "_selected_action": [ban.pk], "index": 0}, follow=True
    )
    assert "Lifted 1 room ban." in lifted.content.decode()
    assert not RoomBan.objects.filter(pk=ban.pk).exists()
    assert AuditEntry.objects.filter(action=AuditAction.UNBAN, actor=staff, target_user=bob).exists()
    assert client_for(bob).post(f"/api/rooms/{room['id']}/join").status_code in (200, 201, 204)


def test_a_mute_added_in_the_admin_is_lifted_by_the_action(
    admin_client: Client, staff: User, bob: User, room: dict[str, Any]
) -> None:
    made = admin_client.post("/admin/rooms/roommute/add/", {"room": room["id"], "user": bob.pk, "duration_seconds": ""})
    assert made.status_code == 302
    mute = RoomMute.objects.get(room_id=room["id"], user=bob)
    assert mute.expires_at is None
    refused = client_for(bob).post(f"/api/messages/{room['id']}", {"body": "hi"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "muted"
    admin_client.post("/admin/rooms/roommute/", {"action": "lift", "_selected_action": [mute.pk], "index": 0})
    assert not RoomMute.objects.filter(pk=mute.pk).exists()
    assert client_for(bob).post(f"/api/messages/{room['id']}", {"body": "hi"}, format="json").status_code == 201
    actions = list(AuditEntry.objects.filter(actor=staff, target_user=bob).values_list("action", flat=True))
    assert sorted(actions) == [AuditAction.MUTE, AuditAction.UNMUTE]


# --- the audit log -----------------------------------------------------------------------------


def test_the_audit_log_is_read_only_for_everyone(
    admin_client: Client, staff: User, alice: User, bob: User, room: dict[str, Any]
) -> None:
    message = post(bob, room["id"], "to delete")
    client_for(alice).delete(f"/api/messages/{message['id']}")  # the owner deletes bob's message
    admin_client.post("/admin/rooms/roommute/add/", {"room": room["id"], "user": bob.pk})
    entries = admin_client.get("/admin/rooms/auditentry/")
    assert entries.status_code == 200
    assert entries.context["cl"].result_count == 2
    html = entries.content.decode()
    assert f'href="{MESSAGES}{message["id"]}/change/"' in html
    assert "Add audit entry" not in html and 'name="action"' not in html  # no add, no actions
    by_action = admin_client.get("/admin/rooms/auditentry/", {"action__exact": "message_delete"})
    assert [e.actor_id for e in by_action.context["cl"].result_list] == [alice.pk]
    by_actor = admin_client.get("/admin/rooms/auditentry/", {"q": "root"})
    assert [e.action for e in by_actor.context["cl"].result_list] == [AuditAction.MUTE]
    assert admin_client.get("/admin/rooms/auditentry/", {"room": "général"}).context["cl"].result_count == 2
    assert admin_client.get("/admin/rooms/auditentry/", {"room": "0"}).context["cl"].result_count == 0

    entry = AuditEntry.objects.get(action=AuditAction.MESSAGE_DELETE)
    view = admin_client.get(f"/admin/rooms/auditentry/{entry.pk}/change/")
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()  # shown, not a form
    assert admin_client.post(f"/admin/rooms/auditentry/{entry.pk}/change/", {"reason": "edited"}).status_code == 403
    assert admin_client.get(f"/admin/rooms/auditentry/{entry.pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/rooms/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/rooms/auditentry/add/").status_code == 403
    assert admin_client.post(
        "/admin/rooms/auditentry/", {"action": "delete_selected", "_selected_action": [entry.pk], "index": 0}
    ).status_code in (200, 302)
    assert AuditEntry.objects.filter(pk=entry.pk, reason="").exists()  # untouched


# --- deactivating accounts ---------------------------------------------------------------------


def user_form(client: Client, user: User) -> dict[str, Any]:
    """The user change form as the admin renders it, ready to post back."""
    page = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        widget = field.widget
        if hasattr(widget, "widgets"):  # the split date and time of last_login / date_joined
            for i, part in enumerate(widget.decompress(value)):
                data[f"{name}_{i}"] = widget.widgets[i].format_value(part) or ""
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = str(value)
    return data


def refused_with_401(user: User) -> bool:
    response = client_for(user).get("/api/auth/me")
    return response.status_code == 401


def test_unchecking_active_in_the_admin_deactivates_through_the_service(
    admin_client: Client, staff: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    access = tokens_for(bob).access
    me = client_for(bob).get("/api/auth/me")
    assert me.status_code == 200
    data = user_form(admin_client, bob)
    data.pop("is_active")
    data["display_name"] = "Bob B."
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin_client.post(f"/admin/accounts/user/{bob.pk}/change/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    bob.refresh_from_db()
    assert (bob.is_active, bob.display_name) == (False, "Bob B.")
    entry = AuditEntry.objects.get(action=AuditAction.USER_DEACTIVATE)
    assert (entry.actor_id, entry.target_user_id, entry.room_id) == (staff.pk, bob.pk, None)
    response = client_for().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 401


def test_the_deactivate_action_goes_through_the_service(
    admin_client: Client, staff: User, alice: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            "/admin/accounts/user/",
            {"action": "deactivate", "_selected_action": [alice.pk, bob.pk, staff.pk], "index": 0},
            follow=True,
        )
    html = done.content.decode()
    assert "Deactivated 2 users." in html
    assert "You cannot deactivate yourself." in html
    assert refused_with_401(alice) and refused_with_401(bob)
    staff.refresh_from_db()
    assert staff.is_active
    targets = set(
        AuditEntry.objects.filter(action=AuditAction.USER_DEACTIVATE).values_list("target_user_id", flat=True)
    )
    assert targets == {alice.pk, bob.pk}


def test_staff_cannot_deactivate_themselves_in_the_change_form(admin_client: Client, staff: User) -> None:
    data = user_form(admin_client, staff)
    data.pop("is_active")
    saved = admin_client.post(f"/admin/accounts/user/{staff.pk}/change/", data, follow=True)
    assert "You cannot deactivate yourself. root stays active." in saved.content.decode()
    staff.refresh_from_db()
    assert staff.is_active
    assert not AuditEntry.objects.filter(action=AuditAction.USER_DEACTIVATE).exists()


# --- in a browser ------------------------------------------------------------------------------


@pytest.fixture
def seeded_site(ui_server: ServerProcess) -> dict[str, Any]:
    """A room's morning, posted through the live server's API (Playwright's loop owns this thread)."""
    User.objects.create_user(username="root", password=PASSWORD, is_staff=True, is_superuser=True)
    alice = User.objects.create_user(username="alice", password=PASSWORD, display_name="Alice Martin")
    bob = User.objects.create_user(username="bob", password=PASSWORD, display_name="Bob Ito")

    def api(user: User) -> httpx.Client:
        headers = {"Authorization": f"Bearer {tokens_for(user).access}"}
        return httpx.Client(base_url=ui_server.http, headers=headers, timeout=10)

    with api(alice) as as_alice, api(bob) as as_bob:

        def say(client: httpx.Client, body: str, **extra: Any) -> str:
            response = client.post(f"/api/messages/{room['id']}", json={"body": body, **extra})
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        room = as_alice.post("/api/rooms/", json={"name": "general"}).json()
        assert as_bob.post(f"/api/rooms/{room['id']}/join").status_code in (200, 201, 204)
        first = say(as_alice, "Morning all! The release notes for 2.4 are in the wiki.")
        say(as_bob, "Thanks, reading them now 👀")
        typo = say(as_alice, "Deploy is schedulded for 14:00 UTC")
        as_alice.put(f"/api/messages/{typo}", json={"body": "Deploy is scheduled for 14:00 UTC"})
        say(as_bob, "Can we push it to 15:00? The café downstairs has a fire drill at 14:00.")
        spam = say(as_bob, "BUY CHEAP FOLLOWERS at example.com!!!")
        say(as_alice, "Sure, 15:00 it is.", parent_id=first)
        as_alice.post(f"/api/messages/{first}/react", json={"emoji": "🎉"})
        as_alice.delete(f"/api/messages/{spam}")
        say(as_alice, "Reminder: retro on Friday, bring one thing that went well.")
    return {"room": room}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_screenshot_of_the_messages_page(
    browser: Browser, ui_server: ServerProcess, seeded_site: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{ui_server.http}/admin/login/?next={MESSAGES}")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/messaging/message/$"))
    page.get_by_label("Filter by room").fill("general")
    page.get_by_label("Filter by room").press("Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(7)
    expect(page.locator("#result_list tr.deleted")).to_have_count(1)
    expect(page.locator("#changelist-filter")).to_contain_text("general")
    shot(page, "40-admin-messages")
    context.close()
