"""One HTTP request through chatproject.asgi.application itself, as an ASGI server calls it: the
paths answered before Django (tus PATCH, early 413s) are seen as clients see them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any


def call_asgi(
    method: str, path: str, headers: Mapping[str, str], body: bytes = b"", *, more_body: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """The status, headers (lower-cased) and body; `more_body`: the body goes on, chunk after chunk."""
    from chatproject.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": more_body}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        if more_body:
            return {"type": "http.request", "body": body, "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content
