"""Integer ids as clients send them (strings in JSON): positive and within PostgreSQL's bigint."""

from __future__ import annotations

from typing import Any

MAX_ID = 2**63 - 1


MAX_COUNT_DIGITS = 19  # 9,223,372,036,854,775,807 bytes: anything longer names no real size


def parse_count(raw: str | None) -> int | None:
    """A byte count or offset from a header: ASCII digits only, at most 19 of them, else None.

    `str.isdigit` also accepts digits such as "²" that `int` refuses, and `int` refuses strings
    past 4,300 digits: either was a 500 from a header value.
    """
    text = (raw or "").strip()
    if not text or len(text) > MAX_COUNT_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def parse_positive_id(raw: Any) -> int | None:
    """The id, or None when `raw` cannot name a row (callers answer 400 or 404 as fits)."""
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_ID else None
