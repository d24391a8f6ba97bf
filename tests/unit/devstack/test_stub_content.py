from __future__ import annotations

import math
from typing import Any

from tgstream.doubles import stub_content


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_reply_echoes_the_last_user_message_and_counts_user_turns() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are Spark, playful."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}]},
    ]

    assert stub_content.reply_text(messages) == "[Spark] You said: second part [turn 2]"


def test_reply_is_a_function_of_the_request_only() -> None:
    messages = [{"role": "user", "content": "same   words\nhere"}]

    assert stub_content.reply_text(messages) == stub_content.reply_text(list(messages))
    assert stub_content.reply_text(messages) == "You said: same words here [turn 1]"


def test_long_user_text_is_truncated() -> None:
    text = "word " * 200
    reply = stub_content.reply_text([{"role": "user", "content": text}])

    assert len(reply) < stub_content.ECHO_CHARS + 40
    assert "..." in reply


def test_limit_tokens_reports_length_when_cut() -> None:
    assert stub_content.limit_tokens("a b c d", 2) == ("a b", "length")
    assert stub_content.limit_tokens("a b", 5) == ("a b", "stop")
    assert stub_content.limit_tokens("a b", None) == ("a b", "stop")


def test_embeddings_are_deterministic_unit_vectors_of_the_requested_size() -> None:
    first = stub_content.embed("I adopted a cat named Miso", 384)

    assert first == stub_content.embed("I adopted a cat named Miso", 384)
    assert len(first) == 384
    assert math.isclose(sum(x * x for x in first), 1.0, rel_tol=1e-9)
    assert len(stub_content.embed("short", 16)) == 16


def test_embeddings_rank_lexical_overlap_above_unrelated_text() -> None:
    memory = stub_content.embed("My cat Miso loves tuna", 384)
    related = stub_content.embed("what does my cat Miso like to eat", 384)
    unrelated = stub_content.embed("quarterly budget spreadsheet review", 384)

    assert _cosine(memory, related) > _cosine(memory, unrelated) + 0.2


def test_empty_text_still_has_a_defined_cosine() -> None:
    vector = stub_content.embed("", 8)

    assert math.isclose(sum(x * x for x in vector), 1.0)
