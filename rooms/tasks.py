"""Celery tasks of rooms."""

from __future__ import annotations

from celery import shared_task

from rooms import moderation


@shared_task(name="rooms.tasks.forget_ended_sanctions", ignore_result=True)
def forget_ended_sanctions() -> int:
    """Beat: clear the rows of bans and mutes that have ended (every check reads the end time, so
    this is housekeeping, not what makes them end)."""
    return moderation.forget_ended()
