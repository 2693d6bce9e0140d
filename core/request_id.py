"""The id of a request, sent back as `X-Request-ID` on every response: the caller's own when it
sent a sane one, else a new one. Django's answers get it from chatproject.middleware, the raw ASGI
ones (core.raw_http.send_json) from the scope; both decide it here."""

from __future__ import annotations

import re
import uuid

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID (`incoming`, or None when it sent none) if it is sane, else a new one."""
    return incoming if incoming is not None and _VALID.match(incoming) else uuid.uuid4().hex
