"""Reports of messages: members file them, the room's moderators (and staff, site-wide) resolve them.

Resolving one can delete the message (through message_delete, so the deletion is audited too);
every open report of that message is then closed with it. The reporter never learns who resolved
it: `resolved_by` is kept for the audit trail and never in a payload.
"""

from __future__ import annotations

from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.serializers import UserPayload, user_payload
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.ids import parse_positive_id
from core.ratelimit import enforce_for_user
from core.times import iso
from messaging import store
from messaging.models import Report, ReportStatus
from messaging.selectors import message_for_member
from messaging.services import message_delete
from rooms.audit import audit
from rooms.models import AuditAction
from rooms.moderation import is_moderator, moderated_room
from rooms.selectors import membership_get

REASON_MAX = 1000
ACTIONS = ("dismiss", "delete_message")


class ReportPayload(TypedDict):
    id: str
    message_id: str
    room_id: str
    reporter: UserPayload
    reason: str
    created_at: str
    status: str


def report_payload(report: Report) -> ReportPayload:
    return {
        "id": str(report.pk),
        "message_id": report.message_id,
        "room_id": str(report.room_id),
        "reporter": user_payload(report.reporter),
        "reason": report.reason,
        "created_at": iso(report.created_at),
        "status": report.status,
    }


def report_create(*, user: User, message_id: Any, reason: Any) -> Report:
    message, membership = message_for_member(user, message_id)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX:
        raise InvalidInput(
            f"Say why, in at most {REASON_MAX} characters.", fields={"reason": [f"1 to {REASON_MAX} characters."]}
        )
    if message.deleted:
        raise NotFound("That message was deleted.", code="message_deleted")
    if message.author_id == user.pk:
        raise InvalidInput("You cannot report your own message.", code="own_message")
    enforce_for_user(user.pk, "message.report", settings.REPORT_RATE_LIMIT)
    try:
        with transaction.atomic():
            report = Report.objects.create(
                room_id=membership.room_id, message_id=message.id, reporter=user, reason=reason.strip()
            )
    except IntegrityError:
        raise Conflict("You reported this message already.", code="already_reported")
    report.reporter = user
    return report


def _status_filter(raw: Any) -> str | None:
    if raw in (None, ""):
        return None
    if raw not in ReportStatus.values:
        raise InvalidInput(
            "status is open, dismissed or actioned.", fields={"status": ["open, dismissed or actioned."]}
        )
    return str(raw)


def reports_of_room(*, actor: User, room_id: Any, status: Any = None) -> QuerySet[Report]:
    room, _ = moderated_room(actor, room_id)
    query = Report.objects.filter(room=room).select_related("reporter")
    wanted = _status_filter(status)
    return (query.filter(status=wanted) if wanted else query).order_by("-created_at", "-id")


def reports_site_wide(*, actor: User, status: Any = None) -> QuerySet[Report]:
    if not actor.is_staff:
        raise Forbidden("Only staff see every room's reports.", code="staff_only")
    wanted = _status_filter(status)
    query = Report.objects.select_related("reporter")
    return (query.filter(status=wanted) if wanted else query).order_by("-created_at", "-id")


def report_resolve(*, actor: User, report_id: Any, action: Any) -> Report:
    if action not in ACTIONS:
        raise InvalidInput("action is dismiss or delete_message.", fields={"action": ["dismiss or delete_message."]})
    pk = parse_positive_id(report_id)
    report = Report.objects.select_related("reporter").filter(pk=pk).first() if pk else None
    membership = membership_get(actor, report.room_id) if report is not None else None
    if report is None or not (actor.is_staff or membership is not None):
        raise NotFound("No such report.", code="report_not_found")  # outsiders cannot probe report ids
    if not is_moderator(actor, membership):
        raise Forbidden("Only the room's owners and admins resolve reports.", code="not_a_manager")
    if report.status != ReportStatus.OPEN:
        raise Conflict("That report is resolved already.", code="already_resolved")
    if action == "delete_message":
        message_delete(user=actor, message_id=report.message_id)
    author = store.get_message(report.message_id)
    outcome = ReportStatus.ACTIONED if action == "delete_message" else ReportStatus.DISMISSED
    now = timezone.now()
    with transaction.atomic():
        closing = Report.objects.select_for_update().filter(pk=report.pk, status=ReportStatus.OPEN)
        if action == "delete_message":  # every open report of the deleted message is answered with it
            closing = Report.objects.select_for_update().filter(message_id=report.message_id, status=ReportStatus.OPEN)
        if not closing.update(status=outcome, resolved_by=actor, resolved_at=now):
            raise Conflict("That report is resolved already.", code="already_resolved")
        audit(
            AuditAction.REPORT_RESOLVE,
            actor=actor,
            room_id=report.room_id,
            target_user_id=author.author_id if author is not None else None,
            message_id=report.message_id,
            reason=report.reason[:500],
            data={"report_id": str(report.pk), "action": action},
        )
    report.refresh_from_db()
    return report
