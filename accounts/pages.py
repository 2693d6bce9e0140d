"""Server-rendered sign-up, log-in and log-out for the web UI (session cookies)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from core.errors import ApiError
from core.ratelimit import enforce


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/chat/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return "/chat/"
    return target


@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        try:
            # The same failed-login limits as the JSON API, per address and per account name.
            user = services.user_login(
                request, username=request.POST.get("username", ""), password=request.POST.get("password", "")
            )
        except ApiError as refused:
            error = refused.detail
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponseRedirect(_next_url(request))
    status = 400 if error else 200
    context = {"error": error, "next": _next_url(request), "username": request.POST.get("username", "")[:150]}
    return render(request, "chat/login.html", context, status=status)


@require_http_methods(["GET", "POST"])
def register_page(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    error = ""
    if request.method == "POST":
        try:
            enforce(request, "auth.register", settings.REGISTER_RATE_LIMIT, key="ip")
            user = services.user_register(
                username=request.POST.get("username", "").strip(),
                password=request.POST.get("password", ""),
                display_name=request.POST.get("display_name", "").strip()[:150],
            )
        except ApiError as refused:
            error, errors = refused.detail, refused.fields or {}
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponseRedirect(_next_url(request))
    status = 400 if error else 200
    context = {
        "error": error,
        "errors": errors,
        "next": _next_url(request),
        "username": request.POST.get("username", "")[:150],
        "display_name": request.POST.get("display_name", "")[:150],
    }
    return render(request, "chat/register.html", context, status=status)


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect("/login/")
