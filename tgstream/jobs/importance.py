"""The importance judge: blend an LLM's view into the heuristic importance of recent memories.

Runs as part of ``tgstream adapt run --judge-importance``. Each round takes up to
``max_per_round`` unjudged memories from the last ``max_age_s`` seconds, newest first, asks the
model about them ``batch_size`` at a time, and writes the blended scores. An unusable answer
or a failed call marks the batch judged without changing it (the heuristic score stands), so
the job never loops on a memory the model cannot rate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import Counter

from tgstream.connectors.llm import Completion, LlmError
from tgstream.state.memory_admin import MemoryAdmin, UnjudgedMemory
from tgstream.steps.importance_judge import MAX_BATCH, blend, judgement_prompt, parse_scores

log = structlog.get_logger(__name__)

JUDGED = Counter("tgstream_importance_judged_total", "Memories handled by the importance judge", ["outcome"])


class Completer(Protocol):
    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion: ...


@dataclass(slots=True)
class JudgeReport:
    judged: int = 0
    unusable: int = 0
    failed: int = 0
    seconds: float = 0.0


class ImportanceJudge:
    def __init__(
        self,
        *,
        admin: MemoryAdmin,
        llm: Completer,
        batch_size: int = 10,
        max_per_round: int = 100,
        max_age_s: float = 86_400.0,
        weight: float = 0.5,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH or max_per_round < 1:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH} and max_per_round >= 1")
        self._admin = admin
        self._llm = llm
        self._batch_size = batch_size
        self._max_per_round = max_per_round
        self._max_age_s = max_age_s
        self._weight = weight

    async def run_once(self) -> JudgeReport:
        """One round; raises ``DatabaseError`` if Postgres is down (the caller retries next round)."""
        started = time.perf_counter()
        report = JudgeReport()
        memories = await self._admin.unjudged(limit=self._max_per_round, max_age_s=self._max_age_s)
        for offset in range(0, len(memories), self._batch_size):
            batch = memories[offset : offset + self._batch_size]
            await self._admin.record_judgements(await self._judge(batch, report))
        report.seconds = time.perf_counter() - started
        return report

    async def _judge(
        self, batch: list[UnjudgedMemory], report: JudgeReport
    ) -> list[tuple[int, float | None]]:
        try:
            completion = await self._llm.complete(judgement_prompt([m.text for m in batch]))
        except LlmError as exc:
            log.warning("importance_judge.model_failed", kind=exc.kind)
            report.failed += len(batch)
            JUDGED.labels("failed").inc(len(batch))
            return [(m.id, None) for m in batch]
        scores = parse_scores(completion.text, len(batch))
        if scores is None:
            report.unusable += len(batch)
            JUDGED.labels("unusable").inc(len(batch))
            return [(m.id, None) for m in batch]
        report.judged += len(batch)
        JUDGED.labels("judged").inc(len(batch))
        return [
            (m.id, blend(m.importance, s, weight=self._weight)) for m, s in zip(batch, scores, strict=True)
        ]
