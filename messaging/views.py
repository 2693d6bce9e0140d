from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import request_user
from accounts.serializers import UserSerializer
from core.errors import InvalidInput
from core.pagination import newest_first_page
from core.schema import page_of
from messaging import reports, room_search, selectors, services
from messaging.models import ReportStatus
from messaging.serializers import (
    MessageEditSerializer,
    MessagePageSerializer,
    MessagePostSerializer,
    MessageSerializer,
    ReactionRequestSerializer,
    RevisionSerializer,
)


def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; a list, a string or a number is a 400, not a crash."""
    data = request.data
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.", code="malformed_request")
    return data


def _require(data: dict[str, Any], *names: str) -> None:
    missing = {name: ["This field is required."] for name in names if name not in data}
    if missing:
        raise InvalidInput("Required fields are missing.", fields=missing)


def page_response(request: Request, page: selectors.Page) -> Response:
    return list_response(request, page.results, page.next_params)


def list_response(request: Request, results: Sequence[Any], next_params: dict[str, Any] | None) -> Response:
    """The contract's list shape, `next` the URL of the following page (None on the last)."""
    next_url = None
    if next_params is not None:
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode(next_params)}")
    return Response({"results": results, "next": next_url})


HISTORY_PARAMETERS = [
    OpenApiParameter("before", OpenApiTypes.INT, description="Only messages with a smaller seq."),
    OpenApiParameter("after", OpenApiTypes.INT, description="Only messages with a larger seq."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1 to 200 (default 50)."),
    OpenApiParameter(
        "around",
        OpenApiTypes.STR,
        description="A message id: the page with that message (a reply: its thread) in the middle.",
    ),
]
SEARCH_PARAMETERS = [
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description='Search text: words, parts of words, "phrases", -exclusions and the operators from:, in:, '
        "has:file, has:link, is:thread, before:YYYY-MM-DD, after:YYYY-MM-DD. Results newest first.",
    ),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous page's `next`."),
    HISTORY_PARAMETERS[2],
]


class RoomMessagesView(APIView):
    """`/api/messages/{id}`: GET and POST take a room id, PUT and DELETE a message id (docs/api.md)."""

    # One URL kwarg, two things: the schema names it for what each method takes (core.schema).
    path_parameter_names = {"ident": {"GET": "room_id", "POST": "room_id", "PUT": "message_id", "DELETE": "message_id"}}

    @extend_schema(parameters=HISTORY_PARAMETERS + SEARCH_PARAMETERS[:2], responses={200: MessagePageSerializer})
    def get(self, request: Request, ident: str) -> Response:
        params = request.query_params
        if "q" in params:
            found = room_search.search_room(
                user=request_user(request),
                q=params.get("q"),
                room_id=ident,
                cursor=params.get("cursor"),
                limit=params.get("limit"),
            )
            return page_response(request, found)
        page = selectors.room_history(
            user=request_user(request),
            room_id=ident,
            before=params.get("before"),
            after=params.get("after"),
            limit=params.get("limit"),
            around=params.get("around"),
        )
        return page_response(request, page)

    @extend_schema(request=MessagePostSerializer, responses={201: MessageSerializer, 200: MessageSerializer})
    def post(self, request: Request, ident: str) -> Response:
        data = _json_object(request)
        if not data.get("attachments"):
            _require(data, "body")
        result = services.message_post(
            user=request_user(request),
            room_id=ident,
            body=data.get("body"),
            parent_id=data.get("parent_id"),
            client_id=data.get("client_id"),
            attachments=data.get("attachments"),
        )
        return Response(result.message, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @extend_schema(request=MessageEditSerializer, responses={200: MessageSerializer})
    def put(self, request: Request, ident: str) -> Response:
        data = _json_object(request)
        _require(data, "body")
        return Response(services.message_edit(user=request_user(request), message_id=ident, body=data["body"]))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, ident: str) -> Response:
        services.message_delete(user=request_user(request), message_id=ident)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageReactView(APIView):
    @extend_schema(request=ReactionRequestSerializer, responses={200: MessageSerializer})
    def post(self, request: Request, message_id: str) -> Response:
        return self._react(request, message_id, present=True)

    @extend_schema(request=ReactionRequestSerializer, responses={200: MessageSerializer})
    def delete(self, request: Request, message_id: str) -> Response:
        return self._react(request, message_id, present=False)

    def _react(self, request: Request, message_id: str, *, present: bool) -> Response:
        data = _json_object(request)
        if "emoji" not in data and "emoji" in request.query_params:  # DELETE bodies get dropped by some proxies
            data = {"emoji": request.query_params["emoji"]}
        _require(data, "emoji")
        message = services.message_react(
            user=request_user(request), message_id=message_id, emoji=data["emoji"], present=present
        )
        return Response(message)


class MessageRevisionsView(APIView):
    """`GET /api/messages/{id}/history`: the message's earlier bodies (its edit history)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("after", OpenApiTypes.STR, description="From the previous page's `next`."),
            HISTORY_PARAMETERS[2],
        ],
        responses={200: page_of(RevisionSerializer, "RevisionPage")},
    )
    def get(self, request: Request, message_id: str) -> Response:
        params = request.query_params
        revisions, next_params = selectors.message_revisions(
            user=request_user(request), message_id=message_id, after=params.get("after"), limit=params.get("limit")
        )
        return list_response(request, revisions, next_params)


class MessageThreadView(APIView):
    @extend_schema(parameters=[HISTORY_PARAMETERS[1], HISTORY_PARAMETERS[2]], responses={200: MessagePageSerializer})
    def get(self, request: Request, message_id: str) -> Response:
        params = request.query_params
        page = selectors.thread_page(
            user=request_user(request), message_id=message_id, after=params.get("after"), limit=params.get("limit")
        )
        return page_response(request, page)


class ReportCreateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class ReportSerializer(serializers.Serializer):
    id = serializers.CharField()
    message_id = serializers.CharField()
    room_id = serializers.CharField()
    reporter = UserSerializer()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)


class ReportResolveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["dismiss", "delete_message"])


STATUS_PARAMETER = OpenApiParameter("status", str, enum=list(ReportStatus.values), required=False)


class MessageReportView(APIView):
    """`POST /api/messages/{message_id}/report`: a member tells the moderators."""

    @extend_schema(operation_id="message_report", request=ReportCreateSerializer, responses={201: ReportSerializer})
    def post(self, request: Request, message_id: str) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        report = reports.report_create(user=request_user(request), message_id=message_id, reason=body.get("reason"))
        return Response(reports.report_payload(report), status=status.HTTP_201_CREATED)


class RoomReportsView(APIView):
    """`GET /api/rooms/{room_id}/reports?status=open`: the room's review queue (moderators)."""

    @extend_schema(
        operation_id="room_reports",
        parameters=[STATUS_PARAMETER],
        responses={200: page_of(ReportSerializer, "ReportPage")},
    )
    def get(self, request: Request, room_id: str) -> Response:
        rows = reports.reports_of_room(actor=request_user(request), room_id=room_id, status=request.GET.get("status"))
        return newest_first_page(self, request, rows, reports.report_payload)


class SiteReportsView(APIView):
    """`GET /api/reports?status=open`: every room's reports (staff)."""

    @extend_schema(
        operation_id="site_reports",
        parameters=[STATUS_PARAMETER],
        responses={200: page_of(ReportSerializer, "SiteReportPage")},
    )
    def get(self, request: Request) -> Response:
        rows = reports.reports_site_wide(actor=request_user(request), status=request.GET.get("status"))
        return newest_first_page(self, request, rows, reports.report_payload)


class ReportResolveView(APIView):
    @extend_schema(operation_id="report_resolve", request=ReportResolveSerializer, responses={200: ReportSerializer})
    def post(self, request: Request, report_id: str) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        report = reports.report_resolve(actor=request_user(request), report_id=report_id, action=body.get("action"))
        return Response(reports.report_payload(report))
