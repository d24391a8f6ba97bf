"""Runs the doctests of every module in ``tgstream.steps`` so the examples in docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tgstream.steps

MODULES = sorted(m.name for m in pkgutil.iter_modules(tgstream.steps.__path__, "tgstream.steps."))


@pytest.mark.parametrize("module_name", MODULES)
def test_module_doctests_pass(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"
