"""The audit log of moderation (rooms.models.AuditEntry): written in each action's transaction,
read by the room's moderators and staff, never changed through the API."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from rooms.models import AuditEntry


def audit(
    action: str,
    *,
    actor: User | None,
    room_id: int | None,
    target_user_id: int | None = None,
    message_id: str = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """One entry of the audit log; call it inside the action's transaction."""
    AuditEntry.objects.create(
        action=action,
        actor=actor,
        room_id=room_id,
        target_user_id=target_user_id,
        message_id=message_id,
        reason=reason,
        data=data or {},
    )
