"""``conversation_memory_usage_mb``: the seed's memory metric, as this process's resident memory.

The seed (section 8.1) declares it per conversation with a ``chat_id`` label. We keep its name and
drop the label: one series per chat is unbounded, and a Python process cannot say how much of its
heap belongs to one chat anyway. What an operator can act on is a process growing, so the gauge
is the resident set size of the process that serves it.

Why not prometheus-client's ``process_resident_memory_bytes``: its collector lives only in the
default registry, which the dataflow serves but the gateway, sender and poller do not (each serves
a registry of its own). Registering this gauge wherever ``/metrics`` is served gives every
process the same series under the name the dashboard queries.

The value is read at scrape time (``set_function``), from ``/proc/self/statm``: one small file
read, no psutil (a dev dependency only).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from pathlib import Path
from weakref import WeakSet

from prometheus_client import CollectorRegistry, Gauge

MEMORY_GAUGE = "conversation_memory_usage_mb"
STATM = Path("/proc/self/statm")
MIB = 1024 * 1024

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_registered: WeakSet[CollectorRegistry] = WeakSet()
_lock = threading.Lock()


def resident_memory_mb(statm: Path = STATM) -> float:
    """Resident memory now, in MiB (the seed's "MB").

    Without ``/proc`` (macOS dev machines) it falls back to ``getrusage``, which only knows the
    peak: good enough to see a leak there, wrong for seeing memory given back.
    """
    try:
        resident_pages = int(statm.read_bytes().split()[1])
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / MIB if sys.platform == "darwin" else peak / 1024
    return resident_pages * _PAGE_BYTES / MIB


def register_process_metrics(registry: CollectorRegistry) -> None:
    """Add the memory gauge to ``registry`` once.

    Idempotent per registry because one process may build several servers on the same registry
    (tests, the adaptation job next to a dataflow); a second plain ``Gauge`` would raise on the
    duplicate name.
    """
    with _lock:
        if registry in _registered:
            return
        gauge = Gauge(
            MEMORY_GAUGE,
            "Resident memory of this process in MiB (per process, not per chat)",
            registry=registry,
        )
        gauge.set_function(resident_memory_mb)
        _registered.add(registry)
