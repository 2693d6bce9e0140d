"""REST side of real time: who is online in a room now (how clients of big rooms, which get no
pushed presence, learn it)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User, request_user
from accounts.serializers import UserSerializer, user_payload
from core.schema import page_of
from realtime import presence
from rooms.models import Membership
from rooms.selectors import room_require_member


class RoomPresenceView(APIView):
    @extend_schema(responses={200: page_of(UserSerializer, "UserPage")})
    def get(self, request: Request, room_id: str) -> Response:
        membership = room_require_member(request_user(request), room_id)
        members = list(Membership.objects.filter(room_id=membership.room_id).values_list("user_id", flat=True))
        online = presence.online_user_ids(membership.room_id, members)
        users = User.objects.filter(pk__in=online).order_by("username")
        return Response({"results": [user_payload(u) for u in users], "next": None})
