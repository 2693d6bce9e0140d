"""What the store hands out and takes in: plain dataclasses, never documents or ObjectIds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class Markup(Protocol):
    """What rendering derived from a body, stored beside it (messaging.rendering.RenderedBody)."""

    @property
    def html(self) -> str: ...
    @property
    def has_link(self) -> bool: ...
    @property
    def mentioned_user_ids(self) -> list[int]: ...
    @property
    def mentions_room(self) -> bool: ...


@dataclass(frozen=True)
class ReactionSummary:
    emoji: str
    user_ids: list[int]


@dataclass(frozen=True)
class StoredMessage:
    id: str
    room_id: int
    seq: int
    version: int
    author_id: int
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    parent_id: str | None
    reply_count: int
    last_reply_at: datetime | None
    client_id: str | None
    created_version: int  # the room version of the post itself: tells `message.new` from `message.updated`
    html: str | None = None  # None: written before bodies were rendered (the reader escapes `body`)
    has_link: bool = False
    mentioned_user_ids: list[int] = field(default_factory=list)
    mentions_room: bool = False
    reactions: list[ReactionSummary] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)  # upload ids (PostgreSQL holds the files' facts)
    # Milliseconds: when its latest change was made, and when the room's change before that one
    # was (store/transactions.Allocation); 0 on documents written before stamps existed.
    stamp: int = 0
    prior_stamp: int = 0
    created_stamp: int = 0  # the stamp of the post itself


@dataclass(frozen=True)
class Revision:
    """An earlier body of an edited message, with when it was written and when it was replaced."""

    body: str
    written_at: datetime
    replaced_at: datetime
    key: str = ""  # where the next page starts after this one (reads.revisions_of's `after`)


@dataclass(frozen=True)
class RoomHead:
    last_seq: int
    version: int
    stamp: int = 0  # of the room's latest change (0: none since stamps exist)


class StoreError(Exception):
    """A refusal decided by the stored state (the services turn it into an API error)."""


class MessageGone(StoreError):
    """The message does not exist, is in another room, or was deleted meanwhile."""


class ParentInvalid(StoreError):
    """A reply names a parent that is missing, in another room, deleted or itself a reply."""


class TooManyReactions(StoreError):
    """The message already carries the most different emoji it may."""
