"""The moderation routes of rooms: `/api/rooms/{room_id}/bans`, `/mutes`, `/audit`, and staff's
`/api/admin/users/{user_id}/deactivate` (docs/api.md, Moderation)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User, request_user
from accounts.serializers import user_payload
from core.pagination import newest_first_page
from core.ratelimit import enforce_for_user
from core.schema import page_of
from core.times import iso
from rooms import moderation
from rooms.models import AuditEntry, RoomBan, RoomMute
from rooms.serializers import (
    AuditEntrySerializer,
    BanCreateSerializer,
    BanSerializer,
    MuteCreateSerializer,
    MuteSerializer,
)


def _user(user: User | None) -> Any:
    return user_payload(user) if user is not None else None


def ban_payload(ban: RoomBan) -> dict[str, Any]:
    return {
        "room_id": str(ban.room_id),
        "user": user_payload(ban.user),
        "reason": ban.reason,
        "created_at": iso(ban.created_at),
        "expires_at": iso(ban.expires_at) if ban.expires_at else None,
    }


def mute_payload(mute: RoomMute) -> dict[str, Any]:
    return {
        "room_id": str(mute.room_id),
        "user": user_payload(mute.user),
        "created_at": iso(mute.created_at),
        "expires_at": iso(mute.expires_at) if mute.expires_at else None,
    }


def audit_payload(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": str(entry.pk),
        "action": entry.action,
        "actor": _user(entry.actor),
        "target_user": _user(entry.target_user),
        "message_id": entry.message_id or None,
        "reason": entry.reason or None,
        "data": entry.data,
        "created_at": iso(entry.created_at),
    }


def _body(request: Request) -> dict[str, Any]:
    return request.data if isinstance(request.data, dict) else {}


class RoomBansView(APIView):
    @extend_schema(operation_id="room_bans_list", responses={200: page_of(BanSerializer, "BanPage")})
    def get(self, request: Request, room_id: str) -> Response:
        return newest_first_page(
            self, request, moderation.bans_of_room(actor=request_user(request), room_id=room_id), ban_payload
        )

    @extend_schema(operation_id="room_bans_create", request=BanCreateSerializer, responses={201: BanSerializer})
    def post(self, request: Request, room_id: str) -> Response:
        actor, body = request_user(request), _body(request)
        enforce_for_user(actor.pk, "room.moderate", settings.MODERATION_RATE_LIMIT)
        ban = moderation.ban_user(
            actor=actor,
            room_id=room_id,
            user_id=body.get("user_id"),
            reason=body.get("reason", ""),
            duration_seconds=body.get("duration_seconds"),
        )
        return Response(ban_payload(ban), status=status.HTTP_201_CREATED)


class RoomBanView(APIView):
    @extend_schema(operation_id="room_bans_lift", responses={204: None})
    def delete(self, request: Request, room_id: str, user_id: str) -> Response:
        moderation.unban_user(actor=request_user(request), room_id=room_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomMutesView(APIView):
    @extend_schema(operation_id="room_mutes_list", responses={200: page_of(MuteSerializer, "MutePage")})
    def get(self, request: Request, room_id: str) -> Response:
        mutes = moderation.mutes_of_room(actor=request_user(request), room_id=room_id)
        return newest_first_page(self, request, mutes, mute_payload)

    @extend_schema(operation_id="room_mutes_create", request=MuteCreateSerializer, responses={201: MuteSerializer})
    def post(self, request: Request, room_id: str) -> Response:
        actor, body = request_user(request), _body(request)
        enforce_for_user(actor.pk, "room.moderate", settings.MODERATION_RATE_LIMIT)
        mute = moderation.mute_user(
            actor=actor, room_id=room_id, user_id=body.get("user_id"), duration_seconds=body.get("duration_seconds")
        )
        return Response(mute_payload(mute), status=status.HTTP_201_CREATED)


class RoomMuteView(APIView):
    @extend_schema(operation_id="room_mutes_lift", responses={204: None})
    def delete(self, request: Request, room_id: str, user_id: str) -> Response:
        moderation.unmute_user(actor=request_user(request), room_id=room_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomAuditView(APIView):
    @extend_schema(operation_id="room_audit", responses={200: page_of(AuditEntrySerializer, "AuditPage")})
    def get(self, request: Request, room_id: str) -> Response:
        entries = moderation.audit_of_room(actor=request_user(request), room_id=room_id)
        return newest_first_page(self, request, entries, audit_payload)


class DeactivateUserView(APIView):
    @extend_schema(operation_id="admin_user_deactivate", request=None, responses={204: None})
    def post(self, request: Request, user_id: str) -> Response:
        moderation.deactivate_user(actor=request_user(request), user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
