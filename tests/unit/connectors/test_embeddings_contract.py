"""The embeddings contract that every backend shares: validation, dimension check, response parsing."""

from __future__ import annotations

import doctest
from collections.abc import Sequence

import pytest

from tgstream.connectors import embeddings_http
from tgstream.connectors.embeddings import (
    MAX_CHARS,
    CachingEmbedder,
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


class CountingEmbedder:
    """A deterministic backend that records what it was asked to embed."""

    dim = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[float(len(t)), 1.0] for t in texts]

    async def aclose(self) -> None:
        self.calls.append(["<closed>"])


@pytest.mark.anyio
async def test_caching_embedder_sends_only_misses_in_one_call_and_keeps_order() -> None:
    inner = CountingEmbedder()
    cached = CachingEmbedder(inner, max_texts=3)
    assert await cached.embed(["a", "bb", "a"]) == [[1.0, 1.0], [2.0, 1.0], [1.0, 1.0]]
    assert await cached.embed(["bb", "ccc", "a"]) == [[2.0, 1.0], [3.0, 1.0], [1.0, 1.0]]
    assert inner.calls == [["a", "bb"], ["ccc"]]
    assert (cached.hits, cached.misses) == (3, 3)  # 6 texts asked for, 3 embedded

    await cached.embed(["dddd"])  # evicts the least recently used, "bb"
    await cached.embed(["bb", "a"])
    assert inner.calls[-1] == ["bb"]
    await cached.aclose()
    assert inner.calls[-1] == ["<closed>"]
