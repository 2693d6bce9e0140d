"""The chat page: one server-rendered shell; plain JavaScript talks to the same API and socket as
mobile clients do (session cookie + CSRF header for REST, the cookie and Origin for the socket)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import User


@login_required(login_url="/login/")
@ensure_csrf_cookie
def chat_page(request: HttpRequest, room_id: int | None = None) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    config = {
        "user": {"id": str(user.pk), "username": user.username, "display_name": user.display_name},
        "room_id": str(room_id) if room_id else None,
        "max_body": settings.MESSAGE_MAX_LENGTH,
        "upload_chunk": 8 * 1024 * 1024,
    }
    return render(request, "chat/app.html", {"config": config})


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/chat/" if request.user.is_authenticated else "/login/")
