"""Messages live in MongoDB (messaging/store); what PostgreSQL keeps about them here: reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ReportStatus(models.TextChoices):
    OPEN = "open"
    DISMISSED = "dismissed"
    ACTIONED = "actioned"


class Report(models.Model):
    """A member's report of a message, for the room's moderators (and staff) to resolve."""

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=24)
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.OPEN)
    # Never in the API: the reporter does not learn who resolved it (the audit log names them).
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message_id", "reporter"], name="report_once_per_reporter")]
        indexes = [
            models.Index(fields=["room", "status", "-created_at", "-id"], name="report_room_queue"),
            models.Index(fields=["status", "-created_at", "-id"], name="report_site_queue"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} of {self.message_id}"
