"""Fixtures for the reliability suite (the parent conftest fails loudly when a service is down).

The hostile-input strategies live next to the unit fuzz tests and the dataflow subprocess harness
next to the dataflow tests; their folders are put on the path so every suite uses one definition.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_TESTS / "unit" / "reliability"))
sys.path.insert(0, str(_TESTS / "integration" / "dataflow"))
