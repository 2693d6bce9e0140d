"""`GET /api/messages/{room_id}?q=`: a search of one room, answered by the search app.

The search app sits above the message core (it reads the store and builds message payloads), so
the core cannot import it; it hands its answer over here when Django starts (search/apps.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from accounts.models import User
from messaging.selectors import Page


class RoomSearch(Protocol):
    def __call__(self, *, user: User, q: Any, room_id: Any = None, cursor: Any = None, limit: Any = None) -> Page: ...


_answer: RoomSearch | None = None


def provide(answer: RoomSearch) -> None:
    global _answer
    _answer = answer


def search_room(*, user: User, q: Any, room_id: Any, cursor: Any, limit: Any) -> Page:
    if _answer is None:
        raise ImproperlyConfigured("No search app is installed to answer `?q=` (INSTALLED_APPS needs `search`).")
    return _answer(user=user, q=q, room_id=room_id, cursor=cursor, limit=limit)
