"""The round loop shared by ``tgstream adapt run``: adaptation, then the optional importance judge.

A round whose Redis or Postgres is down is reported and retried at the next interval; the
job only ends when asked to (``stop``) or after one round with ``once``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from tgstream.connectors.postgres import DatabaseError
from tgstream.jobs.adaptation import AdaptationJob, RoundReport
from tgstream.jobs.importance import ImportanceJudge, JudgeReport
from tgstream.state.adaptations import AdaptationsUnavailable
from tgstream.state.conversation_mirror import MirrorUnavailable

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class RoundOutcome:
    number: int
    adaptation: RoundReport | None = None
    judge: JudgeReport | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


async def run_round(number: int, adaptation: AdaptationJob, judge: ImportanceJudge | None) -> RoundOutcome:
    outcome = RoundOutcome(number)
    try:
        outcome.adaptation = await adaptation.run_once()
    except (MirrorUnavailable, AdaptationsUnavailable) as exc:
        log.warning("adaptation.round_failed", error=str(exc))
        outcome.errors.append(f"adaptation: {exc}")
    if judge is not None:
        try:
            outcome.judge = await judge.run_once()
        except DatabaseError as exc:
            log.warning("importance_judge.round_failed", error=str(exc))
            outcome.errors.append(f"importance judge: {exc}")
    return outcome


async def run_rounds(
    adaptation: AdaptationJob,
    judge: ImportanceJudge | None,
    *,
    stop: asyncio.Event,
    interval_s: float,
    once: bool = False,
    on_round: Callable[[RoundOutcome], None] | None = None,
) -> int:
    """Rounds every ``interval_s`` until ``stop`` is set (or one, with ``once``); returns how many ran."""
    number = 0
    while not stop.is_set():
        number += 1
        outcome = await run_round(number, adaptation, judge)
        if on_round is not None:
            on_round(outcome)
        if once:
            break
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue
    return number
