"""Integer ids as clients send them (strings in JSON): positive and within PostgreSQL's bigint."""

from __future__ import annotations

from typing import Any

MAX_ID = 2**63 - 1


def parse_positive_id(raw: Any) -> int | None:
    """The id, or None when `raw` cannot name a row (callers answer 400 or 404 as fits)."""
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_ID else None
