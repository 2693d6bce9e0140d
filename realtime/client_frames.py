"""Client -> server frames: text in, a frame to act on or the error frame to answer with.

Pure and total: whatever a client sends (binary, oversized, malformed, too deep, lone surrogates,
the wrong shape), the answer is a dict with a string `type` or an `error` frame; never an exception
(tests/test_client_frames.py holds it to that with Hypothesis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import parsers
from realtime import frames


@dataclass(frozen=True)
class Refused:
    """The answer to a frame that cannot be acted on (a client's own `{"type": "error"}` is not one)."""

    error: frames.ErrorFrame


def parse_client_frame(text: str | None, max_bytes: int) -> dict[str, Any] | Refused:
    """The frame as a dict with a string `type`, or the error frame that refuses it."""
    if text is None:
        return Refused(frames.error("binary_not_supported", "Frames must be JSON text."))
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        return Refused(frames.error("frame_too_large", f"Frames are limited to {max_bytes} bytes."))
    try:
        frame = parsers.loads(text)
    except ValueError:  # malformed, too deep (orjson stops at 1,024 levels) or a lone surrogate
        return Refused(frames.error("invalid_json", "The frame is not valid JSON."))
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return Refused(frames.error("invalid_frame", "A frame is a JSON object with a string `type`."))
    return frame
