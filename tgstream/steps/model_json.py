"""JSON values inside a chat model's free-form answer.

Small models wrap JSON in prose and code fences, use single quotes and leave trailing commas;
asking nicely does not stop them. This finds the JSON anyway, without ever evaluating code:
``ast.literal_eval`` only builds literals. Input is capped so a runaway answer costs nothing.

>>> list(json_values('Sure! ```json\\n{"a": 1,}\\n``` and also [1, 2]'))
[{'a': 1}, {'a': 1}, [1, 2]]
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

MAX_ANSWER_CHARS = 20_000
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_PAIRS = {"{": "}", "[": "]"}


def _candidates(text: str) -> Iterator[str]:
    """Fenced blocks first, then every outermost balanced ``{...}`` or ``[...]``, in order."""
    yield from (m.group(1) for m in _FENCE.finditer(text))
    stack: list[str] = []
    start = -1
    for index, char in enumerate(text):
        if char in _PAIRS:
            if not stack:
                start = index
            stack.append(_PAIRS[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                yield text[start : index + 1]
        elif stack and char in "}]":
            stack.clear()  # mismatched: give up on this span


def _load(candidate: str) -> Any:
    candidate = _TRAILING_COMMA.sub(r"\1", candidate.strip())
    for loader in (json.loads, ast.literal_eval):
        try:
            return loader(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def json_values(text: str) -> Iterator[Any]:
    """Every dict or list that can be read from ``text``, fenced ones first."""
    for candidate in _candidates(text[:MAX_ANSWER_CHARS]):
        value = _load(candidate)
        if isinstance(value, dict | list):
            yield value
