"""Hypothesis on the two parsers that take raw client text: socket frames and search queries.

Whatever arrives, the answer is a frame to act on or a refusal in the contract's shape, never an
exception (a crashed socket or a 500 is a bug).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from realtime.client_frames import Refused, parse_client_frame
from search.query import parse_query
from tests.frame_schemas import check_server_frame

LIMIT = 65_536
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\udfff", "[", "{", '"']))


def check_parsed(result: Any) -> None:
    if isinstance(result, Refused):
        check_server_frame(result.error)
    else:
        assert isinstance(result, dict) and isinstance(result["type"], str)


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_frame_or_a_refusal(text: str) -> None:
    check_parsed(parse_client_frame(text, LIMIT))


@given(JSON, st.text(max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_json_value_is_a_frame_or_a_refusal(value: Any, kind: str) -> None:
    check_parsed(parse_client_frame(json.dumps(value), LIMIT))
    if isinstance(value, dict):
        check_parsed(parse_client_frame(json.dumps({**value, "type": kind}), LIMIT))


def test_the_refusals_of_the_contract() -> None:
    assert parse_client_frame(None, LIMIT) == Refused(
        {"type": "error", "code": "binary_not_supported", "detail": "Frames must be JSON text."}
    )
    assert isinstance(parse_client_frame("[" * 30_000, LIMIT), Refused)
    assert isinstance(parse_client_frame('"\\ud800"', LIMIT), Refused)
    assert isinstance(parse_client_frame("x" * (LIMIT + 1), LIMIT), Refused)
    # A client's own "error" frame is a frame of an unknown type, not an answer to echo back.
    assert parse_client_frame('{"type": "error", "code": "x"}', LIMIT) == {"type": "error", "code": "x"}


@given(TEXT)
@settings(max_examples=500, deadline=None)
def test_any_search_text_parses_or_is_refused_as_invalid_input(text: str) -> None:
    try:
        query = parse_query(text)
    except InvalidInput as refused:
        assert refused.status == 400 and refused.fields and "q" in refused.fields
    else:
        assert not query.is_empty()
        assert all(term and term == term.strip() for term in query.terms + query.excluded)
