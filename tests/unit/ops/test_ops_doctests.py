"""The docstring examples of the ops and observability modules stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tgstream.observability
import tgstream.ops

MODULES = sorted(
    m.name
    for package in (tgstream.ops, tgstream.observability)
    for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_module_doctests_pass(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"
