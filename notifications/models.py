from __future__ import annotations

from django.conf import settings
from django.db import models


class NotificationType(models.TextChoices):
    MENTION = "mention"
    REPLY = "reply"
    INVITE = "invite"


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

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="notification_user_time")]
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
