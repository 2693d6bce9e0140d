from __future__ import annotations

from django.conf import settings
from django.db import models


class NotificationType(models.TextChoices):
    MENTION = "mention"
    REPLY = "reply"
    INVITE = "invite"
    DM = "dm"  # a message in a direct room
    MESSAGE = "message"  # a message in a room whose `notify` is `all`


# What the e-mail digest tells of (when still unread everywhere after EMAIL_NOTIFY_DELAY).
EMAILED_TYPES = (NotificationType.DM, NotificationType.MENTION)


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    type = models.CharField(max_length=10, choices=NotificationType.choices)
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=24, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    read = models.BooleanField(default=False)
    # The start of the message as it was when the notice was made, so a list of notices needs no
    # message reads; cleared when the message is deleted.
    excerpt = models.CharField(max_length=200, blank=True, default="")
    # The message's seq: read on any device (the room's read marker past it) means no e-mail.
    seq = models.BigIntegerField(null=True, blank=True)
    # When the e-mail digest dealt with it (sent, or skipped as read): never twice.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_time"),
            # The digest's scan: only what may still be e-mailed, oldest first.
            models.Index(
                fields=["created_at"],
                name="notification_email_due",
                condition=models.Q(read=False, emailed_at__isnull=True, type__in=["dm", "mention"]),
            ),
        ]
        constraints = [
            # One mention (or reply) notice per message and person, however often it is edited.
            models.UniqueConstraint(
                fields=["user", "type", "message_id"],
                condition=~models.Q(message_id=""),
                name="notification_once_per_message",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} for {self.user_id}"


class PushSubscription(models.Model):
    """One browser's Web Push endpoint (RFC 8030) and its keys (RFC 8291), for one user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    # Unique: an endpoint names one browser profile; subscribing it again moves it to who asked.
    endpoint = models.URLField(max_length=2000, unique=True)
    p256dh = models.CharField(max_length=200)  # the browser's P-256 public key, URL-safe base64
    auth = models.CharField(max_length=64)  # the 16-byte auth secret, URL-safe base64
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="push_subscription_user")]

    def __str__(self) -> str:
        return f"push for {self.user_id}"


class EmailDigest(models.Model):
    """When a user was last e-mailed: at most one digest per EMAIL_NOTIFY_DELAY (its row lock also
    keeps two beat runs from sending the same one)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"digests of {self.user_id}"
