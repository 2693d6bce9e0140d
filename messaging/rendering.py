"""Message bodies: a small Markdown subset rendered once, at write time, and sanitised.

The raw text stays the source of truth; the HTML is stored beside it so no reader renders it
again. markdown-it-py parses (raw HTML in a body stays text), mentions are found in its text
tokens only (never inside code or links), and nh3 removes anything outside the allow-list
as a second line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOM_MENTIONS = frozenset({"room", "all", "everyone"})

# Django usernames are `[\w.@+-]+`; a mention ends before a trailing dot ("thanks @bob.").
_MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-]*[\w+-])")

_ALLOWED_TAGS = {"p", "br", "em", "strong", "s", "code", "pre", "a", "blockquote", "span"}
_ALLOWED_ATTRIBUTES = {"a": {"href"}, "span": {"class", "data-user-id"}, "code": {"class"}}

_markdown = MarkdownIt("zero", {"linkify": True, "breaks": True, "html": False}).enable(
    ["emphasis", "strikethrough", "backticks", "escape", "fence", "code", "blockquote", "link", "autolink", "linkify"]
)


@dataclass(frozen=True)
class RenderedBody:
    html: str
    has_link: bool
    mentioned_user_ids: list[int]
    mentions_room: bool


# Given lower-cased usernames, the ids of those that may be mentioned (the room's members).
MentionResolver = Callable[[set[str]], dict[str, int]]


def render_body(body: str, resolve: MentionResolver) -> RenderedBody:
    tokens = _markdown.parse(body)
    names = {match.group(1).lower() for token in _text_tokens(tokens) for match in _mention_matches(token)}
    user_ids = resolve(names - ROOM_MENTIONS) if names - ROOM_MENTIONS else {}
    has_link = False
    for block in tokens:
        if block.type != "inline" or not block.children:
            continue
        has_link = has_link or any(child.type == "link_open" for child in block.children)
        block.children = _with_mention_spans(block.children, user_ids)
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
    return RenderedBody(
        html=clean.strip(),
        has_link=has_link,
        mentioned_user_ids=sorted(set(user_ids.values())),
        mentions_room=bool(names & ROOM_MENTIONS),
    )


def plain_html(body: str) -> str:
    """For documents written before rendering existed: the text, escaped."""
    return f"<p>{escape(body)}</p>" if body else ""


def _text_tokens(tokens: Iterable[Token]) -> Iterable[Token]:
    for block in tokens:
        if block.type != "inline" or not block.children:
            continue
        inside_link = 0
        for child in block.children:
            if child.type == "link_open":
                inside_link += 1
            elif child.type == "link_close":
                inside_link -= 1
            elif child.type == "text" and not inside_link:
                yield child


def _mention_matches(token: Token) -> Iterable[re.Match[str]]:
    return _MENTION.finditer(token.content) if "@" in token.content else ()


def _with_mention_spans(children: list[Token], user_ids: dict[str, int]) -> list[Token]:
    """Split text tokens around resolved mentions, wrapping each in a span (escaped here)."""
    result: list[Token] = []
    inside_link = 0
    for child in children:
        inside_link += {"link_open": 1, "link_close": -1}.get(child.type, 0)
        if child.type != "text" or inside_link or "@" not in child.content:
            result.append(child)
            continue
        position = 0
        for match in _mention_matches(child):
            name = match.group(1).lower()
            if name in ROOM_MENTIONS:
                span = f'<span class="mention mention-room">{escape(match.group(0))}</span>'
            elif name in user_ids:
                span = f'<span class="mention" data-user-id="{user_ids[name]}">{escape(match.group(0))}</span>'
            else:
                continue
            result.append(_text(child.content[position : match.start()]))
            result.append(Token("html_inline", "", 0, content=span))
            position = match.end()
        result.append(_text(child.content[position:]))
    return [token for token in result if token.type != "text" or token.content]


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)
