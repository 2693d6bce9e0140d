"""Message reads. Every page is a bounded index range on `seq` or `version`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import User
from core.errors import Forbidden, InvalidInput, NotFound
from core.times import iso
from messaging import store
from messaging.page_cache import page_cache
from messaging.payloads import MessagePayload, message_payloads
from rooms.activity import RoomActivity
from rooms.models import MANAGER_ROLES, EditHistoryVisibility, Membership
from rooms.selectors import room_require_member

DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    results: list[MessagePayload]
    next_params: dict[str, Any] | None  # query parameters of the next page, if any


def message_or_404(message_id: Any) -> store.StoredMessage:
    message = store.get_message(str(message_id))
    if message is None:
        raise _no_such_message()
    return message


def message_for_member(user: User, message_id: Any) -> tuple[store.StoredMessage, Membership]:
    """The message and the caller's membership of its room: every path that takes a message id
    asks this. A message in a private room the caller is not in gets the very answer a missing
    one gets (ids are sequential: a different answer would let neighbours be probed); in a
    public room a non-member is told to join (403 `not_a_member`)."""
    message = message_or_404(message_id)
    try:
        return message, room_require_member(user, message.room_id)
    except NotFound:
        raise _no_such_message()


def _no_such_message() -> NotFound:
    return NotFound("No such message.", code="message_not_found")


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


def room_history(
    *, user: User, room_id: Any, before: Any = None, after: Any = None, limit: Any = None, around: Any = None
) -> Page:
    """A page of the room in ascending `seq`.

    No cursor: the newest page, `next` pointing older. `before=B`: the page just older than B,
    `next` older still. `after=A`: the page just newer than A, `next` newer still. `around=M` (a
    message id): the page with M (or, for a reply, its thread's first message) in the middle, `next`
    pointing older; newer pages come with `after=` the page's last `seq` (a link to a message).
    """
    membership = room_require_member(user, room_id)
    if around is not None:
        return _page_around(membership.room_id, around, parse_limit(limit))
    before_seq = parse_non_negative("before", before)
    after_seq = parse_non_negative("after", after)
    size = parse_limit(limit)
    rid = membership.room_id
    if before_seq is not None and after_seq is None and before_seq > 1:
        # Paging back: the range below `before` is known without the room's head. A full range
        # (the usual case) is the answer in one read; a short one (a hole where a post failed,
        # or `before` past the end) is answered the general way below.
        first, last = max(1, before_seq - size), before_seq - 1
        messages = page_cache.messages(rid, first, last)
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
    messages = page_cache.messages(rid, first, last, head=head)
    return Page(results=message_payloads(messages), next_params=next_params)


def _page_around(room_id: int, message_id: Any, size: int) -> Page:
    message = store.get_message(str(message_id))
    if message is None or message.room_id != room_id:
        raise _no_such_message()
    if message.parent_id is not None:
        parent = store.get_message(message.parent_id)
        message = parent if parent is not None else message
    head = store.room_heads([room_id]).get(room_id)
    last_seq = head.last_seq if head else message.seq
    first = max(1, min(message.seq - size // 2, last_seq - size + 1))
    last = min(last_seq, first + size - 1)
    messages = page_cache.messages(room_id, first, last, head=head)
    next_params = {"before": first, "limit": size} if first > 1 else None
    return Page(results=message_payloads(messages), next_params=next_params)


def thread_page(*, user: User, message_id: Any, after: Any = None, limit: Any = None) -> Page:
    parent, _ = message_for_member(user, message_id)
    after_seq = parse_non_negative("after", after, default=parent.seq) or parent.seq
    size = parse_limit(limit)
    replies = store.thread_replies(parent.id, after_seq, size + 1)
    more = len(replies) > size
    replies = replies[:size]
    next_params = {"after": replies[-1].seq, "limit": size} if more else None
    return Page(results=message_payloads(replies), next_params=next_params)


def message_revisions(
    *, user: User, message_id: Any, after: Any = None, limit: Any = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A page of the earlier bodies of an edited message (`GET /api/messages/{id}/history`), oldest
    first, and the query parameters of the next page (None on the last)."""
    message, membership = message_for_member(user, message_id)
    hidden = membership.room.edit_history_visibility == EditHistoryVisibility.MODERATORS
    # Owners and admins always see it, and authors always see their own earlier words.
    if hidden and membership.role not in MANAGER_ROLES and message.author_id != user.pk:
        raise Forbidden("In this room only owners and admins see edit history.", code="history_hidden")
    size = parse_limit(limit)
    if after is not None and not isinstance(after, str):
        after = None
    records = store.revisions_of(message.id, after=after, limit=size + 1)
    if records is None:
        raise InvalidInput("after must come from a previous page's next.", fields={"after": ["Not a page cursor."]})
    page = records[:size]
    results = [
        {"body": record.body, "written_at": iso(record.written_at), "replaced_at": iso(record.replaced_at)}
        for record in page
    ]
    return results, ({"after": page[-1].key, "limit": size} if len(records) > size else None)


def changes_since(room_id: int, after_version: int, upto_version: int) -> list[store.StoredMessage]:
    """For resume: every message changed after `after_version`, ascending by version."""
    return store.messages_by_version(room_id, after_version, upto_version)


def room_activity(memberships: list[tuple[int, Membership | None]]) -> dict[int, RoomActivity]:
    """Each room's last `seq` and, for a member, its unread count: one MongoDB read for every head.

    The rooms app shows these in its `Room` shape; it gets them through rooms/activity.py.
    """
    heads = store.room_heads([room_id for room_id, _ in memberships])
    activity = {}
    for room_id, membership in memberships:
        head = heads.get(room_id)
        last_seq = head.last_seq if head else 0
        unread = 0
        if membership is not None and last_seq > membership.last_read_seq:
            unread = store.count_unread(
                room_id, membership.last_read_seq, last_seq, membership.user_id, settings.UNREAD_COUNT_CAP
            )
        activity[room_id] = RoomActivity(last_seq=last_seq, unread_count=unread)
    return activity
