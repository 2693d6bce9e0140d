"""The web UI's server-rendered pages. The chat page: rendered on the server first (the room list
and the open room's page come in the HTML, from the same payloads as the API, with a user-stream
cursor read before them), then ES modules (static/chat/js/) take over with the same API and socket
as mobile clients (session cookie + CSRF header, the cookie and Origin). The invitation page
(`/invite/{code}/`): the room a link leads to and a Join button. The service worker (`/sw.js`):
static/chat/sw.js at the site's root, so that its scope is the whole site."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from accounts.models import User
from accounts.serializers import user_payload
from core.errors import ApiError
from files.avatars import hue_of, initials
from messaging import selectors
from realtime.stream_reads import fresh_cursor
from rooms.invites import invite_accept, invite_preview
from rooms.payloads import room_payloads
from rooms.selectors import room_get_visible, rooms_of_user


@login_required(login_url="/login/")
@ensure_csrf_cookie
def chat_page(request: HttpRequest, room_id: int | None = None) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    cursor = fresh_cursor(user.pk)  # before the page's state: what changes after it is replayed
    rooms = room_payloads((m.room, m) for m in rooms_of_user(user))
    opened = _opened_room(user, room_id, request.GET.get("message")) if room_id else None
    config = {
        "user": user_payload(user),
        "room_id": str(room_id) if room_id else None,
        "max_body": settings.MESSAGE_MAX_LENGTH,
        "upload_chunk": 8 * 1024 * 1024,
        "rooms": rooms,
        "cursor": cursor,
        # The page the HTML shows, for the script to take over (the timeline is the HTML's own).
        "opened": {key: value for key, value in opened.items() if key != "timeline"} if opened else None,
    }
    current = next((room for room in rooms if room["id"] == str(room_id)), None)
    context = {"config": config, "rooms": rooms, "current": current, "opened": opened}
    return render(request, "chat/app.html", context, status=404 if room_id and opened is None else 200)


def _opened_room(user: User, room_id: int, message_id: str | None) -> dict[str, Any] | None:
    """The open room's first page (around `message_id` when the link names one), or what keeps it
    from being shown: `{"problem": "join"}` for a public room one is not in; None if it is unknown."""
    try:
        room, membership = room_get_visible(user, room_id)
    except ApiError:
        return None
    if membership is None:
        return {"problem": "join", "room": room_payloads([(room, None)])[0], "messages": [], "next": None}
    try:
        page = selectors.room_history(user=user, room_id=room_id, around=message_id) if message_id else None
    except ApiError:
        page = None  # a link to a message that is gone: the newest page instead
        message_id = None
    try:
        page = page or selectors.room_history(user=user, room_id=room_id)
    except ApiError:  # MongoDB away: the page's script loads the messages once it is back
        return {"problem": "unavailable", "messages": [], "next": None, "timeline": []}
    return {
        "problem": None,
        "messages": page.results,
        "next": page.next_params,
        "message_id": message_id,
        "timeline": timeline(page.results, last_read_seq=membership.last_read_seq, me=str(user.pk)),
    }


GROUP_SECONDS = 5 * 60  # the same in static/chat/js/timeline.js


def timeline(messages: list[Any], *, last_read_seq: int, me: str) -> list[dict[str, Any]]:
    """Top-level messages with the day separators, the "new messages" line and author grouping
    that the script draws too (so the first paint looks like what follows it)."""
    items: list[dict[str, Any]] = []
    previous: Any = None
    marked = False
    for message in messages:
        if message.get("parent_id"):
            continue
        created = datetime.fromisoformat(message["created_at"])
        if previous is None or created.date() != previous[1].date():
            items.append({"kind": "day", "label": created.strftime("%A, %-d %B %Y")})
            previous = None
        if not marked and message["seq"] > last_read_seq and message["author"]["id"] != me:
            items.append({"kind": "new"})
            marked = True
        grouped = (
            previous is not None
            and previous[0] == message["author"]["id"]
            and (created - previous[1]).total_seconds() < GROUP_SECONDS
        )
        author = message["author"]
        face = {"initials": initials(author["display_name"] or author["username"]), "hue": hue_of(int(author["id"]))}
        items.append(
            {"kind": "message", "message": message, "grouped": grouped, "time": created.strftime("%H:%M"), "face": face}
        )
        previous = (message["author"]["id"], created)
    return items


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/chat/" if request.user.is_authenticated else "/login/")


@login_required(login_url="/login/")
@require_http_methods(["GET", "POST"])
def invite_page(request: HttpRequest, code: str) -> HttpResponse:
    """`/invite/{code}/`: the room the link leads to and a Join button (sign-in first, then back)."""
    user = request.user
    assert isinstance(user, User)
    if request.method == "POST":
        try:
            membership = invite_accept(user=user, code=code)
        except ApiError as refused:
            return render(request, "chat/invite.html", {"error": refused.detail}, status=refused.status)
        return HttpResponseRedirect(f"/chat/{membership.room_id}/")
    try:
        preview = invite_preview(user=user, code=code)
    except ApiError as refused:
        return render(request, "chat/invite.html", {"error": refused.detail}, status=refused.status)
    return render(request, "chat/invite.html", {"room": preview["room"]})


def _service_worker_file() -> Path | None:
    """static/chat/sw.js: through the static finders (the source tree), else the collected copy."""
    found = finders.find("chat/sw.js")
    if isinstance(found, list):
        found = found[0] if found else None
    if found:
        return Path(found)
    collected = Path(settings.STATIC_ROOT) / "chat" / "sw.js"
    return collected if collected.is_file() else None


@require_http_methods(["GET"])
def service_worker(request: HttpRequest) -> HttpResponse:
    """`/sw.js`: the service worker, from the root so that it may control every page (scope "/").
    Browsers check it for changes at every navigation: `no-cache` and an ETag make that a 304."""
    path = _service_worker_file()
    if path is None:
        raise Http404("no service worker")
    content = path.read_bytes()
    etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
    headers = {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/", "ETag": etag}
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponseNotModified(headers=headers)
    return HttpResponse(content, content_type="application/javascript; charset=utf-8", headers=headers)
