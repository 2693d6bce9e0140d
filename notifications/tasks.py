"""Celery tasks of notifications: Web Push for each new notice, and the e-mail digests (beat).

Task names are pinned, so tasks queued before a deploy and the beat schedule still resolve.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications import digest, metrics, push
from notifications.models import Notification, NotificationType, PushSubscription
from rooms.models import Membership

logger = logging.getLogger(__name__)


def queue_pushes(notification_ids: list[int]) -> None:
    """After the notices commit: one task for the batch. Never fails the caller (the notices stand)."""
    try:
        push_notices.delay(notification_ids)
    except Exception:
        logger.warning("could not queue pushes for %s notices", len(notification_ids), exc_info=True)


_TITLES = {
    NotificationType.MENTION: "{actor} mentioned you in {room}",
    NotificationType.REPLY: "{actor} replied to your thread in {room}",
    NotificationType.MESSAGE: "{actor} in {room}",
    NotificationType.DM: "{actor}",
    NotificationType.INVITE: "{actor} added you to {room}",
}


def push_payload(notice: Notification) -> dict[str, object]:
    actor = notice.actor.display_name or notice.actor.username if notice.actor else "Someone"
    room = notice.room.name if notice.room.kind == "direct" else f"#{notice.room.name}"
    url = f"/chat/{notice.room_id}/" + (f"?message={notice.message_id}" if notice.message_id else "")
    return {
        "title": _TITLES[NotificationType(notice.type)].format(actor=actor, room=room),
        "body": notice.excerpt or ("New message" if notice.message_id else f"You can read {room} now."),
        "url": url,
        "tag": f"room-{notice.room_id}",
        "notification_id": str(notice.pk),
        "room_id": str(notice.room_id),
        "message_id": notice.message_id or None,
        "type": notice.type,
    }


@shared_task(name="notifications.tasks.push_notices", ignore_result=True, acks_late=True)
def push_notices(notification_ids: list[int]) -> int:
    """One delivery task per notice and subscription, unless the person is in do-not-disturb or
    has muted the room since; returns how many were queued."""
    notices = list(
        Notification.objects.filter(pk__in=notification_ids, read=False).select_related("actor", "room", "user")
    )
    if not notices:
        return 0
    user_ids = {n.user_id for n in notices}
    subscriptions: dict[int, list[int]] = {}
    for sub_id, user_id in PushSubscription.objects.filter(user_id__in=user_ids).values_list("pk", "user_id"):
        subscriptions.setdefault(user_id, []).append(sub_id)
    muted = set(
        Membership.objects.filter(
            user_id__in=user_ids, room_id__in={n.room_id for n in notices}, muted=True
        ).values_list("user_id", "room_id")
    )
    now = timezone.now()
    queued = 0
    for notice in notices:
        if notice.user_id not in subscriptions:
            metrics.push_skipped("no_subscription")
        elif notice.user.dnd_until is not None and notice.user.dnd_until > now:
            metrics.push_skipped("dnd")
        elif (notice.user_id, notice.room_id) in muted:
            metrics.push_skipped("muted")
        else:
            payload = json.dumps(push_payload(notice))
            for sub_id in subscriptions[notice.user_id]:
                deliver_push.delay(sub_id, payload, notice.created_at.isoformat())
                queued += 1
    return queued


def _backoff(retries: int) -> float:
    """2 s, 4 s, 8 s, ... at most 5 minutes, with jitter so a push service's outage does not end in a stampede."""
    return min(2.0 ** (retries + 1), 300.0) * random.uniform(0.8, 1.2)


@shared_task(name="notifications.tasks.deliver_push", ignore_result=True, acks_late=True)
def deliver_push(subscription_id: int, payload: str, written_at: str, attempt: int = 0) -> str:
    """Post one push; a push service's 404/410 forgets the subscription; 429, 5xx and network
    errors try again later, as a new task with a growing countdown (the same in eager mode, where
    the countdown is skipped), at most PUSH_MAX_RETRIES times."""
    subscription = PushSubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        return "gone"
    try:
        push.send(subscription, payload)
    except push.PushGone:
        PushSubscription.objects.filter(pk=subscription_id).delete()
        metrics.push_failed("gone")
        return "gone"
    except push.PushRefused as refused:
        logger.warning("push to subscription %s refused: %s", subscription_id, refused)
        metrics.push_failed("refused")
        return "refused"
    except push.PushFailed as failed:
        if attempt >= settings.PUSH_MAX_RETRIES:
            logger.warning("push to subscription %s given up after %s tries: %s", subscription_id, attempt + 1, failed)
            metrics.push_failed("gave_up")
            return "gave_up"
        metrics.push_failed("retry")
        deliver_push.apply_async((subscription_id, payload, written_at, attempt + 1), countdown=_backoff(attempt))
        return "retry"
    delay = (timezone.now() - datetime.fromisoformat(written_at)).total_seconds()
    metrics.push_sent(delay)
    return "sent"


@shared_task(name="notifications.tasks.send_email_digests", ignore_result=True)
def send_email_digests() -> int:
    return digest.send_due_digests()
