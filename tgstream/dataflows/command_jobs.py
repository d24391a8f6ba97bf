"""Bot commands, performed as jobs in the chat's ordered queue on the background loop.

They queue with the messages (not beside them) because several change what the next turn
sees: ``/persona luna`` then ``hi`` must be answered by Luna, and ``/reset`` must not be
undone by a turn that was still running when it arrived. What a command means and how the
answers are worded is pure logic in :mod:`tgstream.steps.commands`; this module performs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from tgstream.connectors.postgres import DatabaseError
from tgstream.dataflows import metrics
from tgstream.dataflows.items import ContextTurn
from tgstream.dataflows.pipeline import Background
from tgstream.dataflows.records import Records
from tgstream.dataflows.turns import Job, JobResult
from tgstream.state.adaptations import AdaptationsUnavailable
from tgstream.state.personas import Persona, PersonaAssignment
from tgstream.steps.commands import (
    ChatStats,
    CommandIntent,
    IntentKind,
    forget_text,
    help_text,
    interpret,
    match_persona,
    persona_list_text,
    persona_not_found_text,
    reset_text,
    stats_text,
    switched_text,
    unknown_command_text,
)

log = structlog.get_logger(__name__)

UNAVAILABLE = "I can't reach my notebook right now, so I couldn't do that. Please try again in a minute."

Outcome = tuple[str, tuple[ContextTurn, ...]]
CLEARS_CONTEXT = frozenset({"reset", "forget"})


class PersonaCommands(Protocol):
    async def resolve(self, chat_id: int) -> PersonaAssignment: ...

    async def assign(self, chat_id: int, user_id: int, persona_name: str) -> PersonaAssignment: ...

    async def list_personas(self) -> list[Persona]: ...


class MemoryCommands(Protocol):
    async def forget_chat(self, chat_id: int) -> int: ...

    async def count(self, chat_id: int) -> int: ...


class FactCommands(Protocol):
    async def forget_chat(self, chat_id: int) -> int: ...


class AdaptationCommands(Protocol):
    async def clear(self, chat_id: int) -> None: ...


def greeting(assignment: PersonaAssignment, first_name: str) -> str:
    """The persona's own greeting (Character Card style ``{{user}}`` filled in), or a default."""
    persona = assignment.persona
    if persona.greeting:
        return persona.greeting.replace("{{user}}", first_name or "there")
    name = persona.name if persona.name != "default" else "your companion"
    hello = f"Hi {first_name}!" if first_name else "Hi!"
    return f"{hello} I'm {name}. Tell me about your day, or type /help to see what I can do."


class CommandRunner:
    """Performs one command job; a Postgres failure becomes a polite answer, never an exception."""

    def __init__(
        self,
        *,
        personas: PersonaCommands,
        memories: MemoryCommands,
        background: Background,
        records: Records,
        facts: FactCommands | None = None,
        adaptations: AdaptationCommands | None = None,
    ) -> None:
        self._personas = personas
        self._memories = memories
        self._facts = facts
        self._adaptations = adaptations
        self._background = background
        self._records = records
        self._handlers: dict[IntentKind, Callable[[Job, CommandIntent], Awaitable[Outcome]]] = {
            "greet": self._greet,
            "help": self._help,
            "list_personas": self._list_personas,
            "switch_persona": self._switch_persona,
            "reset": self._reset,
            "forget": self._forget,
            "stats": self._stats,
            "unknown": self._unknown,
        }

    async def run(self, job: Job) -> JobResult:
        item = job.items[0]
        if item.command is None:
            raise ValueError("CommandRunner got a job without a command")
        intent = interpret(item.command)
        if intent.kind == "erase_user":
            return self._erase_user(job, int(item.command.args))
        summary: str | None = None
        try:
            text, history = await self._handlers[intent.kind](job, intent)
            if intent.kind in CLEARS_CONTEXT:
                summary = ""
        except DatabaseError as exc:
            log.warning("command.database_unavailable", command=intent.kind, error=str(exc))
            metrics.DEGRADED.labels(f"command_{intent.kind}").inc()
            text, history = UNAVAILABLE, job.history
        reply = self._records.reply([item.message], text, kind="command")
        event = self._records.event("command", [item.message], processed_at=item.gated_at, reply=reply)
        return JobResult((reply, event), history, summary)

    def _erase_user(self, job: Job, user_id: int) -> JobResult:
        """Drop the user's turns and the rolling summary (it may quote them); answer nobody.

        Turns from snapshots older than ``ContextTurn.user_ids`` have no authors: they are dropped
        too, since nothing says they are someone else's.
        """
        history = tuple(
            turn
            for turn in job.history
            if (authors := getattr(turn, "user_ids", ())) and user_id not in authors
        )
        self._background.mirror(job.chat_id, history)
        metrics.ERASED_TURNS.inc(len(job.history) - len(history))
        return JobResult((), history, "")

    async def _greet(self, job: Job, intent: CommandIntent) -> Outcome:
        assignment = await self._personas.resolve(job.chat_id)
        return greeting(assignment, job.items[0].message.first_name), job.history

    async def _help(self, job: Job, intent: CommandIntent) -> Outcome:
        assignment = await self._personas.resolve(job.chat_id)
        name = assignment.persona.name if assignment.persona.name != "default" else None
        return help_text(name), job.history

    async def _list_personas(self, job: Job, intent: CommandIntent) -> Outcome:
        current = await self._personas.resolve(job.chat_id)
        names = [p.name for p in await self._personas.list_personas()]
        return persona_list_text(names, current.persona.name), job.history

    async def _switch_persona(self, job: Job, intent: CommandIntent) -> Outcome:
        wanted = intent.persona_name or ""
        names = [p.name for p in await self._personas.list_personas()]
        name = match_persona(wanted, names)
        if name is None:
            return persona_not_found_text(wanted, names), job.history
        assignment = await self._personas.assign(job.chat_id, job.items[0].message.user_id, name)
        return switched_text(assignment.persona.name), job.history

    async def _reset(self, job: Job, intent: CommandIntent) -> Outcome:
        await self._clear_adaptation(job.chat_id)
        self._background.mirror(job.chat_id, ())
        return reset_text(), ()

    async def _forget(self, job: Job, intent: CommandIntent) -> Outcome:
        removed = await self._memories.forget_chat(job.chat_id)
        if self._facts is not None:
            removed += await self._facts.forget_chat(job.chat_id)
        await self._clear_adaptation(job.chat_id)
        self._background.mirror(job.chat_id, ())
        return forget_text(removed), ()

    async def _clear_adaptation(self, chat_id: int) -> None:
        """Best effort: with Redis down the adaptation still lapses by its TTL (30 min)."""
        if self._adaptations is None:
            return
        try:
            await self._adaptations.clear(chat_id)
        except AdaptationsUnavailable as exc:
            log.warning("command.adaptation_not_cleared", error=str(exc))
            metrics.DEGRADED.labels("adaptation_clear").inc()

    async def _stats(self, job: Job, intent: CommandIntent) -> Outcome:
        assignment = await self._personas.resolve(job.chat_id)
        remembered = await self._memories.count(job.chat_id)
        stats = ChatStats(assignment.persona.name, exchanges_in_context=len(job.history), memories=remembered)
        return stats_text(stats), job.history

    async def _unknown(self, job: Job, intent: CommandIntent) -> Outcome:
        return unknown_command_text(intent.command), job.history
