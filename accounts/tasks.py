"""Celery tasks of accounts."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from accounts import revocations, user_log

# Every process reads revocations within a second; a day leaves room for a process stalled for
# hours (it reads what it missed on its next poll) without keeping the log forever.
REVOCATION_LOG_KEPT = timedelta(days=1)


@shared_task(name="accounts.tasks.forget_old_revocations", ignore_result=True)
def forget_old_revocations() -> int:
    return revocations.forget_older_than(REVOCATION_LOG_KEPT)


@shared_task(name="accounts.tasks.forget_old_log_entries", ignore_result=True)
def forget_old_log_entries() -> int:
    return user_log.forget_older_than(timedelta(days=settings.USER_LOG_KEEP_DAYS))
