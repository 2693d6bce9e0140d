"""Notifications in Chromium: the service worker at /sw.js controls every page and shows a Web Push
(delivered through the DevTools protocol, since headless Chromium reaches no push service), a click
on it opens the room in the open tab; the whole way from the "Enable desktop notifications" button
to a push the server encrypted for a stand-in push service (tests/push_endpoint.py) and the worker
showing it; the bell's count in the title and on the tab's icon; the switch's fallback (the page
itself shows the stream's notices while hidden); the room's notification menu and mute (no badge);
do not disturb. Screenshots go to test-artifacts/ui/ (30-...)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Worker, expect

from notifications.models import Notification, PushSubscription
from rooms.models import Membership
from tests import test_web_ui
from tests.live import ServerProcess, running_server
from tests.push_endpoint import PushService, push_service, vapid_key_pair
from tests.test_web_ui import live, shot, sign_up
from tests.test_web_ui_daily import DESKTOP, PHONE, seed_room, user_named
from tests.test_web_ui_stream import api_as

ui_server = test_web_ui.ui_server  # the same server fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NOTIFICATIONS = """navigator.serviceWorker.ready.then(r => r.getNotifications())
    .then(list => list.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data})))"""
PLAIN_ICON = "data:image/svg+xml"


def controlled(page: Page) -> None:
    """The worker registered at load has taken the page over (clients.claim at activation)."""
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null", timeout=10_000)


def shown_notifications(page: Page, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found: list[dict[str, Any]] = page.evaluate(NOTIFICATIONS)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        page.wait_for_timeout(100)


def registration_id(cdp: CDPSession, page: Page, scope: str) -> str:
    """The worker's registration as DevTools knows it (ServiceWorker.workerRegistrationUpdated,
    sent once per session when the domain is enabled)."""
    seen: list[dict[str, Any]] | None = getattr(cdp, "_registrations", None)
    if seen is None:
        seen = []
        cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: seen.extend(event["registrations"]))
        cdp.send("ServiceWorker.enable")
        cdp._registrations = seen  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for registration in seen:
            if registration["scopeURL"] == scope and not registration.get("isDeleted"):
                return str(registration["registrationId"])
        page.wait_for_timeout(50)
    raise AssertionError(f"no registration for {scope}: {seen}")


def the_worker(context: BrowserContext) -> Worker:
    for worker in context.service_workers:
        if worker.url.endswith("/sw.js"):
            return worker
    return context.wait_for_event("serviceworker", timeout=5_000)


def icon(page: Page) -> str:
    return str(page.locator('link[rel~="icon"]').get_attribute("href"))


def deliver(cdp: CDPSession, page: Page, origin: str, payload: dict[str, Any]) -> None:
    """A push message for the page's worker, as the browser's push service would hand it over."""
    registration = registration_id(cdp, page, f"{origin}/")
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration, "data": json.dumps(payload)},
    )


def push_shown(cdp: CDPSession, page: Page, origin: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Deliver a push and wait for the worker to show it. CI has twice seen a first delivery show
    nothing on a loaded machine; a push service redelivers what the worker did not acknowledge,
    and so does this, up to three times, keeping what the worker's console said for the failure."""
    said: list[str] = []
    listener = lambda message: said.append(f"{message.type}: {message.text}")  # noqa: E731
    page.context.on("console", listener)
    try:
        for _ in range(3):
            deliver(cdp, page, origin, payload)
            shown = shown_notifications(page, 1)
            if shown:
                return shown
        raise AssertionError(f"three pushes, nothing shown; the console said {said}")
    finally:
        page.context.remove_listener("console", listener)


CLICK_FIRST_NOTIFICATION = """async () => {
    const [notification] = await self.registration.getNotifications();
    self.dispatchEvent(new NotificationEvent("notificationclick", { notification }));
}"""


def wait_until(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not in time")
        time.sleep(0.05)


def test_a_push_shows_a_notification_and_its_click_opens_the_room(browser: Browser, ui_server: ServerProcess) -> None:
    origin = ui_server.http
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "pushed")
    sign_up(browser.new_context(), ui_server, "pusher").close()
    me, other = user_named("pushed"), user_named("pusher")
    room = seed_room(other, 3, name="push-lab", others=(me,))
    elsewhere = seed_room(other, 1, name="elsewhere", others=(me,))
    page.goto(f"{origin}/chat/{elsewhere.pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")

    # (a) The worker is served from the root with the headers a worker there needs, and controls
    # the page at the scope "/" (registered on load, with no permission prompt).
    served = httpx.get(f"{origin}/sw.js")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/javascript")
    assert served.headers["cache-control"] == "no-cache"
    assert served.headers["service-worker-allowed"] == "/"
    assert "notificationclick" in served.text
    assert httpx.get(f"{origin}/sw.js", headers={"If-None-Match": served.headers["etag"]}).status_code == 304
    controlled(page)
    assert page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.scope)") == f"{origin}/"
    assert page.evaluate("Notification.permission") == "default"  # nothing asked on load

    # (e) A mention by someone else: the bell, the title and the tab's icon count it at once.
    assert page.title() == "elsewhere · Chat"
    assert icon(page).startswith(PLAIN_ICON)
    posted = api_as(ui_server, "pusher").post(f"/api/messages/{room.pk}", json={"body": "look here @pushed"})
    assert posted.status_code == 201
    message_id = posted.json()["id"]
    expect(page.locator("#notification-count")).to_have_text("1", timeout=3_000)
    expect(page).to_have_title("(1) elsewhere · Chat")
    assert icon(page).startswith("data:image/png;base64,")
    notice = Notification.objects.get(user=me, type="mention", message_id=message_id)

    # (b) A push reaches the worker (through DevTools: headless Chromium reaches no push service)
    # and the worker shows it, with the payload's title, body and address.
    context.grant_permissions(["notifications"], origin=origin)
    page.wait_for_function("Notification.permission === 'granted'")
    cdp = context.new_cdp_session(page)
    payload = {
        "title": "pusher mentioned you in #push-lab",
        "body": "look here @pushed",
        "url": f"/chat/{room.pk}/?message={message_id}",
        "tag": f"room-{room.pk}",
        "notification_id": str(notice.pk),
        "room_id": str(room.pk),
        "message_id": message_id,
        "type": "mention",
    }
    shown = push_shown(cdp, page, origin, payload)
    assert len(shown) == 1, shown
    assert shown[0]["title"] == payload["title"]
    assert shown[0]["body"] == payload["body"]
    assert shown[0]["tag"] == f"room-{room.pk}"
    assert shown[0]["data"]["url"] == f"{origin}/chat/{room.pk}/?message={message_id}&notification={notice.pk}"

    # A second push for the room replaces the first (one per room, by its tag).
    deliver(cdp, page, origin, {**payload, "body": "newer"})
    page.wait_for_function(
        """navigator.serviceWorker.ready.then(r => r.getNotifications())
            .then(l => l.length === 1 && l[0].body === 'newer')"""
    )

    # Its click (the worker's notificationclick, dispatched in the worker: no real click can be
    # made on a headless notification) focuses this tab and opens the room around the message,
    # with no reload; the notice is read.
    page.evaluate("window.__same_page = true")
    the_worker(context).evaluate(CLICK_FIRST_NOTIFICATION)
    expect(page.locator("#room-title")).to_have_text("push-lab")
    expect(page).to_have_url(f"{origin}/chat/{room.pk}/?message={message_id}")
    expect(page.locator("#messages .message.highlight .body")).to_have_text("look here @pushed")
    assert page.evaluate("window.__same_page") is True  # opened in place, not reloaded
    expect(page.locator("#notification-count")).to_be_hidden()
    expect(page).to_have_title("push-lab · Chat")
    assert icon(page).startswith(PLAIN_ICON)
    assert shown_notifications(page, 0) == []  # closed by the click
    wait_until(lambda: Notification.objects.get(pk=notice.pk).read)

    # With no chat tab but another page of the site (the API docs), the click takes that page to
    # the room, which reads the notice named in its address.
    second = Notification.objects.create(
        user=me, type="mention", room=room, message_id="", actor=other, created_at=timezone.now()
    )
    page.goto(f"{origin}/api/docs/")
    shown = push_shown(
        context.new_cdp_session(page),
        page,
        origin,
        {**payload, "url": f"/chat/{room.pk}/", "notification_id": str(second.pk)},
    )
    assert len(shown) == 1
    the_worker(context).evaluate(CLICK_FIRST_NOTIFICATION)
    expect(page).to_have_url(f"{origin}/chat/{room.pk}/", timeout=5_000)  # the notice's id is taken off
    live(page)
    expect(page.locator("#room-title")).to_have_text("push-lab")
    wait_until(lambda: Notification.objects.get(pk=second.pk).read)
    context.close()


def test_enable_desktop_notifications_asks_on_click_and_falls_back_to_the_tab(
    browser: Browser, ui_server: ServerProcess
) -> None:
    origin = ui_server.http
    sign_up(browser.new_context(), ui_server, "speaker").close()
    # Permission prompts are counted: none may come before the click.
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(
        """(() => {
            window.__asked = 0;
            if (!window.Notification) return;
            const ask = Notification.requestPermission.bind(Notification);
            Notification.requestPermission = (...args) => { window.__asked += 1; return ask(...args); };
        })()"""
    )
    page = sign_up(context, ui_server, "listener")
    me, speaker = user_named("listener"), user_named("speaker")
    room = seed_room(speaker, 1, name="announcements", others=(me,))
    page.goto(f"{origin}/chat/")
    live(page)
    controlled(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    page.get_by_role("button", name="Notifications").click()
    enable = page.get_by_role("button", name="Enable desktop notifications")
    expect(enable).to_be_visible()
    assert page.evaluate("window.__asked") == 0
    shot(page, "32-enable-desktop-notifications")

    # The browser says no (headless Chromium answers a prompt with "denied"): blocked, and said so.
    enable.click()
    expect(page.locator("#desktop-notify")).to_contain_text("blocked by the browser")
    assert page.evaluate("window.__asked") == 1

    # Allowed: no push service here (no VAPID key on the test server: 503, or a failing
    # subscribe), so the tab shows the notices itself while it is hidden.
    context.clear_permissions()
    context.grant_permissions(["notifications"], origin=origin)
    page.reload()
    live(page)
    page.get_by_role("button", name="Notifications").click()
    page.get_by_role("button", name="Enable desktop notifications").click()
    expect(page.locator("#desktop-notify")).to_contain_text(
        "Desktop notifications on (while this tab is open)", timeout=20_000
    )
    shot(page, "33-desktop-notifications-on")
    speaker_api = api_as(ui_server, "speaker")

    # Looked at: nothing pops up.
    assert speaker_api.post(f"/api/messages/{room.pk}", json={"body": "first @listener"}).status_code == 201
    expect(page.locator("#notification-count")).to_have_text("1", timeout=3_000)
    page.wait_for_timeout(300)
    assert shown_notifications(page, 1, timeout=0.5) == []

    # Hidden (another tab in front): the notice pops up, saying who, what and where.
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
            Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
        }"""
    )
    assert speaker_api.post(f"/api/messages/{room.pk}", json={"body": "second @listener"}).status_code == 201
    shown = shown_notifications(page, 1)
    assert [(n["title"], n["body"]) for n in shown] == [("speaker mentioned you in #announcements", "second @listener")]
    assert shown[0]["data"]["url"].startswith(f"{origin}/chat/{room.pk}/?message=")

    # Do not disturb: nothing pops up until it is over.
    page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications()).then(l => l.forEach(n => n.close()))")
    api_as(ui_server, "listener").patch(
        "/api/auth/me", json={"dnd_until": (timezone.now() + timedelta(hours=1)).isoformat()}
    ).raise_for_status()
    page.reload()  # the page reads it at load (or sets it from its own menu)
    live(page)
    expect(page.locator("#dnd-status")).to_be_visible()
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
            Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
        }"""
    )
    expect(page.locator("#connection-status")).to_have_text("Connected")
    assert speaker_api.post(f"/api/messages/{room.pk}", json={"body": "third @listener"}).status_code == 201
    expect(page.locator(f'#room-list a[data-room-id="{room.pk}"] .badge')).to_have_text("4", timeout=3_000)
    page.wait_for_timeout(500)
    assert shown_notifications(page, 1, timeout=0.5) == []

    # Turned off: the switch says so, and nothing pops up either.
    page.get_by_role("button", name="Notifications").click()
    page.locator("#desktop-notify").get_by_role("button", name="Turn off").click()
    expect(page.get_by_role("button", name="Enable desktop notifications")).to_be_visible()
    context.close()


def test_the_room_menu_sets_the_level_and_a_muted_room_shows_no_badge(
    browser: Browser, ui_server: ServerProcess
) -> None:
    origin = ui_server.http
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "muter")
    sign_up(browser.new_context(), ui_server, "chatty").close()
    me, chatty = user_named("muter"), user_named("chatty")
    quiet = seed_room(chatty, 2, name="noisy", others=(me,))
    other = seed_room(chatty, 0, name="calm", others=(me,))
    third = seed_room(chatty, 0, name="third", others=(me,))
    page.goto(f"{origin}/chat/{quiet.pk}/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    wait_until(lambda: Membership.objects.get(room=quiet, user=me).last_read_seq == 2)  # read as shown

    # The menu shows the room's level (mentions, a team room's default) and changes it.
    menu_button = page.get_by_role("button", name="Notification settings")
    menu_button.click()
    menu = page.get_by_role("menu", name="Notifications for this room")
    expect(menu.get_by_role("menuitemradio", name="Mentions only")).to_have_attribute("aria-checked", "true")
    shot(page, "30-room-notification-menu")
    menu.get_by_role("menuitemradio", name="All messages").click()
    expect(menu.get_by_role("menuitemradio", name="All messages")).to_have_attribute("aria-checked", "true")
    mine = api_as(ui_server, "muter")
    wait_until(lambda: Membership.objects.get(room=quiet, user=me).notify == "all")
    assert mine.get(f"/api/rooms/{quiet.pk}/settings").json() == {"notify": "all", "muted": False}

    # Muted: the sidebar dims it at once.
    menu.get_by_role("menuitemcheckbox", name="Mute this room").click()
    entry = page.locator(f'#room-list a[data-room-id="{quiet.pk}"]')
    expect(entry).to_have_class(re.compile(r"\bmuted\b"))
    expect(entry.get_by_role("img", name="muted")).to_be_visible()
    expect(menu.get_by_role("menuitemcheckbox", name="Mute this room")).to_have_attribute("aria-checked", "true")
    expect(menu_button).to_have_text("🔕")
    shot(page, "30-room-notification-menu-muted")
    wait_until(lambda: Membership.objects.get(room=quiet, user=me).muted)
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)

    # In another room: messages to the muted one raise no badge and make no notice (a mention
    # included, though its level is "all"), while a third room's badge rises; its count stays true.
    page.locator(f'#room-list a[data-room-id="{other.pk}"]').click()
    expect(page.locator("#room-title")).to_have_text("calm")
    chatty_api = api_as(ui_server, "chatty")
    marker = page.locator(f'#room-list a[data-room-id="{third.pk}"] .badge')
    assert chatty_api.post(f"/api/messages/{quiet.pk}", json={"body": "anyone? @muter"}).status_code == 201
    assert chatty_api.post(f"/api/messages/{quiet.pk}", json={"body": "hello?"}).status_code == 201
    assert chatty_api.post(f"/api/messages/{third.pk}", json={"body": "marker 1"}).status_code == 201
    expect(marker).to_have_text("1", timeout=3_000)  # the stream's frames come in order: the muted room's came
    expect(entry.locator(".badge")).to_have_count(0)
    expect(page.locator("#notification-count")).to_be_hidden()
    shot(page, "30-room-muted-no-badge")

    # The server-rendered sidebar too.
    page.reload()
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    expect(entry).to_have_class(re.compile(r"\bmuted\b"))
    expect(entry.locator(".badge")).to_have_count(0)
    assert "muted" in (page.locator("#room-list").inner_html())
    assert chatty_api.post(f"/api/messages/{quiet.pk}", json={"body": "after the reload"}).status_code == 201
    assert chatty_api.post(f"/api/messages/{third.pk}", json={"body": "marker 2"}).status_code == 201
    expect(marker).to_have_text("2", timeout=3_000)
    expect(entry.locator(".badge")).to_have_count(0)
    expect(page.locator("#notification-count")).to_be_hidden()
    assert not Notification.objects.filter(user=me, room=quiet).exists()
    listed = {r["id"]: r for r in mine.get("/api/rooms/").json()["results"]}
    assert listed[str(quiet.pk)]["muted"] is True
    assert listed[str(quiet.pk)]["unread_count"] == 3  # the 3 since it was read: true, only not shown

    # Unmuted (from its menu, once read): its badge counts again.
    page.locator(f'#room-list a[data-room-id="{quiet.pk}"]').click()
    expect(page.locator("#room-title")).to_have_text("noisy")
    wait_until(lambda: Membership.objects.get(room=quiet, user=me).last_read_seq == 5)  # opened: read to its newest
    menu_button.click()
    page.get_by_role("menuitemcheckbox", name="Mute this room").click()
    expect(entry).not_to_have_class(re.compile(r"\bmuted\b"))
    expect(entry.get_by_role("img", name="muted")).to_have_count(0)
    page.keyboard.press("Escape")
    page.locator(f'#room-list a[data-room-id="{other.pk}"]').click()
    assert chatty_api.post(f"/api/messages/{quiet.pk}", json={"body": "back"}).status_code == 201
    expect(entry.locator(".badge")).to_have_text("1", timeout=3_000)
    context.close()


def test_do_not_disturb_sets_shows_and_clears_itself(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "sleeper")
    me = user_named("sleeper")
    toggle = page.get_by_role("button", name="Do not disturb")
    expect(page.locator("#dnd-status")).to_be_hidden()
    toggle.click()
    menu = page.get_by_role("menu", name="Do not disturb")
    for choice in ("30 minutes", "1 hour", "2 hours", "Until tomorrow (09:00)"):
        expect(menu.get_by_role("menuitem", name=choice)).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Turn off")).to_have_count(0)
    shot(page, "31-dnd-popover")
    in_an_hour = """() => {
        const d = new Date(Date.now() + 3600e3), pad = (n) => String(n).padStart(2, '0');
        return pad(d.getHours()) + ':' + pad(d.getMinutes());
    }"""
    before = page.evaluate(in_an_hour)
    menu.get_by_role("menuitem", name="1 hour").click()
    expect(menu).to_have_count(0)
    after = page.evaluate(in_an_hour)
    status = page.locator("#dnd-status")
    expect(status).to_be_visible()
    expect(status).to_contain_text(re.compile(r"🔕 until \d\d:\d\d"))
    shown = (status.text_content() or "").split("until ")[1][:5]
    assert shown in {before, after}  # local time; the minute may have turned meanwhile
    me.refresh_from_db()
    assert me.dnd_until is not None
    assert abs((me.dnd_until - timezone.now()) - timedelta(hours=1)) < timedelta(minutes=1)
    shot(page, "31-dnd-on")

    # Until tomorrow 09:00, local time.
    toggle.click()
    expect(menu.get_by_role("menuitem", name="Turn off")).to_be_visible()
    menu.get_by_role("menuitem", name="Until tomorrow (09:00)").click()
    expect(status).to_contain_text("🔕 until 09:00")
    me.refresh_from_db()
    assert me.dnd_until is not None and me.dnd_until > timezone.now() + timedelta(hours=1)

    # Turned off from the menu.
    toggle.click()
    menu.get_by_role("menuitem", name="Turn off").click()
    expect(status).to_be_hidden()
    me.refresh_from_db()
    assert me.dnd_until is None

    # Over by itself when the time comes (set elsewhere, read at load).
    api_as(ui_server, "sleeper").patch(
        "/api/auth/me", json={"dnd_until": (timezone.now() + timedelta(seconds=4)).isoformat()}
    ).raise_for_status()
    page.reload()
    live(page)
    expect(status).to_be_visible()
    expect(status).to_be_hidden(timeout=8_000)
    expect(toggle).to_have_text("🌙")
    context.close()


def test_a_phone_fits_the_new_controls(browser: Browser, ui_server: ServerProcess) -> None:
    origin = ui_server.http
    context = browser.new_context(viewport=PHONE)
    page = sign_up(context, ui_server, "pocket_notify")
    me = user_named("pocket_notify")
    room = seed_room(me, 2, name="a room with a rather long name for a phone")
    api_as(ui_server, "pocket_notify").patch(
        "/api/auth/me", json={"dnd_until": (timezone.now() + timedelta(hours=2)).isoformat()}
    ).raise_for_status()
    page.goto(f"{origin}/chat/")
    live(page)
    expect(page.locator("#dnd-status")).to_be_visible()
    overflow = """() => [document.documentElement.scrollWidth - innerWidth,
        ...[...document.querySelectorAll('.me, .dnd-status, .pane-header')]
            .filter(n => n.offsetParent).map(n => n.scrollWidth - n.clientWidth)]"""
    assert max(page.evaluate(overflow)) <= 0, page.evaluate(overflow)
    page.get_by_role("button", name="Do not disturb").click()
    box = page.locator("#popover").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(page, "34-phone-dnd")
    page.keyboard.press("Escape")

    page.locator(f'#room-list a[data-room-id="{room.pk}"]').click()
    expect(page.locator("#room-title")).to_have_text(room.name)
    button = page.get_by_role("button", name="Notification settings")
    expect(button).to_be_visible()
    assert max(page.evaluate(overflow)) <= 0, page.evaluate(overflow)
    button_box = button.bounding_box()
    assert button_box is not None and button_box["x"] + button_box["width"] <= PHONE["width"]
    # The connection shows only when it is not "Connected"; the header still fits.
    expect(page.locator("#connection-status")).to_be_hidden()
    page.locator("#connection-status").evaluate(
        "node => { node.textContent = 'Offline — reconnecting in 10 s'; node.className = 'status error'; }"
    )
    expect(page.locator("#connection-status")).to_be_visible()
    assert max(page.evaluate(overflow)) <= 0, page.evaluate(overflow)
    page.locator("#connection-status").evaluate("node => { node.textContent = ''; node.className = 'status ok'; }")
    button.click()
    box = page.locator("#popover").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] + box["height"] <= PHONE["height"]
    shot(page, "34-phone-room-menu")
    context.close()


@pytest.fixture
def push_server(
    transactional_db: Any, mongo_url: str, tmp_path: Path
) -> Iterator[tuple[ServerProcess, PushService, str]]:
    """The UI's server with a VAPID key, pushing to a stand-in push service on loopback."""
    private, public = vapid_key_pair()
    with (
        push_service() as service,
        running_server(
            tmp_path,
            UPLOAD_TEMP_DIR=str(tmp_path / "partial"),
            MEDIA_ROOT=str(tmp_path / "media"),
            WS_TICK_SECONDS="1",
            VAPID_PRIVATE_KEY=private,
            PUSH_ALLOW_INSECURE_ENDPOINTS="true",
        ) as server,
    ):
        yield server, service, public


# PushManager.subscribe made to answer with the stand-in service's subscription (Chromium's own
# would be at a Google server this machine cannot reach); everything else is the browser's.
FAKE_PUSH_MANAGER = """(subscription) => {
    let current = null;
    window.__subscribed_with = null;
    PushManager.prototype.getSubscription = async function () { return current; };
    PushManager.prototype.subscribe = async function (options) {
        const key = new Uint8Array(options.applicationServerKey);
        window.__subscribed_with = btoa(String.fromCharCode(...key))
            .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
        current = {
            endpoint: subscription.endpoint,
            options: { userVisibleOnly: options.userVisibleOnly, applicationServerKey: key.buffer },
            toJSON: () => ({ ...subscription, expirationTime: null }),
            unsubscribe: async () => { current = null; return true; },
        };
        return current;
    };
}"""


def test_enabled_push_the_server_sends_is_shown_by_the_worker(
    browser: Browser, push_server: tuple[ServerProcess, PushService, str]
) -> None:
    server, service, public_key = push_server
    origin = server.http
    desk = service.browser("desk")
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(f"({FAKE_PUSH_MANAGER})({json.dumps(desk.subscription())})")
    context.grant_permissions(["notifications"], origin=origin)
    page = sign_up(context, server, "desk_user")
    sign_up(browser.new_context(), server, "desk_poster").close()
    me, poster = user_named("desk_user"), user_named("desk_poster")
    room = seed_room(poster, 1, name="ops", others=(me,))
    page.goto(f"{origin}/chat/")
    live(page)
    controlled(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")

    # The button: the server's key, the browser's subscription to the server.
    page.get_by_role("button", name="Notifications").click()
    page.get_by_role("button", name="Enable desktop notifications").click()
    expect(page.locator("#desktop-notify")).to_have_text(re.compile(r"Desktop notifications on\s*Turn off"))
    assert page.evaluate("window.__subscribed_with") == public_key
    wait_until(lambda: PushSubscription.objects.filter(user=me).exists())
    stored = PushSubscription.objects.get(user=me)
    assert (stored.endpoint, stored.p256dh, stored.auth) == (
        desk.endpoint,
        desk.subscription()["keys"]["p256dh"],
        desk.subscription()["keys"]["auth"],
    )

    # A mention: the server pushes it (encrypted for the browser), the worker shows what it says.
    posted = api_as(server, "desk_poster").post(
        f"/api/messages/{room.pk}", json={"body": "the build is red @desk_user"}
    )
    assert posted.status_code == 201
    message_id = posted.json()["id"]
    [received] = service.wait_for(desk, 1)
    payload = desk.decrypt(received)
    notice = Notification.objects.get(user=me, message_id=message_id)
    assert payload["url"] == f"/chat/{room.pk}/?message={message_id}"
    assert payload["notification_id"] == str(notice.pk)
    cdp = context.new_cdp_session(page)
    [shown] = push_shown(cdp, page, origin, payload)
    assert (shown["title"], shown["body"], shown["tag"]) == (payload["title"], payload["body"], f"room-{room.pk}")
    assert "desk_poster" in shown["title"] and "the build is red" in shown["body"]
    assert shown_notifications(page, 2, timeout=0.5) == [shown]  # the tab showed none of its own

    # Its click opens the room around the message in this tab; the notice is read.
    the_worker(context).evaluate(CLICK_FIRST_NOTIFICATION)
    expect(page).to_have_url(f"{origin}/chat/{room.pk}/?message={message_id}")
    expect(page.locator("#messages .message.highlight .body")).to_have_text("the build is red @desk_user")
    wait_until(lambda: Notification.objects.get(pk=notice.pk).read)
    expect(page).to_have_title("ops · Chat")

    # Turned off: the server forgets the subscription; on again, then signing out forgets it too.
    page.get_by_role("button", name="Notifications").click()
    page.locator("#desktop-notify").get_by_role("button", name="Turn off").click()
    expect(page.get_by_role("button", name="Enable desktop notifications")).to_be_visible()
    wait_until(lambda: not PushSubscription.objects.filter(user=me).exists())
    page.get_by_role("button", name="Enable desktop notifications").click()
    expect(page.locator("#desktop-notify")).to_contain_text("Desktop notifications on")
    wait_until(lambda: PushSubscription.objects.filter(user=me).exists())
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    assert not PushSubscription.objects.filter(user=me).exists()
    context.close()


def test_message_and_direct_message_notices_say_so_and_are_read_with_their_room(
    browser: Browser, ui_server: ServerProcess
) -> None:
    origin = ui_server.http
    context = browser.new_context(viewport=DESKTOP)
    page = sign_up(context, ui_server, "inbox")
    sign_up(browser.new_context(), ui_server, "sender").close()
    me, sender = user_named("inbox"), user_named("sender")
    # No seeded messages: the indexer would make notices of them when it first reads the room.
    team = seed_room(sender, 0, name="all-hands", others=(me,))
    mine, theirs = api_as(ui_server, "inbox"), api_as(ui_server, "sender")
    assert mine.patch(f"/api/rooms/{team.pk}/settings", json={"notify": "all"}).status_code == 200
    direct = theirs.post("/api/dms", json={"user_ids": [str(me.pk)]})
    assert direct.status_code in (200, 201), direct.text
    direct_id = direct.json()["id"]
    # Whatever making the rooms told (an invitation): read, so that only the messages count here.
    assert mine.post("/api/notifications/read", json={"all": True}).status_code in (200, 204)
    page.goto(f"{origin}/chat/")
    live(page)
    expect(page.locator("#connection-status")).to_have_text("Connected")

    assert theirs.post(f"/api/messages/{direct_id}", json={"body": "are you there?"}).status_code == 201
    assert theirs.post(f"/api/messages/{team.pk}", json={"body": "standup in 5"}).status_code == 201
    expect(page.locator("#notification-count")).to_have_text("2", timeout=3_000)
    expect(page).to_have_title("(2) Chat")
    page.get_by_role("button", name="Notifications").click()
    items = page.locator("#side-body .result.unread")
    expect(items).to_have_count(2)
    expect(items.filter(has_text="sent you a message")).to_contain_text("sender sent you a message")
    expect(items.filter(has_text="sent you a message")).to_contain_text("are you there?")
    expect(items.filter(has_text="wrote in")).to_contain_text("sender wrote in #all-hands:")
    expect(items.filter(has_text="wrote in")).to_contain_text("standup in 5")
    shot(page, "35-message-notices")

    # Opening the direct room (from the sidebar) reads its notice with it; the other one stays.
    page.locator(f'#dm-list a[data-room-id="{direct_id}"]').click()
    expect(page.locator("#messages .message .body", has_text="are you there?")).to_have_count(1)
    expect(page.locator("#notification-count")).to_have_text("1", timeout=3_000)
    wait_until(lambda: Notification.objects.get(user=me, type="dm").read)
    assert not Notification.objects.get(user=me, type="message").read
    expect(page).to_have_title(re.compile(r"^\(1\) sender · Chat$"))

    # A message in the open room, looked at: its notice is read at once.
    assert theirs.post(f"/api/messages/{direct_id}", json={"body": "still there?"}).status_code == 201
    expect(page.locator("#messages .message .body", has_text="still there?")).to_have_count(1)
    wait_until(lambda: Notification.objects.filter(user=me, type="dm", read=False).count() == 0, timeout=5)
    expect(page.locator("#notification-count")).to_have_text("1")
    context.close()
