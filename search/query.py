"""The search query language of docs/api.md: words, parts of words, "phrases", -exclusions and
the operators from:, in:, has:, is:, before:, after:. Parsing only; search/selectors.py runs it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings

from core.errors import InvalidInput
from core.textfold import fold

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


def bad_query(message: str, code: str = "invalid_query") -> InvalidInput:
    return InvalidInput(message, code=code, fields={"q": [message]})


def parse_query(raw: Any) -> SearchQuery:
    """Parse the `q` text; a query that cannot mean anything clear is a 400, never a crash."""
    if not isinstance(raw, str) or not raw.strip():
        raise bad_query("The search text is empty.", code="empty_query")
    if len(raw) > settings.SEARCH_QUERY_MAX_LENGTH:
        raise bad_query(
            f"The search text is longer than {settings.SEARCH_QUERY_MAX_LENGTH} characters.", "query_too_long"
        )
    if raw.count('"') % 2:
        raise bad_query('A quoted phrase is not closed (missing ").')
    query = SearchQuery()
    for match in _TOKEN.finditer(raw):
        negate, name, quoted, bare = match.group(1), match.group(2), match.group(3), match.group(4)
        value = quoted if quoted is not None else bare or ""
        operator = name.lower() if name else None
        if operator is None and value.endswith(":") and value[:-1].lower() in _OPERATORS:
            raise bad_query(f"{value} needs a value.")
        if operator not in _OPERATORS:
            # `http://x`, `std::vector`, `key:value`: not an operator, so literal text.
            literal = f"{name}:{value}" if name else value
            _add_term(query, literal, negate=bool(negate))
            continue
        if negate:
            raise bad_query(f"-{operator}: is not supported; only words and phrases can be excluded.")
        _apply_operator(query, operator, value)
    if len(query.terms) + len(query.excluded) > MAX_TERMS:
        raise bad_query(f"At most {MAX_TERMS} words or phrases.", code="query_too_long")
    if query.is_empty():
        raise bad_query("The search text is empty.", code="empty_query")
    return query


def _add_term(query: SearchQuery, text: str, *, negate: bool) -> None:
    folded = fold(text).strip()
    if not folded:
        return
    (query.excluded if negate else query.terms).append(folded)


def _apply_operator(query: SearchQuery, operator: str, value: str) -> None:
    if not value:
        raise bad_query(f"{operator}: needs a value.")
    if operator in ("from", "in"):
        target = query.authors if operator == "from" else query.room_names
        if len(target) >= MAX_OPERATOR_VALUES:
            raise bad_query(f"At most {MAX_OPERATOR_VALUES} {operator}: operators.")
        target.append(value)
    elif operator == "has":
        if value.lower() not in ("file", "link"):
            raise bad_query("has: takes file or link.")
        query.has_file = query.has_file or value.lower() == "file"
        query.has_link = query.has_link or value.lower() == "link"
    elif operator == "is":
        if value.lower() != "thread":
            raise bad_query("is: takes thread.")
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
    raise bad_query(f"{operator}: takes a date as YYYY-MM-DD.", code="invalid_date")
