"""Upload reads: who may see or continue an upload, attachments for a post, the Attachment shape."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, TypedDict

from accounts.models import User
from core.errors import InvalidInput, NotFound
from files.models import Upload
from rooms.selectors import membership_get

MAX_ATTACHMENTS = 10


class AttachmentPayload(TypedDict):
    id: str
    name: str
    size: int
    content_type: str
    url: str
    thumbnail_url: str | None
    width: int | None
    height: int | None


def parse_upload_id(raw: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("No such upload.", code="upload_not_found")


def upload_for_owner(user: User, upload_id: Any) -> Upload:
    """An upload its owner may continue: 404 for anyone else, and once they left the room."""
    upload = Upload.objects.filter(pk=parse_upload_id(upload_id), owner_id=user.pk).first()
    if upload is None or membership_get(user, upload.room_id) is None:
        raise NotFound("No such upload.", code="upload_not_found")
    return upload


def upload_for_member(user: User, upload_id: Any) -> Upload:
    """A complete upload seen by a member of its room; 404 to everyone else (no hint it exists),
    and to everyone once it is withdrawn (the messages that carried it are deleted)."""
    upload = Upload.objects.filter(pk=parse_upload_id(upload_id)).first()
    if upload is None or upload.withdrawn_at is not None or membership_get(user, upload.room_id) is None:
        raise NotFound("No such file.", code="file_not_found")
    if not upload.is_complete and upload.owner_id != user.pk:
        raise NotFound("No such file.", code="file_not_found")
    return upload


def validate_attachments(*, user: User, room_id: int, raw: Any) -> list[str]:
    """Attachment ids for a post: the author's own finished uploads to this room, not withdrawn."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS or not all(isinstance(i, str) for i in raw):
        raise InvalidInput(
            f"attachments must be a list of at most {MAX_ATTACHMENTS} upload ids.",
            code="invalid_attachments",
            fields={"attachments": [f"At most {MAX_ATTACHMENTS} upload ids."]},
        )
    ids: list[str] = []
    for raw_id in raw:
        try:
            ids.append(str(uuid.UUID(raw_id)))
        except ValueError:
            ids.append("")
    found = set(
        str(pk)
        for pk in Upload.objects.filter(
            pk__in=[i for i in ids if i],
            owner_id=user.pk,
            room_id=room_id,
            completed_at__isnull=False,
            withdrawn_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    if not ids or any(i not in found for i in ids):
        raise InvalidInput(
            "Every attachment must be a finished upload of yours to this room.",
            code="invalid_attachments",
            fields={"attachments": ["Unknown, unfinished or foreign upload."]},
        )
    return list(dict.fromkeys(ids))


def attachment_payload(upload: Upload) -> AttachmentPayload:
    return {
        "id": str(upload.pk),
        "name": upload.name,
        "size": upload.length,
        "content_type": upload.content_type,
        "url": f"/api/files/{upload.pk}",
        "thumbnail_url": f"/api/files/{upload.pk}/thumbnail" if upload.thumbnail_name else None,
        "width": upload.width,
        "height": upload.height,
    }


def attachment_payloads(ids: Iterable[str]) -> dict[str, AttachmentPayload]:
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    shown = Upload.objects.filter(pk__in=wanted, completed_at__isnull=False, withdrawn_at__isnull=True)
    return {str(u.pk): attachment_payload(u) for u in shown}
