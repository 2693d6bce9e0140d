"""The failed-login limits of accounts.services, put in front of login forms we do not write.

The Django admin's and the browsable API's login pages took unlimited guesses; wrapped with this
they count a failed POST (the form shown again instead of a redirect) against the same per-address
and per-name limits as `POST /api/auth/login`, and answer 429 with Retry-After once over them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse

from accounts import services
from core.errors import RateLimited


def failed_logins_limited(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username = request.POST.get("username", "")
        try:
            services.login_allowed(request, username)
            response = view(request, *args, **kwargs)
            if response.status_code != 302:  # a successful login redirects; anything else failed
                services.login_failed(request, username)
        except RateLimited as refused:
            answer = JsonResponse(refused.payload(), status=429)
            answer["Retry-After"] = str(refused.retry_after or 1)
            return answer
        return response

    return limited
