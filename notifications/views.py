from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import request_user
from accounts.serializers import UserSerializer, user_payload
from core.errors import InvalidInput
from core.pagination import ResultsCursorPagination
from core.schema import page_of
from core.times import iso
from notifications import push, services
from notifications.models import Notification
from rooms.models import Membership


class NotificationSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.ChoiceField(choices=["mention", "reply", "invite", "dm", "message"])
    room_id = serializers.CharField()
    message_id = serializers.CharField(required=False)
    actor_id = serializers.CharField(allow_null=True)
    actor = UserSerializer(allow_null=True, help_text="Who mentioned, replied or added you (null: account gone).")
    excerpt = serializers.CharField(help_text="The start of the message when the notice was made ('' for invites).")
    created_at = serializers.DateTimeField()
    read = serializers.BooleanField()


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.CharField(), required=False)
    all = serializers.BooleanField(required=False)


def notification_payload(notice: Notification) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(notice.pk),
        "type": notice.type,
        "room_id": str(notice.room_id),
        "actor_id": str(notice.actor_id) if notice.actor_id is not None else None,
        "actor": user_payload(notice.actor) if notice.actor is not None else None,
        "excerpt": notice.excerpt,
        "created_at": iso(notice.created_at),
        "read": notice.read,
    }
    if notice.message_id:
        payload["message_id"] = notice.message_id
    return payload


class NotificationPagination(ResultsCursorPagination):
    ordering = ("-created_at", "-id")


class NotificationListView(APIView):
    @extend_schema(responses={200: page_of(NotificationSerializer, "NotificationPage")})
    def get(self, request: Request) -> Response:
        paginator = NotificationPagination()
        user = request_user(request)
        # Only rooms the caller is still in: a notice must not keep showing a room one has left.
        notices = Notification.objects.select_related("actor").filter(
            user_id=user.pk, room_id__in=Membership.objects.filter(user_id=user.pk).values("room_id")
        )
        if request.query_params.get("unread") in ("1", "true"):
            notices = notices.filter(read=False)
        page = paginator.paginate_queryset(notices, request, view=self) or []
        return paginator.get_paginated_response([notification_payload(n) for n in page])


class NotificationReadView(APIView):
    """`POST /api/notifications/read` `{"ids": [...]}` or `{"all": true}` -> `{"updated": n}`."""

    @extend_schema(request=MarkReadSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidInput("The body must be a JSON object.", code="malformed_request")
        updated = services.mark_read(
            user=request_user(request), ids=request.data.get("ids"), everything=request.data.get("all", False)
        )
        return Response({"updated": updated})


class PushKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="The VAPID public key (applicationServerKey), URL-safe base64.")


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField()
    auth = serializers.CharField()


class PushSubscriptionSerializer(serializers.Serializer):
    endpoint = serializers.URLField(help_text="https on a public address (PUSH_ALLOW_INSECURE_ENDPOINTS: http too).")
    keys = PushKeysSerializer()


class PushEndpointSerializer(serializers.Serializer):
    endpoint = serializers.CharField()


class PushKeyView(APIView):
    """`GET /api/push/key`: what browsers subscribe with (503 `push_unavailable` without a VAPID key)."""

    @extend_schema(operation_id="push_key", responses={200: PushKeySerializer})
    def get(self, request: Request) -> Response:
        return Response({"public_key": push.public_key()})


class PushSubscriptionsView(APIView):
    """`/api/push/subscriptions`: this browser's Web Push subscription, stored or forgotten."""

    @extend_schema(operation_id="push_subscribe", request=PushSubscriptionSerializer, responses={201: None})
    def post(self, request: Request) -> Response:
        push.vapid()  # no key, no push: say so now rather than store what can never be used
        push.subscribe(user=request_user(request), data=request.data)
        return Response(status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="push_unsubscribe", request=PushEndpointSerializer, responses={204: None})
    def delete(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        push.unsubscribe(user=request_user(request), endpoint=body.get("endpoint"))
        return Response(status=status.HTTP_204_NO_CONTENT)
