"""Small typed operators: each wraps one Bytewax core operator and checks what your function returns.

Like Bytewax's own ``filter`` (which refuses a non-bool predicate result and names the step),
a wrong return type here fails at once with the step id, instead of surfacing three steps
later as an ``AttributeError`` inside someone else's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import KeyedStream

X = TypeVar("X")
Y = TypeVar("Y")
V = TypeVar("V")


class StepTypeError(TypeError):
    """A step's function returned something of the wrong type; the message names the step."""


def _check(step_id: str, fn: Callable[..., Any], value: object, returns: tuple[type, ...]) -> None:
    if not isinstance(value, returns):
        names = " | ".join(t.__name__ for t in returns)
        msg = (
            f"step {step_id!r}: {getattr(fn, '__qualname__', fn)!r} must return {names}, "
            f"got {type(value).__name__}"
        )
        raise StepTypeError(msg)


@operator
def checked_map(
    step_id: str, up: Stream[X], fn: Callable[[X], Y], returns: type | tuple[type, ...]
) -> Stream[Y]:
    """``op.map`` whose results must be instances of ``returns``."""
    expected = returns if isinstance(returns, tuple) else (returns,)

    def shim(item: X) -> Y:
        value = fn(item)
        _check(step_id, fn, value, expected)
        return value

    return op.map("map", up, shim)


@operator
def select(step_id: str, up: Stream[Any], cls: type[Y]) -> Stream[Y]:
    """The items of one type from a stream that carries several (a typed ``branch``)."""

    def pick(item: Any) -> Y | None:
        return item if isinstance(item, cls) else None

    return op.filter_map("filter_map", up, pick)


@operator
def select_value(step_id: str, up: KeyedStream[Any], cls: type[Y]) -> KeyedStream[Y]:
    """Like :func:`select` for a keyed stream, on the value; the key is kept."""

    def pick(item: tuple[str, Any]) -> tuple[str, Y] | None:
        return item if isinstance(item[1], cls) else None

    return op.filter_map("filter_map", up, pick)
