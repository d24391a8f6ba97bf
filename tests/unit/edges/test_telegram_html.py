"""Escaping for parse_mode=HTML, checked against the fake Bot API's own HTML parser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tgstream.steps.telegram_html import escape_html, render_html, strip_html


def test_escape_leaves_no_raw_markup() -> None:
    assert escape_html("<script>alert('&')</script>") == "&lt;script&gt;alert('&amp;')&lt;/script&gt;"


def test_markdown_habits_become_balanced_tags() -> None:
    assert render_html("**hi** there") == "<b>hi</b> there"
    assert render_html("run `rm -rf <dir>` now") == "run <code>rm -rf &lt;dir&gt;</code> now"
    assert render_html("```py\nx = a<b\n```") == "<pre>x = a&lt;b\n</pre>"


def test_unpaired_markers_stay_literal() -> None:
    assert render_html("2 ** 3 and a ` tick") == "2 ** 3 and a ` tick"


def test_markers_inside_code_are_not_bold() -> None:
    assert render_html("`**x**`") == "<code>**x**</code>"


def test_strip_html_inverts_escape() -> None:
    text = 'a < b && c > d "q"'
    assert strip_html(escape_html(text)) == text


@given(st.text(max_size=200))
def test_render_then_strip_keeps_the_visible_text_free_of_markup_damage(text: str) -> None:
    rendered = render_html(text)
    visible = strip_html(rendered)
    # Rendering only removes the markdown markers, never adds visible characters.
    assert len(visible) <= len(text)
