"""Turns that leave the context window live on in the chat's summary, across snapshots and /reset."""

from __future__ import annotations

import asyncio
import concurrent.futures
import pickle
from collections.abc import Mapping, Sequence

from tgstream.config import load_settings
from tgstream.connectors.llm import Completion
from tgstream.dataflows.command_jobs import CommandRunner
from tgstream.dataflows.items import Admitted, ContextTurn
from tgstream.dataflows.pipeline import TurnPipeline
from tgstream.dataflows.records import Records
from tgstream.dataflows.turns import ChatTurns, Job, JobResult, TurnOutput, TurnsSnapshot
from tgstream.schemas.events import InboundMessage, Reply
from tgstream.state.personas import BUILTIN_DEFAULT, Persona, PersonaAssignment
from tgstream.steps.breaker import CircuitBreaker
from tgstream.steps.commands import Command

CHAT = 515151515151
WINDOW = 2


class RecordingLlm:
    def __init__(self) -> None:
        self.systems: list[str] = []

    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion:
        self.systems.append(messages[0]["content"])
        return Completion("I see.", 10, 2, "stop", 0.01, 1)


class Stores:
    """Personas, memories and background writers that hold nothing."""

    async def resolve(self, chat_id: int) -> PersonaAssignment:
        return PersonaAssignment(chat_id=chat_id, persona=BUILTIN_DEFAULT)

    async def assign(self, chat_id: int, user_id: int, persona_name: str) -> PersonaAssignment:
        return await self.resolve(chat_id)

    async def list_personas(self) -> list[Persona]:
        return [BUILTIN_DEFAULT]

    async def recall(self, chat_id: int, text: str) -> list[str]:
        return []

    async def forget_chat(self, chat_id: int) -> int:
        return 0

    async def count(self, chat_id: int) -> int:
        return 0

    def mirror(self, chat_id: int, history: tuple[ContextTurn, ...]) -> None:
        pass

    def remember(self, chat_id: int, user_id: int, user_text: str, reply: str) -> None:
        pass


class InlineRunner:
    """Runs each job to completion at once with the real pipeline and command runner."""

    def __init__(self) -> None:
        settings = load_settings(context_window_turns=WINDOW)
        stores, records = Stores(), Records(settings.analytics_salt)
        self.llm = RecordingLlm()
        self.pipeline = TurnPipeline(
            settings,
            llm=self.llm,
            breaker=CircuitBreaker(failure_threshold=5, reset_s=60.0),
            personas=stores,
            memories=stores,
            background=stores,
            records=records,
        )
        self.commands = CommandRunner(personas=stores, memories=stores, background=stores, records=records)

    def start(self, job: Job) -> concurrent.futures.Future[JobResult]:
        future: concurrent.futures.Future[JobResult] = concurrent.futures.Future()
        run = self.commands.run if job.is_command else self.pipeline.run
        future.set_result(asyncio.run(run(job)))
        return future

    def expected_latency_s(self, command: bool = False) -> float:
        return 0.1

    def completions_announced(self) -> bool:
        return False

    def recover(self, job: Job, error: BaseException) -> JobResult:
        raise AssertionError(f"no job should fail here: {error!r}")

    def typing_after_s(self) -> float | None:
        return None

    def typing(self, job: Job) -> TurnOutput | None:
        return None

    def answered(self, update_id: int) -> Reply | None:
        return None

    def replayed(self, job: Job, reply: Reply) -> JobResult:
        raise AssertionError("nothing is replayed here")


def say(update_id: int, text: str, command: Command | None = None) -> Admitted:
    message = InboundMessage(
        update_id=update_id,
        update_kind="message",
        chat_id=CHAT,
        chat_type="private",
        user_id=CHAT,
        text=text,
        sent_at=0.0,
        received_at=0.0,
    )
    return Admitted(message, gated_at=0.0, command=command)


def test_the_dropped_turn_is_summarized_kept_by_snapshots_and_cleared_by_reset() -> None:
    runner = InlineRunner()
    chat = ChatTurns(runner, clock=lambda: 100.0)
    lines = ["I live in Reykjavik", "the weather is grey", "so is the sea", "what do you think?"]
    for update_id, text in enumerate(lines[: WINDOW + 1], start=1):
        chat.on_batch([say(update_id, text)])
    assert [turn.user for turn in chat.history] == lines[1 : WINDOW + 1]
    assert "Reykjavik" in chat.summary, "the dropped turn was folded, not lost"

    snapshot = pickle.loads(pickle.dumps(chat.snapshot()))
    resumed = ChatTurns(runner, resume=snapshot, clock=lambda: 200.0)
    assert resumed.summary == chat.summary
    resumed.on_batch([say(10, lines[3])])
    assert "Reykjavik" in runner.llm.systems[-1], "the summary is in the next prompt"

    resumed.on_batch([say(11, "/reset", Command("reset"))])
    resumed.on_batch([say(12, "hello again")])
    assert resumed.summary == ""
    assert "Reykjavik" not in runner.llm.systems[-1]


def test_a_snapshot_from_before_summaries_restores_without_one() -> None:
    old = TurnsSnapshot(CHAT, (), (), 0.0)
    object.__delattr__(old, "summary")  # what unpickling a snapshot without the field leaves
    assert ChatTurns(InlineRunner(), resume=old, clock=lambda: 0.0).summary == ""
