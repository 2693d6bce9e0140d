"""Checks a value against the TypedDicts of realtime/frames.py, as the server's frames must match.

Every frame the test suite receives over a socket goes through `check_server_frame` (tests/live.py's
`recv_json`), the way REST answers are held to the OpenAPI schema. Strict: no unknown or missing
keys, bools are not ints, a `type` picks exactly one schema.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, is_typeddict

from realtime import frames


class FrameMismatch(AssertionError):
    pass


def _fail(path: str, message: str) -> FrameMismatch:
    return FrameMismatch(f"{path or 'frame'}: {message}")


def check(value: Any, expected: Any, path: str = "") -> None:
    origin = get_origin(expected)
    if expected is Any:
        return
    if expected is type(None):
        if value is not None:
            raise _fail(path, f"expected null, got {value!r}")
        return
    if origin is Literal:
        if value not in get_args(expected) or isinstance(value, bool) != isinstance(get_args(expected)[0], bool):
            raise _fail(path, f"expected one of {get_args(expected)}, got {value!r}")
        return
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(expected):
            try:
                check(value, option, path)
                return
            except FrameMismatch as exc:
                errors.append(str(exc))
        raise _fail(path, "matches no option: " + " | ".join(errors))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _fail(path, f"expected an object, got {type(value).__name__}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise _fail(path, f"expected a list, got {type(value).__name__}")
        (item,) = get_args(expected)
        for index, element in enumerate(value):
            check(element, item, f"{path}[{index}]")
        return
    if is_typeddict(expected):
        _check_typeddict(value, expected, path)
        return
    if expected in (str, int, bool):
        if type(value) is not expected:  # strict: True is not an int, 1 is not a bool
            raise _fail(path, f"expected {expected.__name__}, got {type(value).__name__} {value!r}")
        return
    raise TypeError(f"{path}: no check for {expected!r}")


def _check_typeddict(value: Any, schema: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object ({schema.__name__}), got {type(value).__name__}")
    hints = typing.get_type_hints(schema, include_extras=True)
    missing = schema.__required_keys__ - value.keys()
    unknown = value.keys() - hints.keys()
    if missing:
        raise _fail(path, f"{schema.__name__} lacks {sorted(missing)}")
    if unknown:
        raise _fail(path, f"{schema.__name__} has unknown keys {sorted(unknown)}")
    for key, hint in hints.items():
        if key in value:
            check(value[key], hint, f"{path}.{key}" if path else key)


# A `type` names one schema per socket: the room socket's, and the user stream's where it differs.
_BY_TYPE: dict[str, list[Any]] = {}
for _schema in get_args(frames.ServerFrame):
    (_kind,) = get_args(typing.get_type_hints(_schema)["type"])
    _BY_TYPE.setdefault(_kind, []).append(_schema)


def check_server_frame(frame: Any) -> None:
    """Raise FrameMismatch unless `frame` is exactly one of the server's frame schemas."""
    if not isinstance(frame, dict) or frame.get("type") not in _BY_TYPE:
        raise _fail("", f"not a known server frame: {frame!r:.200}")
    schemas = _BY_TYPE[frame["type"]]
    check(frame, Union[tuple(schemas)] if len(schemas) > 1 else schemas[0])  # noqa: UP007 - built at run time
