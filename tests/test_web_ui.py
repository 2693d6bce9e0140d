"""The web UI in a real browser (Debian's Chromium through Playwright) against a real server.

Screenshots of the main screens are kept in test-artifacts/ui/ (git-ignored).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.live import ROOT, ServerProcess, running_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ARTIFACTS = ROOT / "test-artifacts" / "ui"
PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def ui_server(transactional_db: Any, mongo_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path, UPLOAD_TEMP_DIR=str(tmp_path / "partial"), MEDIA_ROOT=str(tmp_path / "media"), WS_TICK_SECONDS="1"
    ) as server:
        yield server


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_up(context: BrowserContext, server: ServerProcess, username: str) -> Page:
    page = context.new_page()
    page.goto(f"{server.http}/register/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    live(page)
    return page


def live(page: Page) -> None:
    """Wait for the page's scripts to have taken over the server-rendered page."""
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def bodies(page: Page, text: str) -> Any:
    return page.locator("#messages .message .body", has_text=text)


def test_two_people_chat_and_an_offline_one_catches_up_without_doubles(
    browser: Browser, ui_server: ServerProcess
) -> None:
    alice_context, bob_context = browser.new_context(), browser.new_context()
    alice = sign_up(alice_context, ui_server, "alice_ui")
    shot(alice, "01-empty-chat")
    alice.get_by_label("New room name").fill("general")
    alice.get_by_role("button", name="Create").click()
    expect(alice).to_have_url(re.compile(r"/chat/\d+/$"))
    room_id = alice.url.rstrip("/").rsplit("/", 1)[-1]
    expect(alice.locator("#connection-status")).to_have_text("Connected")

    # Bob's socket goes through a route the test can cut, like a network drop.
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    bob_page = bob_context.new_page()
    bob_page.route_web_socket(re.compile(r"/api/ws(\?|$)"), through)
    bob_page.goto(f"{ui_server.http}/register/")
    bob_page.get_by_label("Username").fill("bob_ui")
    bob_page.get_by_label("Password").fill(PASSWORD)
    bob_page.get_by_role("button", name="Sign up").click()
    live(bob_page)
    bob_page.get_by_label("Room id to join").fill(room_id)
    bob_page.get_by_role("button", name="Join").click()
    expect(bob_page.locator("#connection-status")).to_have_text("Connected")

    send(alice, "hello **bob** <img src=x onerror=alert(1)>")
    expect(bodies(bob_page, "hello")).to_have_count(1)
    assert bob_page.locator("#messages strong", has_text="bob").count() == 1  # Markdown rendered
    assert bob_page.locator("#messages .body img").count() == 0  # user HTML stays text
    send(bob_page, "hi alice")
    expect(bodies(alice, "hi alice")).to_have_count(1)
    shot(bob_page, "02-conversation")

    # The network drops under Bob; Alice keeps talking, Bob types while offline.
    sockets[-1].close(code=4000, reason="network cut")
    expect(bob_page.locator("#connection-status")).to_contain_text("reconnecting")
    shot(bob_page, "03-offline")
    for i in range(3):
        send(alice, f"while you were away {i}")
    send(bob_page, "typed offline")
    expect(bob_page.locator(".message.pending", has_text="typed offline")).to_have_count(1)

    # Back by itself (backoff), resumes with ?cursor=, shows everything once, sends the outbox once.
    expect(bob_page.locator("#connection-status")).to_have_text("Connected", timeout=15_000)
    for i in range(3):
        expect(bodies(bob_page, f"while you were away {i}")).to_have_count(1)
    expect(bodies(alice, "typed offline")).to_have_count(1)
    expect(bob_page.locator(".message.pending")).to_have_count(0)
    expect(bodies(bob_page, "typed offline")).to_have_count(1)
    assert bob_page.locator("#messages .message").count() == alice.locator("#messages .message").count() == 6
    shot(bob_page, "04-caught-up")

    # A mention reaches Bob's notifications.
    send(alice, "ping @bob_ui")
    expect(bob_page.locator("#messages .mention", has_text="@bob_ui")).to_have_count(1)
    bob_page.get_by_role("button", name="Notifications").click()
    expect(bob_page.locator("#side-body .result.unread")).to_contain_text("mentioned you")


def png_file(tmp_path: Path) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (40, 120, 200)).save(out, format="PNG")
    path = tmp_path / "sky.png"
    path.write_bytes(out.getvalue())
    return path


def test_edit_react_thread_search_and_upload(browser: Browser, ui_server: ServerProcess, tmp_path: Path) -> None:
    context = browser.new_context()
    page = sign_up(context, ui_server, "carol_ui")
    page.get_by_label("New room name").fill("design")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#connection-status")).to_have_text("Connected")

    send(page, "first draft of the mockup")
    message = page.locator("#messages .message", has_text="first draft")
    expect(message).to_have_count(1)
    expect(message).not_to_have_class(re.compile("pending"))
    # Edit: Esc cancels, Enter saves.
    message.hover()
    message.get_by_role("button", name="Edit").click()
    page.get_by_label("Edit message").fill("discarded words")
    page.get_by_label("Edit message").press("Escape")
    expect(bodies(page, "first draft")).to_have_count(1)
    message.hover()
    message.get_by_role("button", name="Edit").click()
    page.get_by_label("Edit message").fill("final mockup, see café")
    page.get_by_label("Edit message").press("Enter")
    expect(bodies(page, "final mockup")).to_have_count(1)
    expect(page.locator("#messages .edited")).to_have_count(1)
    page.get_by_role("button", name="Show edit history").click()
    expect(page.locator("#side-body")).to_contain_text("first draft of the mockup")

    edited = page.locator("#messages .message", has_text="final mockup")
    edited.hover()
    edited.get_by_role("button", name="React with thumbs up").click()
    expect(edited.locator(".reaction.mine")).to_have_text("👍 1")

    # A reply in the thread panel.
    edited.hover()
    edited.get_by_role("button", name="Reply").click()
    expect(page.locator("#side-title")).to_have_text("Thread")
    thread_box = page.get_by_label("Thread reply")
    thread_box.fill("looks good")
    thread_box.press("Enter")
    expect(page.locator("#side-body .message", has_text="looks good")).to_have_count(1)
    expect(edited.get_by_role("button", name="1 reply")).to_be_visible()  # without hovering
    expect(bodies(page, "looks good")).to_have_count(0)  # the reply stays in the thread
    shot(page, "05-thread")

    # Search ignores accents and highlights.
    page.get_by_label("Search messages").fill("CAFE")
    page.get_by_label("Search messages").press("Enter")
    expect(page.locator("#side-body .result mark")).to_have_text("café", timeout=10_000)
    shot(page, "06-search")

    # A file through tus with a progress bar; the thumbnail shows once ready.
    page.set_input_files("#file-input", str(png_file(tmp_path)))
    expect(page.locator("#messages .attachments img")).to_have_count(1, timeout=15_000)
    shot(page, "07-upload")

    # Phone-sized screen: one column at a time.
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 800})
    phone.goto(page.url)
    expect(phone.get_by_role("button", name="Back to rooms")).to_be_visible()
    shot(phone, "08-phone")


def test_log_out_and_back_in(browser: Browser, ui_server: ServerProcess) -> None:
    context = browser.new_context()
    page = sign_up(context, ui_server, "dave_ui")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(f"{ui_server.http}/chat/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/chat/$"))  # the chat needs a session
    page.get_by_label("Username").fill("DAVE_UI")  # usernames are case-insensitive
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    shot(page, "09-login-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect(page.get_by_text("dave_ui")).to_be_visible()
