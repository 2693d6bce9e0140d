"""Message search: the query language of API.md, run on the PostgreSQL index (messaging.models).

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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.utils import OperationalError

from accounts.models import User
from chatproject.errors import InvalidInput
from messaging import store
from messaging.models import SearchEntry
from messaging.payloads import message_payloads
from messaging.selectors import Page, parse_limit
from messaging.textnorm import fold, match_ranges
from rooms.models import Membership
from rooms.selectors import room_require_member

MAX_TERMS = 12
MAX_OPERATOR_VALUES = 10

# One token: an optional `-`, an optional `name:`, then a "quoted value" or a bare word.
_TOKEN = re.compile(r'(-?)(?:([A-Za-z]+):)?(?:"([^"]*)"|([^\s"]+))')
_OPERATORS = frozenset({"from", "in", "has", "is", "before", "after"})


@dataclass
class SearchQuery:
    terms: list[str] = field(default_factory=list)  # folded; words and phrases alike
    excluded: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    room_names: list[str] = field(default_factory=list)
    has_file: bool = False
    has_link: bool = False
    in_thread: bool = False
    before: datetime | None = None
    after: datetime | None = None

    def is_empty(self) -> bool:
        filters = self.authors or self.room_names or self.has_file or self.has_link or self.in_thread
        return not (self.terms or self.excluded or filters or self.before or self.after)


def _bad(message: str, code: str = "invalid_query") -> InvalidInput:
    return InvalidInput(message, code=code, fields={"q": [message]})


def parse_query(raw: Any) -> SearchQuery:
    """Parse the `q` text; a query that cannot mean anything clear is a 400, never a crash."""
    if not isinstance(raw, str) or not raw.strip():
        raise _bad("The search text is empty.", code="empty_query")
    if len(raw) > settings.SEARCH_QUERY_MAX_LENGTH:
        raise _bad(f"The search text is longer than {settings.SEARCH_QUERY_MAX_LENGTH} characters.", "query_too_long")
    if raw.count('"') % 2:
        raise _bad('A quoted phrase is not closed (missing ").')
    query = SearchQuery()
    for match in _TOKEN.finditer(raw):
        negate, name, quoted, bare = match.group(1), match.group(2), match.group(3), match.group(4)
        value = quoted if quoted is not None else bare or ""
        operator = name.lower() if name else None
        if operator is None and value.endswith(":") and value[:-1].lower() in _OPERATORS:
            raise _bad(f"{value} needs a value.")
        if operator not in _OPERATORS:
            # `http://x`, `std::vector`, `key:value`: not an operator, so literal text.
            literal = f"{name}:{value}" if name else value
            _add_term(query, literal, negate=bool(negate))
            continue
        if negate:
            raise _bad(f"-{operator}: is not supported; only words and phrases can be excluded.")
        _apply_operator(query, operator, value)
    if len(query.terms) + len(query.excluded) > MAX_TERMS:
        raise _bad(f"At most {MAX_TERMS} words or phrases.", code="query_too_long")
    if query.is_empty():
        raise _bad("The search text is empty.", code="empty_query")
    return query


def _add_term(query: SearchQuery, text: str, *, negate: bool) -> None:
    folded = fold(text).strip()
    if not folded:
        return
    (query.excluded if negate else query.terms).append(folded)


def _apply_operator(query: SearchQuery, operator: str, value: str) -> None:
    if not value:
        raise _bad(f"{operator}: needs a value.")
    if operator in ("from", "in"):
        target = query.authors if operator == "from" else query.room_names
        if len(target) >= MAX_OPERATOR_VALUES:
            raise _bad(f"At most {MAX_OPERATOR_VALUES} {operator}: operators.")
        target.append(value)
    elif operator == "has":
        if value.lower() not in ("file", "link"):
            raise _bad("has: takes file or link.")
        query.has_file = query.has_file or value.lower() == "file"
        query.has_link = query.has_link or value.lower() == "link"
    elif operator == "is":
        if value.lower() != "thread":
            raise _bad("is: takes thread.")
        query.in_thread = True
    else:
        day = _parse_day(operator, value)
        # Days are UTC days: before: means earlier than that day, after: later than it.
        if operator == "before":
            query.before = datetime.combine(day, time.min, tzinfo=UTC)
        else:
            query.after = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _parse_day(operator: str, value: str) -> date:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _bad(f"{operator}: takes a date as YYYY-MM-DD.", code="invalid_date")


# --- running a query --------------------------------------------------------------------------


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
            raise _bad("This search is too broad to answer quickly; add words or operators.", "query_too_broad")
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
