"""`/unsubscribe/{token}/`: the link in every digest e-mail, working without signing in.

GET asks (a mail scanner following links must not switch anything off); POST turns e-mail
notifications off, and is also what mail clients send for a one-click unsubscribe (RFC 8058:
`List-Unsubscribe=One-Click` in the body, no cookies, hence no CSRF token: the signed token in
the URL is the proof).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import User
from notifications.digest import user_of_unsubscribe_token


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    person = user_of_unsubscribe_token(token)
    if person is None:
        return render(request, "notifications/unsubscribe.html", {"state": "invalid"}, status=400)
    if request.method == "POST":
        User.objects.filter(pk=person.pk).update(email_notifications=False)
        return render(request, "notifications/unsubscribe.html", {"state": "done", "person": person})
    return render(request, "notifications/unsubscribe.html", {"state": "ask", "person": person})
