"""The examples in the dataflow modules' docstrings run, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "tgstream.dataflows.turns",
    "tgstream.dataflows.turn_shards",
    "tgstream.dataflows.pipeline",
    "tgstream.connectors.llm",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
