"""The embeddings contract that every backend shares: validation, dimension check, response parsing."""

from __future__ import annotations

import doctest

import pytest

from tgstream.connectors import embeddings_http
from tgstream.connectors.embeddings import (
    MAX_CHARS,
    EmbeddingDimensionError,
    EmbeddingsUnavailable,
    check_dimension,
    prepare,
)


def test_prepare_rejects_blank_texts_and_a_bare_string() -> None:
    with pytest.raises(ValueError, match=r"positions \[1, 2\]"):
        prepare(["fine", "  ", ""])
    with pytest.raises(TypeError):
        prepare("one string")


def test_prepare_trims_long_texts_and_keeps_order() -> None:
    long = "x" * (MAX_CHARS + 10)
    assert prepare(["a", long]) == ["a", "x" * MAX_CHARS]


def test_dimension_mismatch_names_the_source_and_the_setting() -> None:
    check_dimension([[0.0] * 4], 4, "stub")
    with pytest.raises(EmbeddingDimensionError, match=r"stub returns 3-dimensional .* EMBEDDINGS_DIM is 4"):
        check_dimension([[0.0] * 4, [0.0] * 3], 4, "stub")


def test_response_parsing_orders_by_index_and_rejects_malformed_bodies() -> None:
    failures, attempted = doctest.testmod(embeddings_http)
    assert (failures, attempted > 0) == (0, True)
    with pytest.raises(EmbeddingsUnavailable, match="asked for 2"):
        embeddings_http._parse(b'{"data":[{"index":0,"embedding":[1.0]}]}', 2)
    with pytest.raises(EmbeddingsUnavailable, match="malformed"):
        embeddings_http._parse(b"<html>502</html>", 1)
