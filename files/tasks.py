"""Celery tasks of files. Their names are pinned to where they were first defined, so tasks queued
before a deploy and the beat schedule (settings.CELERY_BEAT_SCHEDULE) still resolve."""

from __future__ import annotations

from celery import shared_task

from files import jobs


@shared_task(name="messaging.tasks.make_thumbnail", ignore_result=True, acks_late=True)
def make_thumbnail(upload_id: str) -> None:
    jobs.write_thumbnail(upload_id)


@shared_task(name="messaging.tasks.expire_uploads", ignore_result=True)
def expire_uploads() -> int:
    """Unfinished uploads past their expiry, and the bytes of withdrawn files (deleted messages')."""
    return jobs.expire_unfinished() + jobs.purge_withdrawn()
