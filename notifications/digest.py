"""The e-mail digest: what stayed unread, sent at most once per EMAIL_NOTIFY_DELAY per person.

Celery beat runs `send_due_digests` every EMAIL_DIGEST_SWEEP_SECONDS. A person is due when a DM or
a mention of theirs has been unread for EMAIL_NOTIFY_DELAY; the digest then holds every such
notice still unread on every device (the notice not marked read, and the room's read marker, which
any device moves, not past the message). Each notice is dealt with once (`emailed_at`), sent or
skipped; a digest that fails to send rolls back and is tried on the next run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from notifications import metrics
from notifications.models import EMAILED_TYPES, EmailDigest, Notification
from rooms.models import Membership, RoomKind

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
USERS_PER_RUN = 500
NOTICES_PER_DIGEST = 100


def unsubscribe_token(user_id: int) -> str:
    return signing.dumps(user_id, salt=UNSUBSCRIBE_SALT, compress=True)


def user_of_unsubscribe_token(token: str) -> User | None:
    try:
        user_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None


def _due(now: datetime) -> dict[str, object]:
    cutoff = now - timedelta(seconds=settings.EMAIL_NOTIFY_DELAY)
    return {"read": False, "emailed_at__isnull": True, "type__in": EMAILED_TYPES, "created_at__lte": cutoff}


def send_due_digests(now: datetime | None = None) -> int:
    """Every due person's digest; returns how many e-mails went out."""
    now = now or timezone.now()
    # The partial index notification_email_due holds exactly the rows this reads.
    user_ids = list(
        Notification.objects.filter(**_due(now)).values_list("user_id", flat=True).distinct()[:USERS_PER_RUN]
    )
    sent = 0
    for user_id in user_ids:
        try:
            sent += _send_digest(user_id, now)
        except Exception:  # one person's failure (their SMTP refusal) must not stop the others'
            logger.warning("could not e-mail the digest of user %s; next run tries again", user_id, exc_info=True)
    return sent


def _send_digest(user_id: int, now: datetime) -> int:
    EmailDigest.objects.get_or_create(user_id=user_id)
    with transaction.atomic():
        # Another run sending this person's digest holds the row: leave it to that one.
        state = EmailDigest.objects.select_for_update(skip_locked=True).filter(user_id=user_id).first()
        if state is None:
            return 0
        if state.last_sent_at and state.last_sent_at > now - timedelta(seconds=settings.EMAIL_NOTIFY_DELAY):
            return 0
        pending = list(
            Notification.objects.filter(user_id=user_id, **_due(now))
            .select_related("actor", "room")
            .order_by("created_at", "id")[:NOTICES_PER_DIGEST]
        )
        markers = dict(
            Membership.objects.filter(user_id=user_id, room_id__in={n.room_id for n in pending}).values_list(
                "room_id", "last_read_seq"
            )
        )
        unread = [n for n in pending if n.room_id in markers and (n.seq is None or n.seq > markers[n.room_id])]
        Notification.objects.filter(pk__in=[n.pk for n in pending]).update(emailed_at=now)
        user = User.objects.get(pk=user_id)
        if not unread or not (user.email_notifications and user.email and user.is_active):
            return 0
        digest_email(user, unread).send()
        state.last_sent_at = now
        state.save(update_fields=["last_sent_at"])
    metrics.emails_sent()
    return 1


def _shown(user: User | None) -> str:
    return (user.display_name or user.username) if user is not None else "Someone"


def digest_email(user: User, notices: list[Notification]) -> EmailMultiAlternatives:
    site = settings.SITE_URL
    rooms: dict[int, dict[str, object]] = {}
    items: dict[int, list[dict[str, str]]] = defaultdict(list)
    for notice in notices:
        room = notice.room
        label = f"{room.name} (direct message)" if room.kind == RoomKind.DIRECT else f"#{room.name}"
        rooms.setdefault(room.pk, {"label": label, "url": f"{site}/chat/{room.pk}/"})
        items[room.pk].append(
            {
                "who": _shown(notice.actor),
                "what": "mentioned you" if notice.type == "mention" else "wrote",
                "excerpt": notice.excerpt,
                "url": f"{site}/chat/{room.pk}/?message={notice.message_id}",
            }
        )
    conversations = [{**rooms[pk], "items": items[pk]} for pk in rooms]
    unsubscribe = f"{site}/unsubscribe/{unsubscribe_token(user.pk)}/"
    count = len(notices)
    first = notices[0]
    subject = (
        f"{_shown(first.actor)} {'mentioned you' if first.type == 'mention' else 'sent you a message'}"
        if count == 1
        else f"{count} unread messages in {len(conversations)} conversation{'s' if len(conversations) > 1 else ''}"
    )
    context = {"user": user, "conversations": conversations, "unsubscribe": unsubscribe, "site": site, "count": count}
    mail = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/digest.txt", context),
        to=[user.email],
        headers={
            # RFC 2369 and RFC 8058: mail clients offer a one-click unsubscribe that POSTs to it.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    mail.attach_alternative(render_to_string("notifications/digest.html", context), "text/html")
    return mail
