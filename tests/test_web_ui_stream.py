"""The web UI on one socket, the user stream, in Chromium: other rooms' badges and the notification
count rise live, switching rooms opens no socket, rooms joined or lost show at once, and what was
posted while the page loaded is on it (the page's own cursor)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, WebSocket, expect

from accounts.services import tokens_for
from rooms.models import Membership
from tests import test_web_ui
from tests.live import ServerProcess, bearer
from tests.test_web_ui import PASSWORD, live, send, shot, sign_up
from tests.test_web_ui_daily import DESKTOP, PHONE, seed_room, user_named

ui_server = test_web_ui.ui_server  # the same server fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def api_as(server: ServerProcess, username: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, headers=bearer(tokens_for(user_named(username)).access), timeout=10)


def badge(page: Page, room_id: int) -> object:
    return page.locator(f'#room-list a[data-room-id="{room_id}"] .badge')


def test_other_rooms_badges_and_notifications_rise_live_on_one_socket(
    browser: Browser, ui_server: ServerProcess
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "reader")
    writer_context = browser.new_context(viewport=DESKTOP)
    sign_up(writer_context, ui_server, "writer").close()
    reader, writer = user_named("reader"), user_named("writer")
    rooms = [seed_room(writer, 30, name=f"team-{i}", others=(reader,)) for i in range(12)]
    sockets: list[WebSocket] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(f"{ui_server.http}/chat/{rooms[0].pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    expect(badge(page, rooms[1].pk)).to_have_text("30")

    # Another room gets a message: its badge rises within a second, no reload, no poll.
    writer_api = api_as(ui_server, "writer")
    started = time.monotonic()
    assert writer_api.post(f"/api/messages/{rooms[1].pk}", json={"body": "news elsewhere"}).status_code == 201
    expect(badge(page, rooms[1].pk)).to_have_text("31", timeout=2_000)
    assert time.monotonic() - started < 1.5
    assert writer_api.post(f"/api/messages/{rooms[0].pk}", json={"body": "news here"}).status_code == 201
    expect(page.locator("#messages .message .body", has_text="news here")).to_have_count(1)

    # A mention in a third room: the notification count rises live.
    expect(page.locator("#notification-count")).to_be_hidden()
    assert writer_api.post(f"/api/messages/{rooms[2].pk}", json={"body": "look @reader"}).status_code == 201
    expect(page.locator("#notification-count")).to_have_text("1", timeout=2_000)
    expect(badge(page, rooms[2].pk)).to_have_text("31")
    shot(page, "20-stream-badges")

    # Switching rooms opens no socket; the badge of the room opened goes away.
    page.locator(f'#room-list a[data-room-id="{rooms[1].pk}"]').click()
    expect(page.locator("#messages .message .body", has_text="news elsewhere")).to_have_count(1)
    expect(badge(page, rooms[1].pk)).to_have_count(0)
    send(page, "answer from the other room")
    expect(page.locator("#messages .message:not(.pending)", has_text="answer from the other room")).to_have_count(1)
    page.locator(f'#room-list a[data-room-id="{rooms[0].pk}"]').click()
    expect(page.locator("#messages .message .body", has_text="news here")).to_have_count(1)
    assert len(sockets) == 1, [s.url for s in sockets]

    # Read on another device: the badge follows the read marker.
    reader_api = api_as(ui_server, "reader")
    assert reader_api.post(f"/api/rooms/{rooms[2].pk}/read", json={"seq": 31}).status_code in (200, 204)
    expect(badge(page, rooms[2].pk)).to_have_count(0, timeout=2_000)

    # Added to a room and removed from another: the list follows at once.
    fresh = seed_room(writer, 0, name="brand-new")
    assert writer_api.post(f"/api/rooms/{fresh.pk}/members", json={"user_id": reader.pk}).status_code == 201
    expect(page.locator(f'#room-list a[data-room-id="{fresh.pk}"]')).to_have_count(1, timeout=2_000)
    assert writer_api.delete(f"/api/rooms/{rooms[3].pk}/members/{reader.pk}").status_code == 204
    expect(page.locator(f'#room-list a[data-room-id="{rooms[3].pk}"]')).to_have_count(0, timeout=2_000)
    assert not Membership.objects.filter(room=rooms[3], user=reader).exists()
    assert len(sockets) == 1


def test_a_phone_sees_a_message_posted_while_its_page_loaded(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context(viewport=PHONE)
    page = sign_up(context, ui_server, "phone_reader")
    sign_up(browser.new_context(), ui_server, "phone_writer").close()
    reader, writer = user_named("phone_reader"), user_named("phone_writer")
    room = seed_room(writer, 5, name="field", others=(reader,))
    writer_api = api_as(ui_server, "phone_writer")

    # Hold the stream's first handshake until a message was posted after the page was rendered.
    posted: list[int] = []

    def late(ws: object) -> None:
        if not posted:
            posted.append(writer_api.post(f"/api/messages/{room.pk}", json={"body": "posted meanwhile"}).status_code)
        ws.connect_to_server()  # type: ignore[attr-defined]

    page.route_web_socket("**/api/ws*", late)
    page.goto(f"{ui_server.http}/chat/{room.pk}/")
    live(page)
    expect(page.locator("#messages .message .body", has_text="posted meanwhile")).to_have_count(1)
    expect(page.locator("#messages .message .body", has_text="message 5 of the long room")).to_have_count(1)
    page.wait_for_timeout(500)
    expect(page.locator("#messages .message .body", has_text="posted meanwhile")).to_have_count(1)  # once
    assert posted == [201]
    shot(page, "21-stream-phone")
    context.close()  # its page would reconnect to a stopped server through the route above


def test_a_newcomer_joins_a_private_room_through_an_invite_link(browser: Browser, ui_server: ServerProcess) -> None:
    owner_context = browser.new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    owner = sign_up(owner_context, ui_server, "link_owner")
    owner.get_by_label("New room name").fill("hideout")
    owner.get_by_label("private").check()
    owner.get_by_role("button", name="Create").click()
    expect(owner.locator("#room-title")).to_have_text("hideout")
    owner.get_by_role("button", name="Members").click()
    owner.get_by_role("button", name="Create an invite link").click()
    link = owner.get_by_label("Invite link")
    expect(link).to_have_value(re.compile(r"/invite/[\w-]+/$"))
    url = link.input_value()
    owner.get_by_role("button", name="Copy").click()
    expect(owner.get_by_role("button", name="Copied")).to_be_visible()
    assert owner.evaluate("navigator.clipboard.readText()") == url
    shot(owner, "22-invite-link")

    # Carol has no account: the link sends her to sign in, she signs up instead, and comes back.
    newcomer = browser.new_context(viewport=PHONE).new_page()
    newcomer.goto(url)
    expect(newcomer).to_have_url(re.compile(r"/login/\?next=/invite/"))
    newcomer.get_by_role("link", name="Create an account").click()
    newcomer.get_by_label("Username").fill("carol_link")
    newcomer.get_by_label("Password").fill(PASSWORD)
    newcomer.get_by_role("button", name="Sign up").click()
    expect(newcomer.get_by_role("heading", name="hideout")).to_be_visible()
    shot(newcomer, "23-invite-page")
    newcomer.get_by_role("button", name="Join hideout").click()
    expect(newcomer).to_have_url(re.compile(r"/chat/\d+/$"))
    live(newcomer)
    expect(newcomer.locator("#room-title")).to_have_text("hideout")
    send(newcomer, "thanks for the link")
    expect(owner.locator("#messages .message .body", has_text="thanks for the link")).to_have_count(1)


def test_alice_finds_bob_opens_a_direct_room_and_he_sees_it_without_reloading(
    browser: Browser, ui_server: ServerProcess
) -> None:
    bob = sign_up(browser.new_context(viewport=PHONE), ui_server, "bob_dm")
    alice = sign_up(browser.new_context(viewport=DESKTOP), ui_server, "alice_dm")
    sign_up(browser.new_context(), ui_server, "bobby_other").close()
    alice.get_by_label("Find a person to message").fill("BOB")  # case does not matter
    options = alice.locator("#dm-results button")
    expect(options).to_have_count(2)  # bob_dm and bobby_other, never oneself
    shot(alice, "24-person-picker")
    alice.locator("#dm-results button", has_text="bob_dm").click()
    expect(alice.locator("#room-title")).to_have_text("bob_dm")
    expect(alice.locator("#dm-list a", has_text="bob_dm")).to_have_count(1)
    send(alice, "hi bob, a word in private")
    # Bob, on his phone, sees the conversation appear (room.added on his stream) and its badge.
    entry = bob.locator("#dm-list a", has_text="alice_dm")
    expect(entry).to_have_count(1, timeout=3_000)
    expect(entry.locator(".badge")).to_have_text("1")
    entry.click()
    expect(bob.locator("#messages .message .body", has_text="a word in private")).to_have_count(1)
    send(bob, "hi alice")
    expect(alice.locator("#messages .message .body", has_text="hi alice")).to_have_count(1)
    shot(bob, "25-direct-room-phone")
    # Opening it again from the picker gives the same room.
    alice.get_by_label("Find a person to message").fill("bob_")
    alice.locator("#dm-results button", has_text="bob_dm").click()
    expect(alice.locator("#dm-list a")).to_have_count(1)


def test_the_room_directory_finds_public_rooms_and_joins_one(browser: Browser, ui_server: ServerProcess) -> None:
    page = sign_up(browser.new_context(viewport=DESKTOP), ui_server, "wanderer")
    sign_up(browser.new_context(), ui_server, "gardener").close()
    gardener = user_named("gardener")
    garden = seed_room(gardener, 3, name="garden club")
    garden.description = "tomatoes and roses"
    garden.save()
    secret = seed_room(gardener, 1, name="garden secrets")
    secret.is_private = True
    secret.save()
    page.get_by_role("button", name="Browse public rooms").click()
    page.get_by_label("Find a room").fill("ROSES")  # the description counts, case does not
    found = page.locator("#side-body .result")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("garden club")
    page.get_by_label("Find a room").fill("garden")
    expect(found).to_have_count(1)  # the private one never shows
    shot(page, "26-directory")
    found.get_by_role("button", name="Join").click()
    expect(page.locator("#room-title")).to_have_text("garden club")
    expect(page.locator(f'#room-list a[data-room-id="{garden.pk}"]')).to_have_count(1)
    expect(page.locator("#messages .message .body", has_text="message 3 of the long room")).to_have_count(1)
    assert Membership.objects.filter(room=garden, user=user_named("wanderer")).exists()


def test_a_profile_picture_and_name_show_beside_messages_and_members(
    browser: Browser, ui_server: ServerProcess, tmp_path: Path
) -> None:
    alice = sign_up(browser.new_context(viewport=DESKTOP), ui_server, "alice_face")
    bob = sign_up(browser.new_context(viewport=PHONE), ui_server, "bob_face")
    room = seed_room(user_named("alice_face"), 0, name="faces", others=(user_named("bob_face"),))
    picture = tmp_path / "me.png"
    Image.new("RGB", (640, 480), (30, 140, 90)).save(picture)
    alice.goto(f"{ui_server.http}/chat/{room.pk}/")
    live(alice)
    send(alice, "before the picture")
    mine = alice.locator("#messages .message", has_text="before the picture")
    expect(mine.locator(".avatar.initials")).to_have_text("A")  # one word, one letter

    alice.get_by_role("button", name="Your profile").click()
    dialog = alice.locator("#profile-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Upload a picture").set_input_files(str(picture))
    expect(dialog.locator("#profile-face img.avatar")).to_have_count(1)
    dialog.get_by_label("Name shown to others").fill("Alice Liddell")
    dialog.get_by_label("E-mail me about mentions").uncheck()
    shot(alice, "27-profile-dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(alice.locator("#me-name")).to_have_text("Alice Liddell")
    # The message already on the page takes the new face and name at once.
    expect(mine.locator("img.avatar")).to_have_count(1)
    expect(mine.locator(".author")).to_have_text("Alice Liddell")
    me = user_named("alice_face")
    assert me.display_name == "Alice Liddell" and not me.email_notifications and me.avatar_name

    # Bob, on his phone, sees her face beside her message and in the members list, his initials beside his.
    bob.goto(f"{ui_server.http}/chat/{room.pk}/")
    hers = bob.locator("#messages .message", has_text="before the picture")
    expect(hers.locator("img.avatar")).to_have_count(1)
    size = hers.locator("img.avatar").evaluate("img => [img.naturalWidth, img.complete]")
    assert size == [256, True], size  # the square thumbnail, loaded
    send(bob, "nice picture")
    expect(bob.locator("#messages .message", has_text="nice picture").locator(".avatar.initials")).to_have_text("B")
    bob.get_by_role("button", name="Members").click()
    members = bob.locator("#side-body .members li")
    expect(members).to_have_count(2)
    expect(members.filter(has_text="Alice Liddell").locator("img.avatar")).to_have_count(1)
    shot(bob, "28-members-faces-phone")

    # Removing the picture brings the initials back.
    alice.get_by_role("button", name="Your profile").click()
    dialog.get_by_role("button", name="Remove picture").click()
    expect(dialog.locator("#profile-face .avatar.initials")).to_have_text("AL")
    dialog.get_by_role("button", name="Cancel").click()
    expect(mine.locator(".avatar.initials")).to_have_text("AL")
