"""One error shape for every interface: `{"code", "detail", "fields"?}` with a fitting status."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse
from django_ratelimit.exceptions import Ratelimited
from pymongo.errors import PyMongoError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.renderers import FastJSONRenderer

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal a service raises; interfaces turn it into a response or a WS error frame."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body


class InvalidInput(ApiError):
    status = 400
    code = "invalid"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class Unprocessable(ApiError):
    status = 422
    code = "unprocessable"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


# PostgreSQL, MongoDB or Redis not answering, or refusing (a conflict still there after the store's
# retries, a MongoDB without a replica set): a 503 (and `service_unavailable` on a socket), logged.
_BACKEND_DOWN = (PyMongoError, DatabaseError, RedisConnectionError, RedisTimeoutError)


def as_api_error(exc: BaseException) -> ApiError | None:
    """Map any known exception to an ApiError; None for a real bug (a 500)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Ratelimited):
        return RateLimited("Too many requests; slow down.", retry_after=60)
    if isinstance(exc, _BACKEND_DOWN):
        logger.warning("backing service unavailable: %r", exc)
        return ServiceUnavailable("A backing service is unavailable; try again shortly.")
    if isinstance(exc, Http404):
        return NotFound("Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return Forbidden("You are not allowed to do this.")
    if isinstance(exc, drf.ValidationError):
        return InvalidInput("Invalid input.", fields=_field_errors(exc.detail))
    if isinstance(exc, drf.ParseError):
        return InvalidInput(str(exc.detail), code="malformed_request")
    if isinstance(exc, drf.UnsupportedMediaType):
        return ApiError(str(exc.detail), code="unsupported_media_type", status=415)
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        if isinstance(exc.detail, dict):  # simplejwt: {"detail", "code", "messages"}
            return ApiError(
                str(exc.detail.get("detail", "")), code=str(exc.detail.get("code", "token_not_valid")), status=401
            )
        codes = exc.get_codes()
        return ApiError(str(exc.detail), code=codes if isinstance(codes, str) else "not_authenticated", status=401)
    if isinstance(exc, drf.Throttled):
        return RateLimited(str(exc.detail), retry_after=int(getattr(exc, "wait", None) or 1))
    if isinstance(exc, drf.APIException):
        codes = exc.get_codes()
        return ApiError(str(exc.detail), code=codes if isinstance(codes, str) else "error", status=exc.status_code)
    return None


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(k): [str(m) for m in (v if isinstance(v, list) else [v])] if not isinstance(v, dict) else [str(v)]
            for k, v in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {"non_field_errors": [str(detail)]}


def error_response(err: ApiError) -> Response:
    response = Response(err.payload(), status=err.status)
    if err.retry_after is not None:
        response["Retry-After"] = str(err.retry_after)
    if err.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    err = as_api_error(exc)
    # Unknown errors: DRF decides (it returns None for them -> Django's 500 handler below).
    response = drf_exception_handler(exc, context) if err is None else error_response(err)
    if response is not None:
        render_as_json(context.get("request"))
    return response


def render_as_json(request: Any) -> None:
    """An error is JSON whatever the request's Accept asked for (a browser gets no browsable page):
    the view's finalize_response renders with the request's accepted renderer, so it is set here."""
    if request is not None:
        request.accepted_renderer = FastJSONRenderer()
        request.accepted_media_type = FastJSONRenderer.media_type


def json_error(request: HttpRequest, status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(request, 404, "not_found", "Not found.")


def handler500(request: HttpRequest) -> JsonResponse:
    return json_error(request, 500, "server_error", "Internal server error.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(request, 400, "bad_request", "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(request, 403, "forbidden", "Forbidden.")
