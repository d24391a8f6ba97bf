"""Which recovery partitions this dataflow process starts with, and when it may create them.

Bytewax needs the *cluster as a whole* to see every partition of the set; which process holds
which file does not matter, and a process may hold none (checked against bytewax 0.21.1, see
docs/operations.md). So the rules are:

1. Partitions in the directory: use them. Only a process running alone can check that its
   directory holds the complete set; in a cluster the others may hold the rest.
2. An empty directory, and this process runs alone or is process 0: create a fresh full set,
   the same way ``tgstream recovery init`` does (:func:`init_partition_share`, one
   implementation). In a cluster every other process then starts holding none.
3. An empty directory in any other process of a cluster: create nothing. With one volume per pod
   a second set would fork the recovery history; if the partitions it should hold are missing,
   Bytewax refuses to resume (``MissingPartitionsError``), which is the right, loud failure.

Workers may outnumber partitions (Bytewax spreads snapshot writes over fewer files then), so
that is a warning, never a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from tgstream.ops.recovery_files import (
    RecoveryFilesError,
    describe_partition,
    init_partition_share,
    partition_files,
)

log = structlog.get_logger(__name__)


class RecoverySetupError(Exception):
    """The recovery directory cannot be used as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Topology:
    workers_per_process: int = 1
    process_id: int | None = None
    addresses: tuple[str, ...] = ()

    @property
    def processes(self) -> int:
        return max(1, len(self.addresses))

    @property
    def total_workers(self) -> int:
        return self.workers_per_process * self.processes

    @property
    def alone(self) -> bool:
        return self.processes == 1

    @property
    def may_create(self) -> bool:
        """Only a lone process or process 0 starts a fresh set (rule 2 of the module docstring)."""
        return self.alone or self.process_id == 0


@dataclass(frozen=True, slots=True)
class RecoveryShare:
    """The partitions this process holds (indices) out of a set of ``total`` (0 if it holds none)."""

    indices: tuple[int, ...]
    total: int
    created: bool


def ensure_recovery(directory: Path, partitions: int, topology: Topology) -> RecoveryShare:
    """Apply the module docstring's rules to ``directory``; ``partitions`` sizes a fresh set."""
    created = False
    try:
        if not partition_files(directory):
            if not topology.may_create:
                log.warning(
                    "recovery.holds_none",
                    directory=str(directory),
                    process_id=topology.process_id,
                    hint="the other processes must hold every partition, or Bytewax will refuse to resume",
                )
                return RecoveryShare((), 0, created=False)
            outcome = init_partition_share(directory, partitions=partitions)
            created = True
            log.info("recovery.initialised", directory=str(directory), partitions=len(outcome.created))
        held = [describe_partition(path) for path in partition_files(directory)]
    except (RecoveryFilesError, OSError, ValueError) as exc:
        raise RecoverySetupError(str(exc)) from exc
    total = held[0].part_count
    indices = tuple(sorted(part.part_index for part in held))
    if any(part.part_count != total for part in held):
        counts = sorted({part.part_count for part in held})
        raise RecoverySetupError(
            f"{directory} mixes partitions of different sets (sizes {counts}); keep one set only"
        )
    if topology.alone:
        missing = sorted(set(range(total)) - set(indices))
        if missing:
            raise RecoverySetupError(
                f"{directory} holds partitions {list(indices)} of a set of {total}, but this process runs "
                f"alone and nobody else holds {missing}: move those files here (tgstream recovery status "
                "lists what a directory holds)"
            )
        if topology.total_workers > total:
            log.warning(
                "recovery.fewer_partitions_than_workers",
                workers=topology.total_workers,
                partitions=total,
                hint="fine for Bytewax; snapshot writes are spread over fewer files",
            )
    return RecoveryShare(indices, total, created)
