"""The doctests of the persona schema modules (the steps' doctests run in tests/unit/steps)."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module_name",
    ["tgstream.schemas.persona_card", "tgstream.schemas.persona_file", "tgstream.schemas.customizations"],
)
def test_module_doctests_pass(module_name: str) -> None:
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
