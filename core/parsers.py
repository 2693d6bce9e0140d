"""JSON request bodies through orjson, which refuses what Python's json lets through to a crash.

A lone surrogate (`"\\ud800"`) parses with json into a str that no database can store (a 500
later on), and `[[[[...` 30,000 deep raises RecursionError; orjson rejects both as malformed JSON
(nesting is capped at 1,024), which the error handler answers as a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def loads(data: bytes | str) -> Any:
    """Parse JSON text; ValueError (orjson.JSONDecodeError) for anything malformed, too deep or not UTF-8."""
    return orjson.loads(data)


class StrictJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return loads(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}")
