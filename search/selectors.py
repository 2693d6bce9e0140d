"""Message search run on the PostgreSQL index (search/models.py).

Matching is on folded text (case and accents ignored) with `LIKE '%term%'`, which the trigram
GIN index answers for any part of a word, a URL or a code token; LIKE has no metacharacters
left once Django escapes `%` and `_`, so user input is always literal. Every query joins the
caller's memberships in the same statement, and results are read back from MongoDB, so a
message deleted since it was indexed is never shown.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.utils import OperationalError

from accounts.models import User
from core.errors import InvalidInput
from core.textfold import match_ranges
from messaging import store
from messaging.payloads import message_payloads
from messaging.selectors import Page, parse_limit
from rooms.models import Membership
from rooms.selectors import room_require_member
from search.models import SearchEntry
from search.query import SearchQuery, bad_query, parse_query


def search_messages(*, user: User, q: Any, room_id: Any = None, cursor: Any = None, limit: Any = None) -> Page:
    """Matching messages newest first, from one room or every room the caller is in."""
    query = parse_query(q)
    size = parse_limit(limit)
    position = _decode_cursor(cursor)
    if room_id is not None:
        rooms = Q(room_id=room_require_member(user, room_id).room_id)
    else:
        rooms = Q(room_id__in=Membership.objects.filter(user_id=user.pk).values("room_id"))
    entries = _filtered(SearchEntry.objects.filter(rooms), query, user)
    if position is not None:
        posted_at, message_id = position
        entries = entries.filter(Q(posted_at__lt=posted_at) | Q(posted_at=posted_at, message_id__lt=message_id))
    rows = _run_bounded(entries.order_by("-posted_at", "-message_id").values_list("message_id", "posted_at"), size)
    more = len(rows) > size
    rows = rows[:size]
    messages = [m for m in store.get_messages([row[0] for row in rows]) if not m.deleted]
    results = message_payloads(messages)
    for payload in results:
        payload["highlights"] = match_ranges(payload["body"], query.terms)
    next_params = {"q": q, "cursor": _encode_cursor(*rows[-1]), "limit": size} if more and rows else None
    return Page(results=results, next_params=next_params)


def _filtered(entries: QuerySet[SearchEntry], query: SearchQuery, user: User) -> QuerySet[SearchEntry]:
    for term in query.terms:
        entries = entries.filter(text__contains=term)
    for term in query.excluded:
        entries = entries.exclude(text__contains=term)
    if query.authors:
        people = Q(pk=user.pk) if any(name.lower() == "me" for name in query.authors) else Q(pk__in=[])
        for name in query.authors:
            people |= Q(username__iexact=name)
        entries = entries.filter(author_id__in=list(User.objects.filter(people).values_list("pk", flat=True)))
    if query.room_names:
        rooms = Q()
        for name in query.room_names:
            rooms |= Q(room__name__iexact=name)
        entries = entries.filter(rooms)
    if query.has_file:
        entries = entries.filter(has_file=True)
    if query.has_link:
        entries = entries.filter(has_link=True)
    if query.in_thread:
        entries = entries.filter(in_thread=True)
    if query.before is not None:
        entries = entries.filter(posted_at__lt=query.before)
    if query.after is not None:
        entries = entries.filter(posted_at__gte=query.after)
    return entries


def _run_bounded(rows: QuerySet[SearchEntry, tuple[str, datetime]], size: int) -> list[tuple[str, datetime]]:
    """Run with a statement timeout on PostgreSQL: a query too broad to answer fast is a 400."""
    if connection.vendor != "postgresql":
        return list(rows[: size + 1])
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [settings.SEARCH_TIMEOUT_MS])
            return list(rows[: size + 1])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "57014":  # query_canceled
            raise bad_query("This search is too broad to answer quickly; add words or operators.", "query_too_broad")
        raise


def _encode_cursor(message_id: str, posted_at: datetime) -> str:
    return base64.urlsafe_b64encode(f"{posted_at.isoformat()}|{message_id}".encode()).decode().rstrip("=")


def _decode_cursor(raw: Any) -> tuple[datetime, str] | None:
    if raw is None or raw == "":
        return None
    try:
        text = base64.urlsafe_b64decode(str(raw) + "=" * (-len(str(raw)) % 4)).decode()
        moment, message_id = text.split("|", 1)
        posted_at = datetime.fromisoformat(moment)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("The cursor is not one this server gave.", code="invalid_cursor")
    if posted_at.tzinfo is None or not re.fullmatch(r"[0-9a-f]{24}", message_id):
        raise InvalidInput("The cursor is not one this server gave.", code="invalid_cursor")
    return posted_at, message_id


def staff_message_index(
    *,
    user: User,
    q: str,
    room_id: int | None,
    author_id: int | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[tuple[str, datetime]]:
    """The admin's Messages page (messaging/admin.py): up to `limit` (message id, posted_at) of every
    room, or of `room_id`, by `author_id`, matching `q` ("" for all), newest first, older than
    `before`. Staff only: no memberships are joined. Each filter has its `posted_at` index
    (search_time, search_room_time, search_author_time); text runs under SEARCH_TIMEOUT_MS."""
    entries = SearchEntry.objects.all()
    if room_id is not None:
        entries = entries.filter(room_id=room_id)
    if author_id is not None:
        entries = entries.filter(author_id=author_id)
    if q:
        entries = _filtered(entries, parse_query(q), user)
    if before is not None:
        posted_at, message_id = before
        entries = entries.filter(Q(posted_at__lt=posted_at) | Q(posted_at=posted_at, message_id__lt=message_id))
    rows = entries.order_by("-posted_at", "-message_id").values_list("message_id", "posted_at")
    return _run_bounded(rows, limit - 1)  # _run_bounded reads one more than the size it is given
