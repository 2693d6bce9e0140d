"""Message writes, shared by REST and WebSocket: validate, authorise, store durably, then announce.

The announcement (messaging.signals) is what reaches sockets (realtime) and the index (search).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.blocking import refuse_if_blocked_in_room
from accounts.models import User
from core.errors import ApiError, Forbidden, InvalidInput, NotFound
from core.metrics import MESSAGES_POSTED
from core.ratelimit import enforce_for_user, message_rate
from files.selectors import validate_attachments
from files.services import attach_to_message, withdraw_message_files
from messaging import store
from messaging.payloads import MessagePayload, message_payloads, one_message_payload
from messaging.rendering import RenderedBody, render_body
from messaging.selectors import message_for_member, message_or_404
from messaging.signals import MessageChange, room_messages_changed
from messaging.spam import refuse_spam
from notifications.services import forget_message
from rooms.audit import audit
from rooms.models import MANAGER_ROLES, AuditAction, Membership, RoomKind
from rooms.moderation import refuse_if_too_soon
from rooms.sanctions import refuse_if_muted
from rooms.selectors import member_ids_by_username, room_has_at_most, room_require_member

logger = logging.getLogger(__name__)

MAX_CLIENT_ID_LENGTH = 64
MAX_EMOJI_LENGTH = 64


@dataclass(frozen=True)
class PostResult:
    message: MessagePayload
    created: bool


def validate_body(body: Any, *, files_attached: bool = False) -> str:
    if files_attached and (body is None or (isinstance(body, str) and not body.strip())):
        return ""  # a message may be only files; otherwise it needs words
    if not isinstance(body, str):
        raise InvalidInput("The body must be a string.", code="invalid_body", fields={"body": ["Must be a string."]})
    if not body.strip():
        raise InvalidInput("The message is empty.", code="empty_body", fields={"body": ["May not be blank."]})
    if len(body) > settings.MESSAGE_MAX_LENGTH:
        limit = settings.MESSAGE_MAX_LENGTH
        raise InvalidInput(
            f"The message is longer than {limit} characters.",
            code="body_too_long",
            fields={"body": [f"At most {limit} characters."]},
        )
    if "\x00" in body:
        raise InvalidInput("The body contains a NUL character.", code="invalid_body", fields={"body": ["No NUL."]})
    return body


def validate_client_id(client_id: Any) -> str | None:
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH or not client_id.isprintable():
        raise InvalidInput(
            "client_id must be a printable string of 1 to 64 characters.",
            code="invalid_client_id",
            fields={"client_id": ["1 to 64 printable characters."]},
        )
    return client_id


def validate_emoji(emoji: Any) -> str:
    if (
        not isinstance(emoji, str)
        or not emoji
        or len(emoji) > MAX_EMOJI_LENGTH
        or any(unicodedata.category(ch)[0] in "CZ" and ch != "\u200d" for ch in emoji)
    ):
        raise InvalidInput("Not a valid emoji.", code="invalid_emoji", fields={"emoji": ["A short emoji or :name:."]})
    return emoji


def render_for_room(membership: Membership, body: str) -> RenderedBody:
    """Markdown to safe HTML, with `@name` resolved against the room's members only.

    `@room` tells every member: in a room of more than ROOM_MENTION_MAX_MEMBERS only its owners
    and admins may use it (403 `room_mention_not_allowed`), as Zulip does for wildcard mentions.
    """
    rendered = render_body(body, lambda names: member_ids_by_username(membership.room_id, names))
    limit = settings.ROOM_MENTION_MAX_MEMBERS
    moderator = membership.role in MANAGER_ROLES
    if rendered.mentions_room and not moderator and not room_has_at_most(membership.room_id, limit):
        raise Forbidden(
            f"Only the room's owners and admins may notify everyone (@room) in a room of more than {limit} members.",
            code="room_mention_not_allowed",
        )
    return rendered


def message_post(
    *,
    user: User,
    room_id: Any,
    body: Any,
    parent_id: Any = None,
    client_id: Any = None,
    attachments: Any = None,
) -> PostResult:
    membership = room_require_member(user, room_id)
    if membership.room.kind == RoomKind.DIRECT:
        refuse_if_blocked_in_room(user, membership.room_id)
    files = validate_attachments(user=user, room_id=membership.room_id, raw=attachments)
    text = validate_body(body, files_attached=bool(files))
    cid = validate_client_id(client_id)
    if parent_id is not None and not isinstance(parent_id, str):
        raise InvalidInput("parent_id must be a message id.", fields={"parent_id": ["Must be a message id."]})
    rendered = render_for_room(membership, text)
    try:
        refuse_if_muted(membership)
        refuse_spam(user, text, rendered)
        refuse_if_too_soon(user, membership)
    except ApiError:
        # A retry of a post that went through (its ack was lost) gets it back, refused or not.
        earlier = store.message_by_client_id(membership.room_id, user.pk, cid) if cid is not None else None
        if earlier is None:
            raise
        return PostResult(message=message_payloads([earlier], known=[user])[0], created=False)
    enforce_for_user(user.pk, "message.post", message_rate())
    announced: list[MessagePayload] = []

    def announce(outcome: store.PostOutcome) -> None:
        """Run by the group commit once the post is durable, in version order with its batch."""
        stored, created, parent = outcome
        announced[:] = message_payloads([stored, parent] if parent is not None else [stored], known=[user])
        if created:
            MESSAGES_POSTED.inc()
            changes = [_change(stored, announced[0], is_new=True)]
            if parent is not None:
                changes.append(_change(parent, announced[1], is_new=False))
            _announce(membership.room_id, changes)

    try:
        stored, created, _ = store.insert_message(
            room_id=membership.room_id,
            author_id=user.pk,
            body=text,
            rendered=rendered,
            now=timezone.now(),
            parent_id=parent_id,
            client_id=cid,
            attachments=files,
            after_commit=announce,
        )
    except store.ParentInvalid:
        raise InvalidInput(
            "parent_id must name a live top-level message of this room.",
            code="invalid_parent",
            fields={"parent_id": ["No such top-level message in this room."]},
        )
    # Without the announcement's payloads (a repeated client_id the unique index caught, or the
    # announcement failed and was logged), the answer is built here.
    payloads = announced or message_payloads([stored], known=[user])
    try:
        # PostgreSQL learns which message carries the files (the first one, for a repeated client_id).
        # Without these rows the post still stands, and its own deletion still finds its files; only
        # a file it shares with another message would go when that other one is deleted.
        attach_to_message(room_id=membership.room_id, message_id=stored.id, upload_ids=stored.attachments)
    except DatabaseError:
        logger.warning("attachments of message %s not linked", stored.id, exc_info=True)
    return PostResult(message=payloads[0], created=created)


def _change(stored: store.StoredMessage, payload: MessagePayload, *, is_new: bool) -> MessageChange:
    return MessageChange(message=payload, is_new=is_new, stamp=stored.stamp, prior_stamp=stored.prior_stamp)


def _announce(room_id: int, changes: list[MessageChange]) -> None:
    room_messages_changed.send(sender=MessageChange, room_id=room_id, changes=changes)


def _require_live(message: store.StoredMessage) -> None:
    if message.deleted:
        raise NotFound("That message was deleted.", code="message_deleted")


class _Announcer:
    """A change's announcement once it is durable (run by the group commit, in version order with
    its batch), and the payload its writer answers with."""

    def __init__(self, room_id: int) -> None:
        self.room_id = room_id
        self.payload: MessagePayload | None = None

    def __call__(self, updated: store.StoredMessage | None) -> None:
        if updated is None:  # a no-op: nothing stored, nothing announced
            return
        self.payload = one_message_payload(updated)
        _announce(self.room_id, [_change(updated, self.payload, is_new=False)])

    def answer(self, updated: store.StoredMessage | None, fallback_id: str) -> MessagePayload:
        if self.payload is not None:
            return self.payload
        return one_message_payload(updated if updated is not None else message_or_404(fallback_id))


def message_edit(*, user: User, message_id: Any, body: Any) -> MessagePayload:
    message, membership = message_for_member(user, message_id)
    if message.author_id != user.pk:
        raise Forbidden("Only the author can edit a message.", code="not_author")
    _require_live(message)
    refuse_if_muted(membership)
    text = validate_body(body)
    rendered = render_for_room(membership, text)
    enforce_for_user(user.pk, "message.edit", settings.EDIT_RATE_LIMIT)
    announce = _Announcer(message.room_id)
    try:
        updated = store.edit_message(
            room_id=message.room_id,
            message_id=message.id,
            body=text,
            rendered=rendered,
            now=timezone.now(),
            after_commit=announce,
        )
    except store.MessageGone:
        raise NotFound("That message was deleted.", code="message_deleted")
    return announce.answer(updated, message.id)


def message_react(*, user: User, message_id: Any, emoji: Any, present: bool) -> MessagePayload:
    message, membership = message_for_member(user, message_id)
    _require_live(message)
    refuse_if_muted(membership)
    glyph = validate_emoji(emoji)
    enforce_for_user(user.pk, "message.react", settings.REACTION_RATE_LIMIT)
    announce = _Announcer(message.room_id)
    try:
        updated = store.set_reaction(
            room_id=message.room_id,
            message_id=message.id,
            emoji=glyph,
            user_id=user.pk,
            present=present,
            max_distinct=settings.MAX_DISTINCT_REACTIONS,
            after_commit=announce,
        )
    except store.MessageGone:
        raise NotFound("That message was deleted.", code="message_deleted")
    except store.TooManyReactions:
        limit = settings.MAX_DISTINCT_REACTIONS
        raise InvalidInput(
            f"A message holds at most {limit} different reactions.",
            code="too_many_reactions",
            fields={"emoji": [f"At most {limit} different emoji a message."]},
        )
    return announce.answer(updated, message.id)


def message_delete(*, user: User, message_id: Any) -> None:
    if user.is_staff:
        message = message_or_404(message_id)
    else:
        message, membership = message_for_member(user, message_id)
        if message.author_id != user.pk and membership.role not in MANAGER_ROLES:
            raise Forbidden("Only the author, the room's owners and admins can delete it.", code="not_allowed")
    if message.deleted:
        return  # deleting twice is harmless
    if not user.is_staff:  # staff clearing a queue of reports (the admin, the API) are not slowed
        enforce_for_user(user.pk, "message.edit", settings.EDIT_RATE_LIMIT)
    now = timezone.now()
    # Its files are withdrawn first, in PostgreSQL, then the tombstone is written: a crash between
    # the two, or a tombstone that fails (503), leaves a live message whose files are gone (the
    # caller asked for that; deleting again completes it), never a deleted message's file served.
    # Edits change only the body: a message's attachments stay what it was posted with.
    with transaction.atomic():  # the audit entry stands or falls with the files' withdrawal
        withdraw_message_files(room_id=message.room_id, message_id=message.id, upload_ids=message.attachments, now=now)
        forget_message(message.id)  # its words leave the notices too
        if message.author_id != user.pk:  # a moderator's (or staff's) deletion is on the record
            audit(
                AuditAction.MESSAGE_DELETE,
                actor=user,
                room_id=message.room_id,
                target_user_id=message.author_id,
                message_id=message.id,
                data={"excerpt": " ".join(message.body.split())[:200]},
            )
    try:
        store.delete_message(
            room_id=message.room_id, message_id=message.id, now=now, after_commit=_Announcer(message.room_id)
        )
    except store.MessageGone:
        return
