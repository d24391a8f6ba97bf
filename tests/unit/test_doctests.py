"""Every docstring example in the package runs, so none can drift from the code it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tgstream

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(tgstream.__path__, "tgstream.") if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_module_doctests_pass(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"


def test_the_package_has_examples_at_all() -> None:
    """Guards the walk above: an import path mistake would otherwise run zero examples and pass."""
    attempted = sum(
        doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS).attempted
        for name in ("tgstream.dataflows.turns", "tgstream.edges.sender.service", "tgstream.loadtest.stats")
    )
    assert attempted >= 5
