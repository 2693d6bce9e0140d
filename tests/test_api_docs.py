"""The API's own documentation and the answers made outside Django:

- `/api/docs/` (Swagger UI) loads nothing from another host: its scripts, styles and icon are our
  static files (drf_spectacular_sidecar), and they answer; `OPTIONS /api/docs/` is no 500.
- The schema's path parameters are named for what they are and say it (no `ident`), and it
  documents the bearer authentication that the operations use.
- The raw ASGI answers (body limits, tus PATCH, the oversized file upload) carry X-Request-ID, the
  caller's when it is sane, decided as Django's middleware decides it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from core.schema import PATH_PARAMETERS
from tests.asgi_call import call_asgi

SANE_ID = "docs-request-1"
MINTED = re.compile(r"^[0-9a-f]{32}$")


class _Links(HTMLParser):
    """Every URL an HTML page makes the browser load: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value is not None]


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else bytes(response.content)


@pytest.fixture
def docs_page() -> str:
    response = Client().get("/api/docs/")
    assert response.status_code == 200, response
    assert response["Content-Type"].startswith("text/html")
    return _body(response).decode()


# --- /api/docs/ -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_docs_page_loads_nothing_from_another_host(docs_page: str) -> None:
    assert "cdn" not in docs_page.lower()
    assert not re.search(r"https?://", docs_page), "an absolute URL in the page"
    assert not re.search(r"""["'(=]\s*//""", docs_page), "a protocol-relative (other host) URL in the page"
    links = _Links()
    links.feed(docs_page)
    assert links.urls, "the page loads no script, style or icon at all"
    for url in links.urls:
        assert url.startswith("/static/"), url  # our own static files, same origin


@pytest.mark.django_db
def test_docs_assets_answer(docs_page: str) -> None:
    links = _Links()
    links.feed(docs_page)
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    assert {url.rsplit(".", 1)[-1] for url in links.urls} >= {"js", "css"}, links.urls
    client = Client()
    for url in links.urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert kinds[url[url.rindex(".") :]] in response["Content-Type"], (url, response["Content-Type"])
        assert len(_body(response)) > 0, url
    # and the schema the page asks for, from its own origin too
    assert 'url: "/api/schema/"' in docs_page
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_options_on_the_docs_page_is_no_error() -> None:
    response = Client().options("/api/docs/", headers={"X-Request-ID": SANE_ID})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"]  # DRF's OPTIONS metadata, as the other API views answer it
    assert response["X-Request-ID"] == SANE_ID


@pytest.mark.django_db
def test_other_methods_on_the_docs_page_are_json_errors() -> None:
    response = Client().post("/api/docs/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- the schema -----------------------------------------------------------------------------------


@pytest.fixture
def schema() -> dict[str, Any]:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return dict(response.json())


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def _path_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [parameter for parameter in operation.get("parameters", []) if parameter["in"] == "path"]


@pytest.mark.django_db
def test_the_message_url_names_a_room_id_or_a_message_id_by_method(schema: dict[str, Any]) -> None:
    """`/api/messages/{id}`: GET and POST take a room id, PUT and DELETE a message id (one URL)."""
    by_room = schema["paths"]["/api/messages/{room_id}/"]
    by_message = schema["paths"]["/api/messages/{message_id}/"]
    assert {"get", "post"} <= set(by_room) and not {"put", "delete"} & set(by_room)
    assert {"put", "delete"} <= set(by_message) and not {"get", "post"} & set(by_message)
    for item, name, description in ((by_room, "room_id", "A room id"), (by_message, "message_id", "A message id")):
        for method in ("get", "post") if name == "room_id" else ("put", "delete"):
            (parameter,) = _path_parameters(item[method])
            assert parameter["name"] == name and parameter["required"] is True
            assert parameter["schema"]["type"] == "string"  # ids are strings, in the payloads too
            assert parameter["description"] == description
    # The operation ids the clients are generated with did not change.
    assert by_room["get"]["operationId"] == "messages_retrieve" and by_room["post"]["operationId"] == "messages_create"
    assert by_message["put"]["operationId"] == "messages_update"
    assert by_message["delete"]["operationId"] == "messages_destroy"


@pytest.mark.django_db
def test_every_path_parameter_is_named_and_described(schema: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path, method, operation in _operations(schema):
        in_template = set(re.findall(r"{([^}]+)}", path))
        parameters = _path_parameters(operation)
        assert {p["name"] for p in parameters} == in_template, (method, path)
        for parameter in parameters:
            name = parameter["name"]
            assert name != "ident" and name in PATH_PARAMETERS, (method, path, name)
            assert parameter["description"] == PATH_PARAMETERS[name], (method, path, name)
            assert parameter["schema"]["type"] == "string", (method, path, name)
            seen.add(name)
    assert seen >= {"room_id", "message_id", "user_id", "upload_id"}


@pytest.mark.django_db
def test_the_schema_documents_bearer_authentication(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    bearer = {name for name, scheme in schemes.items() if scheme.get("type") == "http" and scheme["scheme"] == "bearer"}
    assert bearer, schemes
    for path, method, operation in _operations(schema):
        requirements = operation.get("security", [])
        open_to_all = {} in requirements  # register, login, refresh, logout
        assert open_to_all or bearer & {name for r in requirements for name in r}, (method, path, requirements)
    assert bearer & set(schema["paths"]["/api/messages/{room_id}/"]["get"]["security"][0])
    assert bearer & set(schema["paths"]["/api/uploads/{upload_id}/"]["patch"]["security"][0])


# --- X-Request-ID on the raw ASGI answers ---------------------------------------------------------


def send_raw(
    method: str, path: str, headers: dict[str, str], body: bytes = b"", *, more_body: bool = False
) -> tuple[int, dict[str, str], bytes]:
    return call_asgi(method, path, {"host": "testserver", **headers}, body, more_body=more_body)


def _too_large_login(request_id: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", "content-length": str(2**31)}
    if request_id is not None:
        headers["x-request-id"] = request_id
    return send_raw("POST", "/api/auth/login", headers)


def test_the_body_limit_413_carries_the_callers_request_id() -> None:
    status, headers, content = _too_large_login(SANE_ID)
    assert status == 413 and b"body_too_large" in content
    assert headers["x-request-id"] == SANE_ID


def test_the_body_limit_413_mints_a_request_id() -> None:
    status, headers, _ = _too_large_login(None)
    assert status == 413
    assert MINTED.match(headers["x-request-id"]), headers


def test_a_streamed_body_past_the_limit_carries_the_request_id() -> None:
    chunk = b"x" * 65536  # no Content-Length: refused once the chunks pass the limit
    status, headers, content = send_raw(
        "POST", "/api/auth/login", {"content-type": "application/json", "x-request-id": SANE_ID}, chunk, more_body=True
    )
    assert status == 413 and b"body_too_large" in content
    assert headers["x-request-id"] == SANE_ID


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "a.b:c_d-e", "x" * 128, "x" * 129, "bad id", "", "ümlaut", "semi;colon"],
)
def test_raw_answers_decide_the_request_id_as_django_does(incoming: str) -> None:
    """The same rule on both sides (core.request_id): echoed by both, or by neither."""
    django_id = Client().get("/health", headers={"X-Request-ID": incoming})["X-Request-ID"]
    _, headers, _ = _too_large_login(incoming)
    raw_id = headers["x-request-id"]
    assert (django_id == incoming) == (raw_id == incoming), (django_id, raw_id)
    assert raw_id == incoming or MINTED.match(raw_id)


TUS_PATCH = {
    "tus-resumable": "1.0.0",
    "content-type": "application/offset+octet-stream",
    "upload-offset": "0",
    "content-length": "4",
}


@pytest.mark.django_db
def test_tus_patch_refusals_carry_the_request_id() -> None:
    path = "/api/uploads/00000000-0000-0000-0000-000000000000"
    # 401: nobody signed in (the 404s of someone else's upload: tests/test_authz_matrix.py)
    status, headers, content = send_raw("PATCH", path, {**TUS_PATCH, "x-request-id": SANE_ID}, b"data")
    assert status == 401 and b"not_authenticated" in content
    assert headers["x-request-id"] == SANE_ID
    # 412: no Tus-Resumable, refused before anything else
    no_tus = {k: v for k, v in TUS_PATCH.items() if k != "tus-resumable"}
    status, headers, _ = send_raw("PATCH", path, no_tus, b"data")
    assert status == 412
    assert MINTED.match(headers["x-request-id"]), headers


def test_an_oversized_file_upload_413_carries_the_request_id() -> None:
    headers = {
        "content-type": "multipart/form-data; boundary=x",
        "content-length": str(settings.UPLOAD_MAX_SIZE + 1),
        "x-request-id": SANE_ID,
    }
    status, answered, content = send_raw("POST", "/api/rooms/1/files", headers)
    assert status == 413 and b"file_too_large" in content
    assert answered["x-request-id"] == SANE_ID
