"""The `Room` JSON shape: PostgreSQL for the room, one MongoDB query for every room's head."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from accounts.serializers import user_payload
from messaging import store
from messaging.payloads import iso
from rooms.models import Membership, Room
from rooms.selectors import member_counts


def room_payloads(rooms: Iterable[tuple[Room, Membership | None]]) -> list[dict[str, Any]]:
    pairs = list(rooms)
    ids = [room.pk for room, _ in pairs]
    counts = member_counts(ids)
    heads = store.room_heads(ids)
    results = []
    for room, membership in pairs:
        head = heads.get(room.pk)
        last_seq = head.last_seq if head else 0
        unread = 0
        if membership is not None and last_seq > membership.last_read_seq:
            unread = store.count_unread(
                room.pk, membership.last_read_seq, last_seq, membership.user_id, settings.UNREAD_COUNT_CAP
            )
        results.append(
            {
                "id": str(room.pk),
                "name": room.name,
                "description": room.description,
                "is_private": room.is_private,
                "created_by": user_payload(room.created_by),
                "created_at": iso(room.created_at),
                "member_count": counts.get(room.pk, 0),
                "role": membership.role if membership is not None else None,
                "unread_count": unread,
                "last_seq": last_seq,
                "edit_history_visibility": room.edit_history_visibility,
            }
        )
    return results


def room_payload(room: Room, membership: Membership | None) -> dict[str, Any]:
    return room_payloads([(room, membership)])[0]


def member_payload(membership: Membership) -> dict[str, Any]:
    return {"user": user_payload(membership.user), "role": membership.role, "joined_at": iso(membership.joined_at)}
