"""The user stream's cursor: what a client has, in a string whose size does not grow with its rooms.

A cursor is (stamp, position, versions):
- `stamp` (milliseconds): the client has every message change stamped before it, in every room;
- `versions` {room: version}: for the rooms where it has a change stamped at or after `stamp`,
  the version it has (it has every earlier change of that room, none later);
- `position`: the client has every entry of its user log (accounts/user_log.py) up to it.
docs/websocket.md gives the proof that a resume from it skips nothing and repeats nothing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

MAX_ROOMS = 10_000  # a cursor never lists more rooms than a user can be in
MAX_TEXT = 200_000
_LIMIT = 2**53  # JSON-safe integers, as everywhere in the API


class InvalidCursor(ValueError):
    pass


@dataclass
class Cursor:
    stamp: int
    position: int
    versions: dict[int, int] = field(default_factory=dict)

    def encode(self) -> str:
        rooms = ",".join(f"{room:x}:{version:x}" for room, version in sorted(self.versions.items()))
        raw = f"1.{self.stamp:x}.{self.position:x}.{rooms}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _number(text: str) -> int:
    if not text or len(text) > 14 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidCursor("not a cursor")
    value = int(text, 16)
    if value >= _LIMIT:
        raise InvalidCursor("not a cursor")
    return value


def decode(text: str) -> Cursor:
    """The cursor `text` names, or InvalidCursor for anything the server did not make."""
    if not text or len(text) > MAX_TEXT or not text.isascii():
        raise InvalidCursor("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidCursor("not a cursor") from None
    parts = raw.split(".")
    if len(parts) != 4 or parts[0] != "1":
        raise InvalidCursor("not a cursor")
    versions: dict[int, int] = {}
    if parts[3]:
        pairs = parts[3].split(",")
        if len(pairs) > MAX_ROOMS:
            raise InvalidCursor("not a cursor")
        for pair in pairs:
            room, sep, version = pair.partition(":")
            if not sep:
                raise InvalidCursor("not a cursor")
            versions[_number(room)] = _number(version)
    return Cursor(stamp=_number(parts[1]), position=_number(parts[2]), versions=versions)
