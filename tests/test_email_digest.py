"""The e-mail digest through a real SMTP server process (aiosmtpd writing a Maildir): what stayed
unread on every device, at most one e-mail per EMAIL_NOTIFY_DELAY, links, and an unsubscribe
that works without signing in."""

from __future__ import annotations

import mailbox
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chatproject.celery import app as celery_app
from notifications.digest import send_due_digests
from notifications.models import Notification
from tests.conftest import client_for
from tests.test_messages import post
from tests.test_push import metric_values
from tests.test_rooms import create_room

pytestmark = pytest.mark.django_db
SITE = "https://chat.example.org"


class SmtpServer:
    def __init__(self, port: int, maildir: Path, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.maildir, self.proc = port, maildir, proc

    def mails(self) -> list[Message]:
        box = mailbox.Maildir(self.maildir, create=False)
        return sorted((box[key] for key in box.iterkeys()), key=lambda m: m["Date"] or "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp(tmp_path: Path, settings: Any) -> Iterator[SmtpServer]:
    port, maildir = _free_port(), tmp_path / "maildir"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("aiosmtpd did not start") from None
            time.sleep(0.1)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_NOTIFY_DELAY = 600
    settings.SITE_URL = SITE
    try:
        yield SmtpServer(port, maildir, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def later(minutes: float) -> Any:
    return timezone.now() + timedelta(minutes=minutes)


def parts(mail: Message) -> dict[str, str]:
    found = {}
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


@pytest.fixture
def people(make_user: Any) -> tuple[User, User]:
    alice = make_user("alice", display_name="Alice Liddell")
    bob = make_user("bob", email="bob@example.org")
    return alice, bob


def test_one_digest_of_what_stayed_unread_with_links_and_unsubscribe(smtp: SmtpServer, people: Any) -> None:
    alice, bob = people
    room = create_room(alice, "ops")
    client_for(bob).post(f"/api/rooms/{room['id']}/join")
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    dm = post(alice, direct["id"], "lunch <today>?").json()
    mention = post(alice, room["id"], "@bob the deploy & the rollback").json()
    post(alice, room["id"], "plain words tell nobody")
    before = metric_values().get("chat_emails_sent_total", 0)

    assert send_due_digests(now=later(1)) == 0 and smtp.mails() == []  # not unread long enough yet
    assert send_due_digests(now=later(11)) == 1
    assert send_due_digests(now=later(11.5)) == 0  # each notice is e-mailed once
    (mail,) = smtp.mails()
    assert mail["To"] == "bob@example.org" and mail["Subject"] == "2 unread messages in 2 conversations"
    text, html = parts(mail)["text/plain"], parts(mail)["text/html"]
    for body in (text, html):
        assert f"{SITE}/chat/{direct['id']}/?message={dm['id']}" in body
        assert f"{SITE}/chat/{room['id']}/?message={mention['id']}" in body
        assert "Alice Liddell" in body and "plain words" not in body
    assert "lunch <today>?" in text and "the deploy & the rollback" in text  # plain text is not escaped
    assert "lunch &lt;today&gt;?" in html and "<today>" not in html  # the HTML part is
    unsubscribe = re.fullmatch(r"<(https://chat\.example\.org(/unsubscribe/[^/]+/))>", mail["List-Unsubscribe"].strip())
    assert unsubscribe and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe.group(1) in text and unsubscribe.group(1) in html
    assert metric_values()["chat_emails_sent_total"] == before + 1

    # A new mention a minute later waits: at most one e-mail per EMAIL_NOTIFY_DELAY.
    post(alice, room["id"], "@bob one more thing")
    assert send_due_digests(now=later(12)) == 0
    assert send_due_digests(now=later(22)) == 1
    # Both in the same second, maybe: Date does not order them.
    assert sorted(m["Subject"] for m in smtp.mails()) == [
        "2 unread messages in 2 conversations",
        "Alice Liddell mentioned you",
    ]

    # The link works without signing in: GET asks, POST (a mail client's one-click) turns it off.
    path = unsubscribe.group(2)
    anonymous = Client(enforce_csrf_checks=True)
    asked = anonymous.get(path)
    assert asked.status_code == 200 and b"Turn off e-mail notifications" in asked.content
    assert User.objects.get(pk=bob.pk).email_notifications  # a link scanner's GET changes nothing
    done = anonymous.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200 and b"are off" in done.content
    assert not User.objects.get(pk=bob.pk).email_notifications
    forged = anonymous.post(path.replace(path[14:20], "AAAAAA"))
    assert forged.status_code == 400


def test_read_anywhere_or_switched_off_means_no_mail(smtp: SmtpServer, people: Any, make_user: Any) -> None:
    alice, bob = people
    carol = make_user("carol", email="carol@example.org", email_notifications=False)
    dave = make_user("dave")  # no address
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    first = post(alice, direct["id"], "read on the phone").json()
    client_for(bob).post(f"/api/rooms/{direct['id']}/read", {"seq": first["seq"]}, format="json")  # on the phone
    room = create_room(alice, "ops")
    for user in (bob, carol, dave):
        client_for(user).post(f"/api/rooms/{room['id']}/join")
    post(alice, room["id"], "@bob @carol @dave seen in the app")
    unread = client_for(bob).get("/api/notifications/?unread=true").json()["results"]
    client_for(bob).post("/api/notifications/read", {"ids": [unread[0]["id"]]}, format="json")
    deleted = post(alice, direct["id"], "@bob oops, wrong room").json()
    assert client_for(alice).delete(f"/api/messages/{deleted['id']}").status_code == 204
    assert send_due_digests(now=later(11)) == 0
    assert smtp.mails() == []
    # Each unread one was dealt with (none is looked at again); the one read in the app is simply read.
    assert Notification.objects.filter(read=False, emailed_at__isnull=True).count() == 0


def test_a_failed_send_is_tried_again_on_the_next_run(smtp: SmtpServer, people: Any, settings: Any) -> None:
    alice, bob = people
    direct = client_for(alice).post("/api/dms", {"user_ids": [str(bob.pk)]}, format="json").json()
    post(alice, direct["id"], "are you there?")
    settings.EMAIL_PORT = _free_port()  # nothing listens there: the SMTP server is away
    settings.EMAIL_TIMEOUT = 2
    assert send_due_digests(now=later(11)) == 0
    assert Notification.objects.filter(user=bob, emailed_at__isnull=True).count() == 1  # not lost
    settings.EMAIL_PORT = smtp.port
    assert send_due_digests(now=later(12)) == 1
    assert [m["Subject"] for m in smtp.mails()] == ["Alice Liddell sent you a message"]


def test_celery_beat_runs_the_digest() -> None:
    celery_app.loader.import_default_modules()  # what a worker does at start
    entry = django_settings.CELERY_BEAT_SCHEDULE["email-digests"]
    assert entry["task"] in celery_app.tasks and entry["schedule"] == django_settings.EMAIL_DIGEST_SWEEP_SECONDS
