"""The web UI as a team's daily tool, in Chromium: long rooms, jumps to a message, threads,
in-page dialogs, the outbox across reloads, phones and the dark theme. Screenshots go to
test-artifacts/ui/ (the README shows some of them from docs/)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from messaging import store
from messaging.rendering import render_body
from rooms.models import Membership, Role, Room
from tests import test_web_ui
from tests.live import ServerProcess
from tests.test_web_ui import live, shot, sign_up

ui_server = test_web_ui.ui_server  # the same server fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def seed_room(owner: User, count: int, *, name: str = "long", others: tuple[User, ...] = (), needle: int = 0) -> Room:
    """A room with `count` messages by its owner, straight into the store (fast)."""
    room = Room.objects.create(name=name, created_by=owner)
    Membership.objects.create(room=room, user=owner, role=Role.OWNER)
    for other in others:
        Membership.objects.create(room=room, user=other)
    for i in range(1, count + 1):
        body = f"message {i} of the long room" + (" with the needle" if i == needle else "")
        store.insert_message(
            room_id=room.pk, author_id=owner.pk, body=body, rendered=render_body(body, lambda n: {}), now=timezone.now()
        )
    return room


def user_named(username: str) -> User:
    return User.objects.get(username=username)


def no_browser_dialogs(page: Page) -> None:
    """alert/confirm/prompt are not used: any of them fails the test."""

    def refuse(dialog: Any) -> None:
        dialog.dismiss()
        raise AssertionError(f"a browser {dialog.type}() was shown: {dialog.message}")

    page.on("dialog", refuse)


def in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_a_long_room_pages_back_to_its_first_message(browser: Browser, ui_server: ServerProcess, screen: str) -> None:
    viewport = PHONE if screen == "phone" else DESKTOP
    context = browser.new_context(viewport=viewport)
    page = sign_up(context, ui_server, f"reader_{screen}")
    room = seed_room(user_named(f"reader_{screen}"), 300)

    # The first paint comes from the server: the newest messages are in the HTML itself.
    html = context.request.get(f"{ui_server.http}/chat/{room.pk}/").text()
    assert "message 300 of the long room" in html and "message 251 of the long room" in html
    assert "message 250 of the long room" not in html

    no_browser_dialogs(page)
    page.goto(f"{ui_server.http}/chat/{room.pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    messages = page.locator("#messages")
    expect(page.locator("#messages .message", has_text="message 300 of")).to_be_in_viewport()
    # Only the list scrolls: the page is exactly the window, header and composer in view.
    assert page.evaluate("document.scrollingElement.scrollHeight") <= viewport["height"]
    for _ in range(40):
        if page.locator("#messages .message", has_text="message 1 of the long room").count():
            break
        messages.evaluate("list => { list.scrollTop = 0; list.dispatchEvent(new Event('scroll')); }")
        page.wait_for_timeout(150)
    first = page.locator("#messages .message", has_text="message 1 of the long room")
    expect(first).to_have_count(1)
    expect(page.locator("#messages .message")).to_have_count(300)
    # The page that loaded last kept the reader's place (message 51 stayed where it was); up to the top.
    expect(page.locator("#messages .message", has_text="message 51 of the long room")).to_be_in_viewport()
    messages.evaluate("list => { list.scrollTop = 0; }")
    expect(first).to_be_in_viewport()
    expect(page.get_by_text("The beginning of this room.")).to_be_visible()
    assert in_view(page, "#room-title") and in_view(page, "#message-input")
    # Grouped: one author's run shows its name once per group, not 300 times.
    assert page.locator("#messages .message:not(.grouped)").count() < 300
    shot(page, f"10-long-room-top-{screen}")

    # A new message while the reader is up there: it is counted on a button, not scrolled to.
    store_body = "a message while you read history"
    store.insert_message(
        room_id=room.pk,
        author_id=user_named(f"reader_{screen}").pk,
        body=store_body,
        rendered=render_body(store_body, lambda n: {}),
        now=timezone.now(),
    )
    httpx.get(f"{ui_server.http}/health")  # (the socket's tick finds it within WS_TICK_SECONDS)
    expect(page.locator("#messages .message", has_text=store_body)).to_have_count(1, timeout=10_000)
    expect(first).to_be_in_viewport()
    page.locator("#jump-latest").click()
    expect(page.locator("#messages .message", has_text=store_body)).to_be_in_viewport()


def test_a_search_result_opens_the_message_in_its_place(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "seeker")
    room = seed_room(user_named("seeker"), 300, needle=20)
    from search import indexing  # the worker's job, run here: the search index is its own

    assert indexing.catch_up_room(room.pk) == 300
    no_browser_dialogs(page)
    page.goto(f"{ui_server.http}/chat/")
    live(page)
    page.get_by_label("Search messages").fill("needle")
    page.get_by_label("Search messages").press("Enter")
    page.locator("#side-body .result", has_text="needle").click()
    expect(page).to_have_url(re.compile(rf"/chat/{room.pk}/\?message=[0-9a-f]{{24}}$"))
    target = page.locator("#messages .message.highlight")
    expect(target).to_contain_text("message 20 of the long room with the needle")
    expect(target).to_be_in_viewport()
    shot(page, "11-search-jump")
    # Newer pages load below it as the reader scrolls down to the present.
    for _ in range(40):
        if page.locator("#messages .message", has_text="message 300 of").count():
            break
        page.locator("#messages").evaluate(
            "l => { l.scrollTop = l.scrollHeight; l.dispatchEvent(new Event('scroll')); }"
        )
        page.wait_for_timeout(150)
    expect(page.locator("#messages .message", has_text="message 300 of")).to_have_count(1)


def test_dialogs_menus_mentions_and_inline_errors(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    bob_page = sign_up(browser.new_context(), ui_server, "bob_daily")
    page = sign_up(context, ui_server, "alice_daily")
    no_browser_dialogs(page)
    expect(page.get_by_label("Message", exact=True)).to_be_disabled()  # no room open: nothing to lose

    page.get_by_label("New room name").fill("secret plans")
    page.locator("#new-room-private").check()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#connection-status")).to_have_text("Connected")
    expect(page.locator("#new-room-private")).not_to_be_checked()  # the form is reset
    expect(page.get_by_label("New room name")).to_have_value("")
    expect(page.locator("#online-count")).to_have_text("· 1 online")  # oneself, connected
    room_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    Membership.objects.create(room_id=int(room_id), user=user_named("bob_daily"))

    # @-mention autocomplete from the room's members.
    box = page.get_by_label("Message", exact=True)
    box.fill("")
    box.press_sequentially("hi @bo")
    option = page.get_by_role("option", name=re.compile("@bob_daily"))
    expect(option).to_be_visible()
    box.press("Enter")
    expect(box).to_have_value("hi @bob_daily ")
    box.press("Enter")
    expect(page.locator("#messages .mention", has_text="@bob_daily")).to_have_count(1)

    # An inline error, not an alert: a message over the length limit.
    box.fill("x" * 10_001)
    box.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("at most 10000 characters")
    box.fill("")

    # The emoji picker reacts.
    message = page.locator("#messages .message", has_text="hi @bob_daily")
    message.hover()
    message.get_by_role("button", name="Add a reaction").click()
    page.get_by_label("Search emoji").fill("rocket")
    page.get_by_role("option", name="rocket").click()
    expect(message.locator(".reaction.mine")).to_have_text("🚀 1")
    shot(page, "12-emoji-and-mention")

    # Bob's message: the owner (a moderator) may delete it, after an in-page confirmation.
    bob_page.goto(f"{ui_server.http}/chat/{room_id}/")
    live(bob_page)
    bob_box = bob_page.get_by_label("Message", exact=True)
    bob_box.fill("bob was here")
    bob_box.press("Enter")
    theirs = page.locator("#messages .message", has_text="bob was here")
    expect(theirs).to_have_count(1)
    theirs.hover()
    theirs.get_by_role("button", name="Delete").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    shot(page, "13-confirm-delete")
    page.get_by_role("button", name="Cancel").click()
    expect(theirs).to_have_count(1)
    theirs.hover()
    theirs.get_by_role("button", name="Delete").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#messages .deleted")).to_have_count(1)
    expect(bob_page.locator("#messages .deleted")).to_have_count(1)
    # Bob, a plain member, gets no Delete on alice's message.
    mine = bob_page.locator("#messages .message", has_text="hi @bob_daily")
    mine.hover()
    expect(mine.get_by_role("button", name="Delete")).to_have_count(0)
    # Esc closes the side panel.
    page.get_by_role("button", name="Members").click()
    expect(page.locator("#side")).to_be_visible()
    page.locator("#side-title").click()
    page.keyboard.press("Escape")
    expect(page.locator("#side")).to_be_hidden()


def test_unsent_messages_survive_a_room_switch_and_a_reload(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "offline_writer")
    me = user_named("offline_writer")
    first = seed_room(me, 3, name="first")
    second = seed_room(me, 1, name="second")
    no_browser_dialogs(page)
    # Sockets and REST posts go nowhere: the network is down for this page.
    page.route_web_socket(re.compile(r"/api/ws(\?|$)"), lambda ws: ws.close(code=1006, reason="offline"))
    page.route(
        re.compile(r"/api/messages/\d+$"),
        lambda route: route.abort() if route.request.method == "POST" else route.continue_(),
    )
    page.goto(f"{ui_server.http}/chat/{first.pk}/")
    live(page)
    box = page.get_by_label("Message", exact=True)
    box.fill("written on the train")
    box.press("Enter")
    expect(page.locator(".message.pending", has_text="written on the train")).to_have_count(1)
    page.locator(f'#room-list a[data-room-id="{second.pk}"]').click()
    expect(page.locator("#room-title")).to_have_text("second")
    page.locator(f'#room-list a[data-room-id="{first.pk}"]').click()
    expect(page.locator(".message.pending", has_text="written on the train")).to_have_count(1)
    shot(page, "14-outbox-offline")

    # Back online in a new page load: sent once, acknowledged, stored once.
    page.unroute_all()
    fresh = context.new_page()
    fresh.goto(f"{ui_server.http}/chat/{first.pk}/")
    live(fresh)
    expect(fresh.locator("#messages .message:not(.pending)", has_text="written on the train")).to_have_count(1)
    expect(fresh.locator(".message.pending")).to_have_count(0)
    page.close()
    fresh.reload()
    live(fresh)
    expect(fresh.locator("#messages .message", has_text="written on the train")).to_have_count(1)
    stored = [m for m in store.messages_by_version(first.pk, 0, 100) if m.body == "written on the train"]
    assert len(stored) == 1


def test_threads_on_a_phone_and_the_dark_theme(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context(viewport=PHONE, color_scheme="dark")
    page = sign_up(context, ui_server, "night_owl")
    room = seed_room(user_named("night_owl"), 5, name="night")
    no_browser_dialogs(page)
    page.goto(f"{ui_server.http}/chat/{room.pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    assert in_view(page, "#room-title")
    background = page.evaluate("getComputedStyle(document.querySelector('.pane')).backgroundColor")
    assert background == "rgb(24, 28, 35)"  # the dark theme follows prefers-color-scheme
    message = page.locator("#messages .message", has_text="message 5 of")
    expect(message.get_by_role("button", name="Reply in thread")).to_be_hidden()  # no hover on a phone
    message.click()  # a tap shows the message's actions
    message.get_by_role("button", name="Reply in thread").click()
    expect(page.locator("#side")).to_be_visible()
    expect(page.locator(".pane")).to_be_hidden()  # a full screen on a phone
    reply = page.get_by_label("Thread reply")
    reply.fill("from my phone")
    reply.press("Enter")
    expect(page.locator("#side-body .message", has_text="from my phone")).to_have_count(1)
    shot(page, "15-phone-thread-dark")
    page.get_by_role("button", name="Back", exact=True).click()
    expect(page.locator(".pane")).to_be_visible()
    expect(message.get_by_role("button", name="1 reply")).to_be_visible()
    expect(page.locator("#messages .message", has_text="from my phone")).to_have_count(0)
    shot(page, "16-phone-room-dark")


CONTRAST = """
(selectors) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (node) => {
    for (let at = node; at; at = at.parentElement) {
      const [r, g, b, a = 1] = rgb(getComputedStyle(at).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const result = {};
  for (const selector of selectors) {
    const node = document.querySelector(selector);
    if (!node) { result[selector] = null; continue; }
    const fg = luminance(rgb(getComputedStyle(node).color));
    const bg = luminance(background(node));
    result[selector] = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  }
  return result;
}
"""
TEXTS = [
    "#messages .message .body",
    "#messages .mention",
    "#messages .message time",
    ".day-separator",
    ".new-line",
    ".room-name",
    ".sidebar h2",
    "#typing",
    ".badge",
    "#send-button",
    ".pane-header h1",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5_to_1(browser: Browser, ui_server: ServerProcess, scheme: str) -> None:
    context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
    page = sign_up(context, ui_server, f"contrast_{scheme}")
    me = user_named(f"contrast_{scheme}")
    other = User.objects.create_user(f"other_{scheme}", password=test_web_ui.PASSWORD)
    room = seed_room(me, 2, name="contrast", others=(other,))
    body = f"hello @contrast_{scheme}"
    rendered = render_body(body, lambda names: {f"contrast_{scheme}": me.pk})
    store.insert_message(room_id=room.pk, author_id=other.pk, body=body, rendered=rendered, now=timezone.now())
    second = seed_room(me, 0, name="second", others=(other,))
    store.insert_message(
        room_id=second.pk,
        author_id=other.pk,
        body="unread",
        rendered=render_body("unread", lambda n: {}),
        now=timezone.now(),
    )
    page.goto(f"{ui_server.http}/chat/{room.pk}/")
    live(page)
    page.locator("#typing").evaluate("node => { node.textContent = 'someone is typing…'; }")
    ratios = page.evaluate(CONTRAST, TEXTS)
    missing = [selector for selector, ratio in ratios.items() if ratio is None]
    assert not missing, f"not on the page: {missing}"
    low = {selector: round(ratio, 2) for selector, ratio in ratios.items() if ratio < 4.5}
    assert not low, f"below 4.5:1 in the {scheme} theme: {low}"
    # The full date and time on hover.
    stamp = page.locator("#messages .message time").first.get_attribute("title") or ""
    assert str(timezone.now().year) in stamp


def test_an_edit_and_a_draft_survive_what_happens_meanwhile(browser: Browser, ui_server: ServerProcess) -> None:
    page = sign_up(browser.new_context(viewport=DESKTOP), ui_server, "drafter")
    me = user_named("drafter")
    other = User.objects.create_user("interrupter", password=test_web_ui.PASSWORD)
    first = seed_room(me, 3, name="first", others=(other,))
    second = seed_room(me, 1, name="second")
    no_browser_dialogs(page)
    page.goto(f"{ui_server.http}/chat/{first.pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    message = page.locator("#messages .message", has_text="message 3 of")
    message.hover()
    message.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Edit message")
    editor.press("End")
    editor.press_sequentially(" and half an edit")
    # Someone posts meanwhile: the list redraws, the edit being typed stays.
    body = "an interruption"
    rendered = render_body(body, lambda names: {})
    store.insert_message(room_id=first.pk, author_id=other.pk, body=body, rendered=rendered, now=timezone.now())
    expect(page.locator("#messages .message", has_text=body)).to_have_count(1, timeout=10_000)
    expect(page.get_by_label("Edit message")).to_have_value("message 3 of the long room and half an edit")
    page.get_by_label("Edit message").press("Escape")

    # A draft stays in its room: not carried into another, back after a switch and a reload.
    box = page.get_by_label("Message", exact=True)
    box.fill("a draft for the first room only")
    page.locator(f'#room-list a[data-room-id="{second.pk}"]').click()
    expect(page.locator("#room-title")).to_have_text("second")
    expect(box).to_have_value("")
    page.locator(f'#room-list a[data-room-id="{first.pk}"]').click()
    expect(box).to_have_value("a draft for the first room only")
    page.reload()
    live(page)
    expect(page.get_by_label("Message", exact=True)).to_have_value("a draft for the first room only")


def test_a_phone_keeps_its_place_behind_a_panel(browser: Browser, ui_server: ServerProcess) -> None:
    page = sign_up(browser.new_context(viewport=PHONE), ui_server, "pocket")
    me = user_named("pocket")
    other = User.objects.create_user("talker", password=test_web_ui.PASSWORD)
    room = seed_room(me, 120, name="busy", others=(other,), needle=60)
    from search import indexing

    indexing.catch_up_room(room.pk)
    no_browser_dialogs(page)
    page.goto(f"{ui_server.http}/chat/{room.pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    expect(page.locator("#messages .message")).to_have_count(50)
    page.get_by_role("button", name="Members").click()
    expect(page.locator(".pane")).to_be_hidden()
    body = "posted while the panel was open"
    rendered = render_body(body, lambda names: {})
    store.insert_message(room_id=room.pk, author_id=other.pk, body=body, rendered=rendered, now=timezone.now())
    page.wait_for_timeout(3000)  # the socket's tick delivers it meanwhile
    page.get_by_role("button", name="Back", exact=True).click()
    expect(page.locator("#messages .message", has_text=body)).to_be_in_viewport()
    assert page.locator("#messages .message").count() == 51  # the hidden list loaded no history
    # A search result on a phone opens the room in front, at the message.
    page.locator("#back-to-rooms").click()
    page.get_by_label("Search messages").fill("needle")
    page.get_by_label("Search messages").press("Enter")
    page.locator("#side-body .result", has_text="needle").click()
    expect(page.locator("#side")).to_be_hidden()
    expect(page.locator("#messages .message.highlight")).to_be_in_viewport()
    shot(page, "17-phone-search-jump")
