from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import request_user
from core.pagination import ResultsCursorPagination
from core.ratelimit import enforce_for_user
from core.schema import page_of
from rooms import selectors, services
from rooms.invites import invite_accept, invite_create, invite_payload, invite_preview, invite_revoke, invites_of_room
from rooms.payloads import member_payload, room_payload, room_payloads, settings_payload
from rooms.serializers import (
    DirectRoomSerializer,
    InviteCreateSerializer,
    InvitePreviewSerializer,
    InviteSerializer,
    MemberAddSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    ReadMarkerSerializer,
    RoomCreateSerializer,
    RoomDirectorySerializer,
    RoomListSerializer,
    RoomSerializer,
    RoomSettingsSerializer,
    RoomUpdateSerializer,
)


class RoomListCreateView(APIView):
    @extend_schema(operation_id="rooms_list", responses={200: RoomListSerializer})
    def get(self, request: Request) -> Response:
        enforce_for_user(request_user(request).pk, "room.list", settings.ROOM_LIST_RATE_LIMIT)
        memberships = list(selectors.rooms_of_user(request_user(request)))
        return Response({"results": room_payloads((m.room, m) for m in memberships), "next": None})

    @extend_schema(request=RoomCreateSerializer, responses={201: RoomSerializer})
    def post(self, request: Request) -> Response:
        data = RoomCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.room_create(creator=request_user(request), **data.validated_data)
        return Response(room_payload(membership.room, membership), status=status.HTTP_201_CREATED)


class DirectRoomView(APIView):
    """`POST /api/dms` `{"user_ids": [...]}`: the direct room of the caller and 1 to 8 others."""

    @extend_schema(request=DirectRoomSerializer, responses={201: RoomSerializer, 200: RoomSerializer})
    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        membership, created = services.direct_room_open(actor=request_user(request), user_ids=body.get("user_ids"))
        return Response(
            room_payload(membership.room, membership), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class DirectoryPagination(ResultsCursorPagination):
    page_size = 20
    max_page_size = 100
    ordering = ("-member_count", "id")


class RoomDirectoryView(APIView):
    """`GET /api/rooms/directory?q=`: public rooms, members or not, most members first."""

    @extend_schema(
        operation_id="rooms_directory",
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Part of a room's name or description."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1 to 100 (default 20)."),
        ],
        responses={200: RoomDirectorySerializer},
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        enforce_for_user(user.pk, "room.directory", settings.ROOM_LIST_RATE_LIMIT)
        paginator = DirectoryPagination()
        page = paginator.paginate_queryset(selectors.room_directory(request.query_params.get("q")), request, view=self)
        rooms = list(page or [])
        mine = selectors.joined_rooms(user, [room.pk for room in rooms])
        results = room_payloads((room, mine.get(room.pk)) for room in rooms)
        for result in results:
            result["joined"] = int(result["id"]) in mine
        return paginator.get_paginated_response(results)


class RoomDetailView(APIView):
    @extend_schema(responses={200: RoomSerializer})
    def get(self, request: Request, room_id: str) -> Response:
        room, membership = selectors.room_get_visible(request_user(request), room_id)
        return Response(room_payload(room, membership))

    @extend_schema(request=RoomUpdateSerializer, responses={200: RoomSerializer})
    def patch(self, request: Request, room_id: str) -> Response:
        data = RoomUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.room_update(actor=request_user(request), room_id=room_id, **data.validated_data)
        return Response(room_payload(membership.room, membership))


class RoomJoinView(APIView):
    @extend_schema(request=None, responses={200: RoomSerializer})
    def post(self, request: Request, room_id: str) -> Response:
        membership = services.room_join(user=request_user(request), room_id=room_id)
        return Response(room_payload(membership.room, membership))


class MembersPagination(ResultsCursorPagination):
    ordering = ("joined_at", "id")


class RoomMembersView(APIView):
    @extend_schema(responses={200: page_of(MemberSerializer, "MemberPage")})
    def get(self, request: Request, room_id: str) -> Response:
        membership = selectors.room_require_member(request_user(request), room_id)
        paginator = MembersPagination()
        page = paginator.paginate_queryset(selectors.members_of_room(membership.room_id), request, view=self)
        return paginator.get_paginated_response([member_payload(m) for m in page or []])

    @extend_schema(request=MemberAddSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, room_id: str) -> Response:
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        added = services.member_add(actor=request_user(request), room_id=room_id, **data.validated_data)
        return Response(member_payload(added), status=status.HTTP_201_CREATED)


class RoomMemberView(APIView):
    @extend_schema(request=MemberRoleSerializer, responses={200: MemberSerializer})
    def patch(self, request: Request, room_id: str, user_id: str) -> Response:
        data = MemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = services.member_set_role(
            actor=request_user(request), room_id=room_id, user_id=user_id, role=data.validated_data["role"]
        )
        return Response(member_payload(changed))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, room_id: str, user_id: str) -> Response:
        services.member_remove(actor=request_user(request), room_id=room_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomReadView(APIView):
    @extend_schema(request=ReadMarkerSerializer, responses={204: None})
    def post(self, request: Request, room_id: str) -> Response:
        data = ReadMarkerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.mark_read(user=request_user(request), room_id=room_id, seq=data.validated_data["seq"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomSettingsView(APIView):
    """`/api/rooms/{room_id}/settings`: the caller's notification level and mute for the room."""

    @extend_schema(operation_id="room_settings", responses={200: RoomSettingsSerializer})
    def get(self, request: Request, room_id: str) -> Response:
        return Response(settings_payload(selectors.room_require_member(request_user(request), room_id)))

    @extend_schema(
        operation_id="room_settings_update", request=RoomSettingsSerializer, responses={200: RoomSettingsSerializer}
    )
    def patch(self, request: Request, room_id: str) -> Response:
        data = RoomSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.room_settings_update(
            user=request_user(request), room_id=room_id, changes=dict(data.validated_data)
        )
        return Response(settings_payload(membership))


class InvitesPagination(ResultsCursorPagination):
    page_size = 50
    max_page_size = 200
    ordering = ("-created_at", "-id")


class RoomInvitesView(APIView):
    """`/api/rooms/{room_id}/invites`: owners and admins make and list invite links."""

    @extend_schema(operation_id="room_invites_list", responses={200: page_of(InviteSerializer, "InvitePage")})
    def get(self, request: Request, room_id: str) -> Response:
        paginator = InvitesPagination()
        invites = invites_of_room(actor=request_user(request), room_id=room_id)
        page = paginator.paginate_queryset(invites, request, view=self) or []
        site = request.build_absolute_uri("/")
        return paginator.get_paginated_response([invite_payload(i, site) for i in page])

    @extend_schema(
        operation_id="room_invites_create", request=InviteCreateSerializer, responses={201: InviteSerializer}
    )
    def post(self, request: Request, room_id: str) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        invite = invite_create(
            actor=request_user(request),
            room_id=room_id,
            max_uses=body.get("max_uses"),
            expires_in=body.get("expires_in"),
        )
        payload = invite_payload(invite, request.build_absolute_uri("/"))
        return Response(payload, status=status.HTTP_201_CREATED)


class RoomInviteView(APIView):
    @extend_schema(operation_id="room_invite_revoke", responses={204: None})
    def delete(self, request: Request, room_id: str, code: str) -> Response:
        invite_revoke(actor=request_user(request), room_id=room_id, code=code)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteView(APIView):
    """`GET /api/invites/{code}`: the room an invite leads to, for anyone signed in who holds it."""

    @extend_schema(operation_id="invite_preview", responses={200: InvitePreviewSerializer})
    def get(self, request: Request, code: str) -> Response:
        return Response(invite_preview(user=request_user(request), code=code))


class InviteAcceptView(APIView):
    @extend_schema(operation_id="invite_accept", request=None, responses={200: RoomSerializer})
    def post(self, request: Request, code: str) -> Response:
        membership = invite_accept(user=request_user(request), code=code)
        return Response(room_payload(membership.room, membership))
