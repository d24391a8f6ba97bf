"""Telegram's entity parsers for ``parse_mode`` HTML and MarkdownV2, returning the visible text.

They follow the rules in the Bot API docs and tdlib's error wording, so that a client sees the same
"can't parse entities" 400 it would get from Telegram. They are deliberately *stricter* than tdlib
in one way: a bare ``<``, ``>`` or ``&`` that is not part of a tag or entity is rejected, as the
docs say it must be escaped (tdlib quietly tolerates some). A double that forgives less than
production catches escaping bugs before users do.
"""

from __future__ import annotations

import re

HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "blockquote",
    }
)
_HTML_SPECIAL = re.compile(r"[<>&]")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR = re.compile(r"\s*([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_SPECIAL = re.compile(r"[\\_*\[\]()~`>#+\-=|{}.!]")
_MD_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "`": "Code",
    "```": "Pre",
    "[": "TextUrl",
}


class EntityParseError(ValueError):
    """The text is not valid for its parse_mode; the message is tdlib's wording."""


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_html(text: str) -> str:
    """The visible text of an HTML-formatted message, or :class:`EntityParseError`."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for match in _HTML_SPECIAL.finditer(text):
        start = match.start()
        if start < pos:
            continue
        out.append(text[pos:start])
        char = match.group()
        if char == "&":
            entity = _ENTITY.match(text, start)
            if entity is None:
                raise EntityParseError(f"Character '&' at byte offset {_offset(text, start)} must be escaped")
            out.append(_decode_entity(entity))
            pos = entity.end()
        elif char == ">":
            raise EntityParseError(f"Character '>' at byte offset {_offset(text, start)} must be escaped")
        else:
            pos = _html_tag(text, start, stack)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    out.append(text[pos:])
    return "".join(out)


def _decode_entity(entity: re.Match[str]) -> str:
    named, decimal, hexadecimal = entity.groups()
    if named:
        return _NAMED[named]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _html_tag(text: str, start: int, stack: list[str]) -> int:
    """Consume one tag at ``start`` (a ``<``), updating the open-tag stack; returns the next index."""
    name_match = _TAG_NAME.match(text, start + 1)
    if name_match is None and not text.startswith("</", start):
        raise EntityParseError(f"Character '<' at byte offset {_offset(text, start)} must be escaped")
    close = text.find(">", start)
    if close < 0:
        raise EntityParseError(f"Can't find end of the tag at byte offset {_offset(text, start)}")
    if name_match is None:
        name = text[start + 2 : close].strip().lower()
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {_offset(text, start)}")
        if name != stack[-1]:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {_offset(text, start)}, expected "</{stack[-1]}>", '
                f'found "</{name}>"'
            )
        stack.pop()
        return close + 1
    name = name_match.group().lower()
    if name not in HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_offset(text, start)}')
    attrs = _html_attrs(text[name_match.end() : close])
    if name == "a" and not attrs.get("href"):
        raise EntityParseError(f'Tag "a" must have attribute "href" at byte offset {_offset(text, start)}')
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_offset(text, start)}'
        )
    stack.append(name)
    return close + 1


def _html_attrs(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    raw = raw.rstrip().removesuffix("/")
    pos = 0
    while pos < len(raw):
        match = _ATTR.match(raw, pos)
        if match is None or match.end() == pos:
            raise EntityParseError(f"Can't parse tag attributes near {raw[pos : pos + 16]!r}")
        name, dq, sq, bare = match.groups()
        attrs[name.lower()] = dq if dq is not None else sq if sq is not None else bare or ""
        pos = match.end()
    return attrs


def parse_markdown_v2(text: str) -> str:
    """The visible text of a MarkdownV2-formatted message, or :class:`EntityParseError`."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    pos = 0
    length = len(text)
    while pos < length:
        in_code = bool(stack) and stack[-1][0] in ("`", "```")
        match = _next_md_special(text, pos, in_code)
        if match is None:
            out.append(text[pos:])
            break
        out.append(text[pos:match])
        pos = _md_token(text, match, stack, out, in_code)
    if stack:
        marker, start = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD_NAMES[marker]} entity at byte offset {_offset(text, start)}"
        )
    return "".join(out)


def _next_md_special(text: str, pos: int, in_code: bool) -> int | None:
    if in_code:
        hits = [i for i in (text.find("`", pos), text.find("\\", pos)) if i >= 0]
        return min(hits) if hits else None
    match = _MD_SPECIAL.search(text, pos)
    return match.start() if match else None


def _md_token(text: str, pos: int, stack: list[tuple[str, int]], out: list[str], in_code: bool) -> int:
    """Handle the special character at ``pos``; returns the index after it."""
    char = text[pos]
    if char == "\\":
        if pos + 1 >= len(text) or not 0 < ord(text[pos + 1]) < 127:
            raise EntityParseError(f"Character '\\' at byte offset {_offset(text, pos)} is reserved")
        out.append(text[pos + 1])
        return pos + 2
    if in_code:
        marker = stack[-1][0]
        if marker == "```" and not text.startswith("```", pos):
            out.append(char)
            return pos + 1
        stack.pop()
        return pos + len(marker)
    if char == "`":
        if text.startswith("```", pos):
            stack.append(("```", pos))
            newline = text.find("\n", pos + 3)
            lang = text[pos + 3 : newline] if newline >= 0 else ""
            return newline + 1 if newline >= 0 and " " not in lang and "`" not in lang else pos + 3
        stack.append(("`", pos))
        return pos + 1
    toggle: str | None = {"*": "*", "~": "~"}.get(char)
    if char == "_":
        toggle = "__" if text.startswith("__", pos) else "_"
    elif char == "|" and text.startswith("||", pos):
        toggle = "||"
    if toggle is not None:
        _toggle(text, stack, toggle, pos)
        return pos + len(toggle)
    if char == "[":
        stack.append(("[", pos))
        return pos + 1
    if char == "]" and stack and stack[-1][0] == "[":
        return _md_link_target(text, pos, stack)
    if char == ">" and (pos == 0 or text[pos - 1] == "\n"):
        return pos + 1
    raise EntityParseError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")


def _toggle(text: str, stack: list[tuple[str, int]], marker: str, pos: int) -> None:
    if stack and stack[-1][0] == marker:
        stack.pop()
        return
    if any(open_marker == marker for open_marker, _ in stack):
        raise EntityParseError(
            f"Can't find end of {_MD_NAMES[stack[-1][0]]} entity at byte offset {_offset(text, stack[-1][1])}"
        )
    stack.append((marker, pos))


def _md_link_target(text: str, pos: int, stack: list[tuple[str, int]]) -> int:
    if not text.startswith("(", pos + 1):
        raise EntityParseError("Character ']' is reserved and must be escaped with the preceding '\\'")
    index = pos + 2
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == ")":
            stack.pop()
            return index + 1
        index += 1
    raise EntityParseError(f"Can't find end of a URL at byte offset {_offset(text, pos + 1)}")
