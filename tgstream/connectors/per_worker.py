"""One shared client per Bytewax worker, for the partitions that worker builds and drives.

Bytewax builds a worker's source and sink partitions, and calls them, on that worker's thread.
Partitions that share one Kafka client per worker (one connection, one poll, one batch) look it up
here by the calling thread; several workers in one process each get their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerWorker(Generic[T]):
    """``get()`` returns the calling worker's instance, made by ``make(n)`` on its first call.

    ``n`` counts the workers that asked before, e.g. for distinct client ids.

    >>> made = PerWorker(lambda n: f"client-{n}")
    >>> made.get(), made.get()
    ('client-0', 'client-0')
    """

    def __init__(self, make: Callable[[int], T]) -> None:
        self._make = make
        self._made: dict[int, T] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            worker = threading.get_ident()
            made = self._made.get(worker)
            if made is None:
                made = self._made[worker] = self._make(len(self._made))
            return made
