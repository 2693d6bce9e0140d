from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from accounts import blocking, selectors, services
from accounts.authentication import forget_user
from accounts.models import request_user
from accounts.serializers import (
    AuthResultSerializer,
    LoginSerializer,
    MeSerializer,
    MeUpdateSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    UserSerializer,
    WsTicketSerializer,
    user_payload,
)
from accounts.ws_auth import TICKET_TTL_SECONDS, session_end, ticket_issue
from core.pagination import ResultsCursorPagination
from core.ratelimit import enforce, enforce_for_user
from core.schema import page_of


def _auth_result(user: object, pair: services.TokenPair) -> dict[str, object]:
    return {"user": MeSerializer(user).data, "access": pair.access, "refresh": pair.refresh}


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(request=RegisterSerializer, responses={201: AuthResultSerializer})
    def post(self, request: Request) -> Response:
        enforce(request, "auth.register", settings.REGISTER_RATE_LIMIT, key="ip")
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(_auth_result(user, services.tokens_for(user)), status=status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(request=LoginSerializer, responses={200: AuthResultSerializer})
    def post(self, request: Request) -> Response:
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_login(request, **data.validated_data)
        return Response(_auth_result(user, services.tokens_for(user)))


class RefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.token_refresh(data.validated_data["refresh"])
        return Response({"access": pair.access, "refresh": pair.refresh})


class LogoutView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.token_revoke(data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request_user(request)).data)

    @extend_schema(request=MeUpdateSerializer, responses={200: MeSerializer})
    def patch(self, request: Request) -> Response:
        data = MeUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.profile_update(request_user(request), dict(data.validated_data))
        forget_user(user.pk)  # this process's next request reads the new row
        return Response(MeSerializer(user).data)


class PasswordView(APIView):
    """`POST /api/auth/password`: every token issued before stops working, every socket closes."""

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_change(
            request,
            request_user(request),
            old_password=data.validated_data["old_password"],
            new_password=data.validated_data["new_password"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PeoplePagination(ResultsCursorPagination):
    page_size = 20
    max_page_size = 20
    ordering = ("username_key", "id")


class PeopleView(APIView):
    """`GET /api/users?q=<prefix>`: active people by the start of their username or display name."""

    @extend_schema(
        operation_id="users_list",
        parameters=[OpenApiParameter("q", OpenApiTypes.STR, description="The start of a username or display name.")],
        responses={200: page_of(UserSerializer, "PeoplePage")},
    )
    def get(self, request: Request) -> Response:
        enforce_for_user(request_user(request).pk, "people.search", settings.PEOPLE_SEARCH_RATE_LIMIT)
        people = selectors.people_matching(request.query_params.get("q"))
        paginator = PeoplePagination()
        page = paginator.paginate_queryset(people, request, view=self) or []
        return paginator.get_paginated_response([user_payload(user) for user in page])


class PersonView(APIView):
    @extend_schema(operation_id="users_retrieve", responses={200: UserSerializer})
    def get(self, request: Request, user_id: str) -> Response:
        return Response(user_payload(selectors.person(user_id)))


class BlockView(APIView):
    """`/api/users/{user_id}/block`: the caller blocks or unblocks someone (both idempotent)."""

    @extend_schema(operation_id="users_block", request=None, responses={204: None})
    def post(self, request: Request, user_id: str) -> Response:
        enforce_for_user(request_user(request).pk, "auth.block", settings.BLOCK_RATE_LIMIT)
        blocking.block(actor=request_user(request), user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="users_unblock", responses={204: None})
    def delete(self, request: Request, user_id: str) -> Response:
        blocking.unblock(actor=request_user(request), user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BlocksView(APIView):
    """`GET /api/auth/blocks`: the people the caller blocked."""

    @extend_schema(operation_id="auth_blocks_list", responses={200: page_of(UserSerializer, "BlockedUserPage")})
    def get(self, request: Request) -> Response:
        paginator = ResultsCursorPagination()
        paginator.ordering = ("username", "id")
        page = paginator.paginate_queryset(blocking.blocked_by(request_user(request)), request, view=self) or []
        return paginator.get_paginated_response([user_payload(u) for u in page])


class WsTicketView(APIView):
    """A single-use ticket for `?ticket=` on the WebSocket URL (valid 60 s)."""

    @extend_schema(request=None, responses={201: WsTicketSerializer})
    def post(self, request: Request) -> Response:
        enforce_for_user(request_user(request).pk, "auth.ws_ticket", settings.WS_TICKET_RATE_LIMIT)
        expires_at = None
        if isinstance(request.auth, AccessToken):
            # A socket opened with the ticket lives no longer than the token that asked for it.
            expires_at = datetime.fromtimestamp(int(request.auth["exp"]), UTC)
        elif request.session.session_key:
            # Asked for with the session cookie: it lives no longer than that session.
            expires_at = session_end(request.session)
        ticket = ticket_issue(request_user(request), expires_at)
        return Response({"ticket": ticket, "expires_in": TICKET_TTL_SECONDS}, status=status.HTTP_201_CREATED)
