"""The only package that talks to MongoDB. It returns dataclasses, never documents or ObjectIds.

`connection` (client, collections, indexes), `transactions` (one per change, allocating `seq` and
`version` in order), `writes`, `reads`, `diagnostics` (query plans); `types` and `documents` are
shared by them. Callers use the names re-exported here: `from messaging import store`.
"""

from messaging.store.connection import close, delete_everything, ensure_indexes, generation, ping
from messaging.store.diagnostics import query_plans
from messaging.store.group_commit import announce_batches_within
from messaging.store.reads import (
    count_unread,
    first_version_stamped_since,
    get_message,
    get_messages,
    head_version,
    head_version_if_reachable,
    message_by_client_id,
    messages_by_seq,
    messages_by_version,
    revisions_of,
    room_heads,
    room_heads_if_reachable,
    rooms_changed_since,
    thread_replies,
)
from messaging.store.types import (
    Markup,
    MessageGone,
    ParentInvalid,
    ReactionSummary,
    Revision,
    RoomHead,
    StoredMessage,
    StoreError,
    TooManyReactions,
)
from messaging.store.writes import PostOutcome, delete_message, edit_message, insert_message, set_reaction

__all__ = [
    "Markup",
    "MessageGone",
    "ParentInvalid",
    "PostOutcome",
    "ReactionSummary",
    "Revision",
    "RoomHead",
    "StoreError",
    "StoredMessage",
    "TooManyReactions",
    "announce_batches_within",
    "close",
    "count_unread",
    "delete_everything",
    "delete_message",
    "edit_message",
    "ensure_indexes",
    "first_version_stamped_since",
    "generation",
    "get_message",
    "get_messages",
    "head_version",
    "head_version_if_reachable",
    "insert_message",
    "message_by_client_id",
    "messages_by_seq",
    "messages_by_version",
    "ping",
    "query_plans",
    "revisions_of",
    "room_heads",
    "room_heads_if_reachable",
    "rooms_changed_since",
    "set_reaction",
    "thread_replies",
]
