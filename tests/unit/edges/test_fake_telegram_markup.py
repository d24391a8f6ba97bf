"""The fake Bot API's HTML and MarkdownV2 parsers: what Telegram accepts, rejects, and shows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgstream.doubles.telegram_api.markup import EntityParseError, parse_html, parse_markdown_v2
from tgstream.steps.telegram_html import escape_html, render_html, strip_html


@pytest.mark.parametrize(
    ("markup", "visible"),
    [
        ("<b>bold</b> <i>it</i>", "bold it"),
        ('<a href="https://example.com/?a=1&amp;b=2">link</a>', "link"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ('<pre><code class="language-python">x &lt; 1</code></pre>', "x < 1"),
        ("&#128512; &#x41; &quot;q&quot;", '😀 A "q"'),
        ("<blockquote expandable>q</blockquote>", "q"),
    ],
)
def test_html_accepted(markup: str, visible: str) -> None:
    assert parse_html(markup) == visible


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<script>x</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("a & b", "Character '&' at byte offset 2 must be escaped"),
        ("1 < 2", "Character '<' at byte offset 2 must be escaped"),
        ("é > 2", "Character '>' at byte offset 3 must be escaped"),
        ("<a>no href</a>", 'Tag "a" must have attribute "href"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("<b", "Can't find end of the tag at byte offset 0"),
    ],
)
def test_html_rejected_with_telegrams_reason(markup: str, reason: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(markup)
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize(
    ("markup", "visible"),
    [
        ("*bold* _it_ __u__ ~s~ ||sp||", "bold it u s sp"),
        ("Price: 10\\.5\\!", "Price: 10.5!"),
        ("`code with . and *`", "code with . and *"),
        ("```python\nprint(1) # ok.\n```", "print(1) # ok.\n"),
        ("[site](https://example.com/a_(b\\))", "site"),
        ("> quoted line", " quoted line"),
    ],
)
def test_markdown_v2_accepted(markup: str, visible: str) -> None:
    assert parse_markdown_v2(markup) == visible


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("Hello.", "Character '.' is reserved"),
        ("a - b", "Character '-' is reserved"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("x `code", "Can't find end of Code entity at byte offset 2"),
        ("[text] here", "Character ']' is reserved"),
    ],
)
def test_markdown_v2_rejected(markup: str, reason: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_markdown_v2(markup)
    assert str(caught.value).startswith(reason)


@given(st.text(max_size=300))
def test_escaped_text_parses_back_to_itself(text: str) -> None:
    assert parse_html(escape_html(text)) == text


@given(st.text(alphabet=st.sampled_from(list("ab <>&*`\n\"'")), max_size=120))
def test_rendered_markdown_habits_always_parse_and_match_the_plain_fallback(text: str) -> None:
    rendered = render_html(text)
    assert parse_html(rendered) == strip_html(rendered)
