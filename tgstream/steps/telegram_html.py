"""Text for Telegram's ``parse_mode=HTML``, and the way back to plain text.

Model output is plain text with the occasional Markdown habit (``**bold**``, `` `code` ``,
fenced blocks). :func:`render_html` escapes everything Telegram's HTML parser treats as markup and
then turns those few habits into the matching tags, always balanced, because an unbalanced tag
makes Telegram reject the whole message ("can't parse entities"). It is applied per chunk, after
:mod:`tgstream.steps.split`, so a tag never spans two messages; a marker pair that the split cut
in two simply stays literal.

Conversion only removes visible characters (the markers), so a chunk that fits Telegram's limit
as plain text still fits once rendered.

>>> render_html("1 < 2 & **bold** `x<y`")
'1 &lt; 2 &amp; <b>bold</b> <code>x&lt;y</code>'
>>> strip_html('<b>a</b> &lt;3 &amp; <a href="https://x">link</a>')
'a <3 & link'
"""

from __future__ import annotations

import html
import re

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_FENCE = re.compile(r"```(?:[\w+-]*\n)?(.+?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL)
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?>")


def escape_html(text: str) -> str:
    """Escape the three characters Telegram's HTML mode reserves.

    >>> escape_html("<b> & </b>")
    '&lt;b&gt; &amp; &lt;/b&gt;'
    """
    return text.translate(_ESCAPES)


def render_html(text: str) -> str:
    """Escaped text with fenced code, inline code and ``**bold**`` turned into balanced tags."""
    if not any(marker in text for marker in ("`", "**")):
        return escape_html(text)
    text = text.replace("\x00", "")
    verbatim: list[str] = []

    def keep(markup: str) -> str:
        verbatim.append(markup)
        return f"\x00{len(verbatim) - 1}\x00"

    text = _FENCE.sub(lambda m: keep(f"<pre>{escape_html(m.group(1))}</pre>"), text)
    text = _CODE.sub(lambda m: keep(f"<code>{escape_html(m.group(1))}</code>"), text)
    escaped = escape_html(text)
    escaped = _BOLD.sub(r"<b>\1</b>", escaped)
    return _PLACEHOLDER.sub(lambda m: verbatim[int(m.group(1))], escaped)


def strip_html(markup: str) -> str:
    """What the user would read: tags dropped and entities decoded, for the plain-text fallback."""
    return html.unescape(_TAG.sub("", markup))
