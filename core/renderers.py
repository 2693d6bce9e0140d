"""JSON responses through orjson: the hot read paths (history, search) spend less time encoding."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()


class FastJSONRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        # Lazy translation strings, Decimals and the like: DRF's own encoder decides.
        return orjson.dumps(data, default=_fallback.default)
