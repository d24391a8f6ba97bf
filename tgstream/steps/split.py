"""Split a long reply into Telegram-sized messages at the most natural boundary available.

Telegram limits a message to 4096 characters *after entity parsing*, counted in UTF-16 code
units (an emoji outside the BMP costs two). We therefore split the plain text, before any HTML
escaping or markup is added: escaping never changes the parsed length, and a chunk of plain text
can never end inside an entity or a tag because it has none yet.

A chunk ends at the last paragraph break that keeps it at least half full; failing that at the
last line break, then sentence end, then whitespace; only a text with no usable boundary (a very
long URL, say) is cut hard, and then never between the two halves of a surrogate pair nor before
a combining mark or after a zero-width joiner.

>>> split_text("short")
['short']
>>> split_text("One. Two. Three.", limit=10)
['One. Two.', 'Three.']
>>> split_text("aaaaaa\\n\\nbb cc", limit=10)
['aaaaaa', 'bb cc']
>>> [utf16_len(c) for c in split_text("😀" * 5, limit=4)]
[4, 4, 2]
"""

from __future__ import annotations

import re
import unicodedata

TELEGRAM_TEXT_LIMIT = 4096

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?…。！？][\"'’”»)\]]*(?=\s)")
_SPACE = re.compile(r"\s")
_LEVELS = (_PARAGRAPH, _LINE, _SENTENCE, _SPACE)
_ZWJ = "\u200d"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in.

    >>> utf16_len("héllo"), utf16_len("👍🏽")
    (5, 4)
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, *, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Chunks of at most ``limit`` UTF-16 units, whitespace-trimmed at the cuts, none empty."""
    if limit < 2:
        raise ValueError(f"limit must be at least 2 UTF-16 units, got {limit}")
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            chunks.append(rest)
            break
        window_end = _prefix_within(rest, limit)
        cut, resume = _best_cut(rest, window_end)
        chunk = rest[:cut].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[resume:].lstrip()
    return chunks


def _prefix_within(text: str, limit: int) -> int:
    """The largest code-point index whose prefix fits in ``limit`` UTF-16 units."""
    if text.isascii():
        return min(len(text), limit)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _best_cut(text: str, window_end: int) -> tuple[int, int]:
    """Where the chunk ends and where the next one starts, preferring coarse boundaries."""
    window = text[:window_end]
    # The boundary may sit right after the window (a sentence that ends exactly at the limit).
    lookahead = text[: window_end + 1]
    floor = window_end // 2
    for pattern in _LEVELS:
        last = None
        for last in pattern.finditer(lookahead if pattern is _SENTENCE else window):  # noqa: B007
            pass
        if last is None:
            continue
        if pattern is _SENTENCE:
            end = min(last.end(), window_end)
            if end > floor:
                return end, end
        elif last.start() > floor:
            return last.start(), last.end()
    return _hard_cut(text, window_end), _hard_cut(text, window_end)


def _hard_cut(text: str, index: int) -> int:
    """Move a forced cut left until it does not split a combining sequence or a ZWJ emoji."""
    cut = index
    while cut > 1 and (_joins_previous(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    return cut if cut > 0 else index


def _joins_previous(char: str) -> bool:
    return (
        char == _ZWJ
        or unicodedata.combining(char) != 0
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"
    )
