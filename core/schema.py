"""What the OpenAPI schema (drf-spectacular) says beyond what it reads from views and serializers.

- `page_of`: the list shape every list endpoint answers, `{"results": [...], "next"}`.
- `document_errors`, a postprocessing hook: every operation lists the refusals it can answer, in
  the one error shape (`{"code", "detail", "fields"?}`), and the tus `HEAD`/`PATCH` of an upload,
  which are served outside Django's views (files/streaming.py), are described.
- `name_path_parameters`, a preprocessing hook: a URL whose one kwarg is a different thing by
  method (`/api/messages/{id}`) is documented as one path per thing, each parameter named for it.
- `describe_path_parameters`, a postprocessing hook: every path parameter says what it is
  (`PATH_PARAMETERS`).
- `JWTBearerScheme`: the bearer authentication of the API (accounts.authentication).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "description": "A machine code, e.g. `room_not_found`."},
        "detail": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}
_ERROR_TEXT = {
    "400": "Malformed or invalid input.",
    "401": "Missing, bad or expired credentials.",
    "403": "Authenticated but not allowed (or, in a public room, not a member).",
    "404": "No such thing, or one the caller may not know of.",
    "405": "Method not allowed.",
    "409": "Conflict with the current state.",
    "412": "Tus-Resumable: 1.0.0 is required.",
    "413": "Body or file too large.",
    "415": "Unsupported media type.",
    "416": "Range not satisfiable.",
    "422": "The file was refused (a polyglot, an image that does not decode or is too large).",
    "429": "Rate limited; see Retry-After.",
    "503": "A backing service is unavailable; try again shortly.",
}
# Every path parameter of the API, by name, and what it is (ids are strings, as in the payloads).
PATH_PARAMETERS = {
    "room_id": "A room id",
    "message_id": "A message id",
    "user_id": "A user id",
    "upload_id": "An upload id",
    "code": "An invite code",
    "report_id": "A report id",
}
_ALWAYS = ("400", "401", "403", "404", "405", "429", "503")
_WITH_BODY = ("409", "413", "415")
_TUS = ("409", "412", "413", "415", "422")


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """A serializer class documenting `{"results": [item ...], "next": <URL or null>}`."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "results": item(many=True),
            "next": serializers.CharField(allow_null=True, help_text="The next page's URL, or null."),
            "__module__": __name__,
        },
    )


def _error_responses(codes: tuple[str, ...]) -> dict[str, Any]:
    return {
        code: {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _tus_operations() -> dict[str, Any]:
    header = {"schema": {"type": "string", "enum": ["1.0.0"]}, "required": True}
    upload_id = {"in": "path", "name": "upload_id", "required": True, "schema": {"type": "string", "format": "uuid"}}
    offset = {"schema": {"type": "integer", "minimum": 0}, "description": "Bytes received so far."}
    security: list[dict[str, list[str]]] = [{"jwtAuth": []}, {"cookieAuth": []}]
    return {
        "head": {
            "operationId": "uploads_offset",
            "summary": "tus: how many bytes of the upload the server holds (the uploader only).",
            "tags": ["uploads"],
            "parameters": [upload_id, {"in": "header", "name": "Tus-Resumable", **header}],
            "security": security,
            "responses": {
                "200": {"description": "Offset and length.", "headers": {"Upload-Offset": offset}},
                **_error_responses((*_ALWAYS, "412")),
            },
        },
        "patch": {
            "operationId": "uploads_append",
            "summary": "tus: append bytes at Upload-Offset (the uploader only); written as they arrive.",
            "tags": ["uploads"],
            "parameters": [
                upload_id,
                {"in": "header", "name": "Tus-Resumable", **header},
                {
                    "in": "header",
                    "name": "Upload-Offset",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "security": security,
            "responses": {
                "204": {"description": "Appended.", "headers": {"Upload-Offset": offset}},
                **_error_responses((*_ALWAYS, *_TUS)),
            },
        },
    }


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if path.startswith("/api/uploads/{upload_id}"):
            operations.update(_tus_operations())
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = list(_ALWAYS)
            if "requestBody" in operation or method in ("post", "put", "patch", "delete"):
                codes += _WITH_BODY
            if "/uploads" in path or path.endswith("/files/"):
                codes += _TUS
            if path.startswith("/api/files/"):
                codes.append("416")
            for code, response in _error_responses(tuple(codes)).items():
                operation["responses"].setdefault(code, response)
    return result


Endpoint = tuple[str, str, str, Callable[..., Any]]  # path, path regex, method, view callback


def name_path_parameters(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Rename a URL kwarg per method where the view says what it is for each method: its
    `path_parameter_names`, `{kwarg: {method: name}}` (RoomMessagesView: `ident` is a room id
    for GET and POST, a message id for PUT and DELETE). The URL itself is unchanged; the schema
    gets one path per name (`/api/messages/{room_id}/`, `/api/messages/{message_id}/`)."""
    named = []
    for path, path_regex, method, callback in endpoints:
        names: dict[str, dict[str, str]] = getattr(getattr(callback, "cls", None), "path_parameter_names", {})
        for kwarg, by_method in names.items():
            if method in by_method:
                path = path.replace(f"{{{kwarg}}}", f"{{{by_method[method]}}}")
                path_regex = path_regex.replace(f"(?P<{kwarg}>", f"(?P<{by_method[method]}>")
        named.append((path, path_regex, method, callback))
    return named


def describe_path_parameters(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Each path parameter without a description gets its name's from `PATH_PARAMETERS`."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in PATH_PARAMETERS:
                    parameter.setdefault("description", PATH_PARAMETERS[parameter["name"]])
    return result


class JWTBearerScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.CachedJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
