"""Runs the doctests of the load test's pure modules so the examples in docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module_name", ["schedule", "stats", "tracker", "pg_backends"])
def test_module_doctests_pass(module_name: str) -> None:
    module = importlib.import_module(f"tgstream.loadtest.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
