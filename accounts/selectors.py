"""Reads about people: the directory of accounts, by name prefix, and one account."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import User
from core.errors import InvalidInput, NotFound
from core.ids import parse_positive_id
from core.textfold import fold

PEOPLE_QUERY_MAX_LENGTH = 150


def people_matching(raw: Any) -> QuerySet[User]:
    """Active users whose username or display name starts with `raw` (case and accents ignored),
    by username. Two prefix ranges of indexed keys (accounts/migrations/0003_people_search.py)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text or len(text) > PEOPLE_QUERY_MAX_LENGTH:
        raise InvalidInput(
            f"q must be 1 to {PEOPLE_QUERY_MAX_LENGTH} characters: the start of a name.",
            fields={"q": ["The start of a username or display name."]},
        )
    key = fold(text)
    return User.objects.filter(Q(username_key__startswith=key) | Q(display_name_key__startswith=key), is_active=True)


def person(raw_id: Any) -> User:
    """An active account by id (404 `user_not_found` otherwise: a deactivated one is not shown)."""
    user_id = parse_positive_id(raw_id)
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id is not None else None
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user
