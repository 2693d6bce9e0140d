"""Message reads. Every page is a bounded index range on `seq` or `version`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import User
from chatproject.errors import Forbidden, InvalidInput, NotFound
from messaging import store
from messaging.history_cache import history
from messaging.payloads import iso, message_payloads
from rooms.models import MANAGER_ROLES, EditHistoryVisibility
from rooms.selectors import room_require_member

DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    next_params: dict[str, int] | None  # query parameters of the next page, if any


def parse_non_negative(name: str, raw: Any, *, default: int | None = None, maximum: int = 2**53) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidInput(f"{name} must be an integer.", fields={name: ["Must be an integer."]})
    if value < 0 or value > maximum:
        raise InvalidInput(f"{name} is out of range.", fields={name: [f"Between 0 and {maximum}."]})
    return value


def parse_limit(raw: Any) -> int:
    limit = parse_non_negative("limit", raw, default=DEFAULT_PAGE, maximum=MAX_PAGE)
    assert limit is not None
    if limit == 0:
        raise InvalidInput("limit must be at least 1.", fields={"limit": [f"Between 1 and {MAX_PAGE}."]})
    return limit


def room_history(*, user: User, room_id: Any, before: Any = None, after: Any = None, limit: Any = None) -> Page:
    """A page of the room in ascending `seq`.

    No cursor: the newest page, `next` pointing older. `before=B`: the page just older than B,
    `next` older still. `after=A`: the page just newer than A, `next` newer still.
    """
    membership = room_require_member(user, room_id)
    before_seq = parse_non_negative("before", before)
    after_seq = parse_non_negative("after", after)
    size = parse_limit(limit)
    rid = membership.room_id
    if before_seq is not None and after_seq is None and before_seq > 1:
        # Paging back: the range below `before` is known without the room's head. A full range
        # (the usual case) is the answer in one read; a short one (a hole where a post failed,
        # or `before` past the end) is answered the general way below.
        first, last = max(1, before_seq - size), before_seq - 1
        messages = history.messages(rid, first, last)
        if len(messages) == last - first + 1:
            next_params = {"before": first, "limit": size} if first > 1 else None
            return Page(results=message_payloads(messages), next_params=next_params)
    head = store.room_heads([rid]).get(rid)
    last_seq = head.last_seq if head else 0
    upper = last_seq if before_seq is None else min(last_seq, before_seq - 1)
    if after_seq is not None:
        first, last = after_seq + 1, min(upper, after_seq + size)
        more = last < upper
        next_params = {"after": last} if more else None
        if before_seq is not None and more:
            next_params = {"after": last, "before": before_seq}
    else:
        first, last = max(1, upper - size + 1), upper
        next_params = {"before": first} if first > 1 and last >= first else None
    if next_params is not None:
        next_params["limit"] = size
    messages = history.messages(rid, first, last, head=head)
    return Page(results=message_payloads(messages), next_params=next_params)


def thread_page(*, user: User, message_id: Any, after: Any = None, limit: Any = None) -> Page:
    parent = store.get_message(str(message_id))
    if parent is None:
        raise NotFound("No such message.", code="message_not_found")
    room_require_member(user, parent.room_id)
    after_seq = parse_non_negative("after", after, default=parent.seq) or parent.seq
    size = parse_limit(limit)
    replies = store.thread_replies(parent.id, after_seq, size + 1)
    more = len(replies) > size
    replies = replies[:size]
    next_params = {"after": replies[-1].seq, "limit": size} if more else None
    return Page(results=message_payloads(replies), next_params=next_params)


def edit_history(*, user: User, message_id: Any) -> list[dict[str, Any]]:
    message = store.get_message(str(message_id))
    if message is None:
        raise NotFound("No such message.", code="message_not_found")
    membership = room_require_member(user, message.room_id)
    hidden = membership.room.edit_history_visibility == EditHistoryVisibility.MODERATORS
    # Owners and admins always see it, and authors always see their own earlier words.
    if hidden and membership.role not in MANAGER_ROLES and message.author_id != user.pk:
        raise Forbidden("In this room only owners and admins see edit history.", code="history_hidden")
    return [
        {"body": record.body, "written_at": iso(record.written_at), "replaced_at": iso(record.replaced_at)}
        for record in store.edit_history(message.id)
    ]


def changes_since(room_id: int, after_version: int, upto_version: int) -> list[store.StoredMessage]:
    """For resume: every message changed after `after_version`, ascending by version."""
    return store.messages_by_version(room_id, after_version, upto_version)
