"""Splitting long replies at Telegram's 4096 UTF-16 unit limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgstream.steps.split import TELEGRAM_TEXT_LIMIT, split_text, utf16_len


def test_text_at_the_limit_stays_whole() -> None:
    text = "a" * TELEGRAM_TEXT_LIMIT
    assert split_text(text) == [text]


def test_one_unit_over_the_limit_splits_in_two() -> None:
    text = "a" * (TELEGRAM_TEXT_LIMIT + 1)
    chunks = split_text(text)
    assert [len(c) for c in chunks] == [TELEGRAM_TEXT_LIMIT, 1]


def test_astral_emoji_count_twice() -> None:
    # 2048 emoji are exactly 4096 UTF-16 units; one more BMP character overflows.
    text = "😀" * 2048
    assert split_text(text) == [text]
    chunks = split_text(text + "x")
    assert chunks == [text, "x"]


def test_never_splits_a_surrogate_pair_at_an_odd_limit() -> None:
    text = "😀" * 10
    chunks = split_text(text, limit=5)
    assert "".join(chunks) == text
    assert all(utf16_len(c) <= 5 for c in chunks)
    assert [utf16_len(c) for c in chunks] == [4, 4, 4, 4, 4]


def test_prefers_paragraph_then_sentence_then_word() -> None:
    para_a = "First paragraph. " * 100
    para_b = "Second one here. " * 100
    chunks = split_text(f"{para_a.strip()}\n\n{para_b.strip()}", limit=2000)
    assert chunks == [para_a.strip(), para_b.strip()]

    sentences = "This is a sentence. " * 300
    chunks = split_text(sentences, limit=1000)
    assert all(c.endswith(".") for c in chunks)
    assert all(utf16_len(c) <= 1000 for c in chunks)

    words = "word " * 1000
    chunks = split_text(words, limit=999)
    assert all(c.endswith("word") and c.startswith("word") for c in chunks)


def test_paragraph_break_too_early_falls_back_to_sentences() -> None:
    text = "Hi.\n\n" + "Long sentence goes on. " * 50
    chunks = split_text(text, limit=200)
    assert chunks[0].startswith("Hi.\n\nLong sentence")
    assert all(utf16_len(c) <= 200 for c in chunks)


def test_zwj_sequence_is_not_cut_when_hard_splitting() -> None:
    family = "👩\u200d👩\u200d👧"
    text = "x" * 7 + family
    chunks = split_text(text, limit=9)
    assert family in chunks or all(not c.endswith("\u200d") for c in chunks)
    assert "".join(chunks) == text


def test_whitespace_only_gives_no_chunks() -> None:
    assert split_text("  \n\n  ") == []


def test_rejects_a_useless_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_text("abc", limit=1)


@given(st.text(min_size=0, max_size=600), st.integers(min_value=2, max_value=80))
def test_chunks_fit_and_keep_every_non_space_character(text: str, limit: int) -> None:
    chunks = split_text(text, limit=limit)
    assert all(chunks)
    assert all(utf16_len(c) <= limit for c in chunks)
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())
