"""Erase requests (from `tgstream forget --user`) in the gate and the command runner, no services."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from tgstream.dataflows.chat_state import ChatGate, GatePolicy
from tgstream.dataflows.command_jobs import CommandRunner
from tgstream.dataflows.items import Admitted, ContextTurn
from tgstream.dataflows.records import Records
from tgstream.dataflows.turns import Job
from tgstream.schemas.events import InboundMessage, erase_request
from tgstream.steps.commands import ERASE_USER_COMMAND, interpret, parse_command
from tgstream.steps.rate_limit import RateLimiter
from tgstream.steps.spam import SpamScorer

GROUP, ANN, BOB = -100, 1, 2


def message(user_id: int, text: str, update_id: int) -> InboundMessage:
    return InboundMessage(
        update_id=update_id,
        update_kind="message",
        chat_id=GROUP,
        chat_type="group",
        user_id=user_id,
        text=text,
        sent_at=0.0,
        received_at=0.0,
    )


def gate() -> ChatGate:
    records = Records(SecretStr("salt"))
    return ChatGate(
        GatePolicy(limiter=RateLimiter(), scorer=SpamScorer(), records=records, clock=lambda: 50.0)
    )


def test_the_gate_forwards_an_erase_as_a_command_and_drops_the_users_texts() -> None:
    logic = gate()
    logic.on_batch([message(ANN, "my code is 4711", 1), message(BOB, "hi all", 2)])
    assert {e.user_id for e in logic.spam.entries} == {ANN, BOB}
    out, _ = logic.on_batch([erase_request(GROUP, ANN, now=60.0)])
    [admitted] = list(out)
    assert isinstance(admitted, Admitted)
    assert admitted.command is not None
    assert (admitted.command.name, admitted.command.args) == (ERASE_USER_COMMAND, str(ANN))
    assert {e.user_id for e in logic.spam.entries} == {BOB}
    assert ANN not in logic.rates
    assert "4711" not in repr(logic.snapshot())


def test_no_typed_text_becomes_an_erase() -> None:
    typed = parse_command(f"/{ERASE_USER_COMMAND} 1")
    assert typed is None or interpret(typed).kind != "erase_user"


def test_erase_request_ids_sit_above_telegram_update_ids() -> None:
    request = erase_request(GROUP, ANN, now=1_800_000_000.0)
    assert request.update_id >= 2**52
    assert erase_request(GROUP, ANN, now=1_800_000_000.0, index=1).update_id != request.update_id


class Mirror:
    def __init__(self) -> None:
        self.written: list[tuple[int, tuple[ContextTurn, ...]]] = []

    def mirror(self, chat_id: int, history: tuple[ContextTurn, ...]) -> None:
        self.written.append((chat_id, history))

    def remember(self, chat_id: int, user_id: int, user_text: str, reply: str) -> None:
        raise AssertionError("an erase remembers nothing")


def test_the_erase_job_keeps_only_other_peoples_turns_and_answers_nobody() -> None:
    history = (
        ContextTurn("ann: my code is 4711", "noted", 1.0, (ANN,)),
        ContextTurn("bob: hi", "hi bob", 2.0, (BOB,)),
        ContextTurn("ann: x\nbob: y", "both", 3.0, (ANN, BOB)),
        ContextTurn("from an old snapshot", "?", 0.5),
    )
    mirror = Mirror()
    runner = CommandRunner(
        personas=None,  # type: ignore[arg-type]
        memories=None,  # type: ignore[arg-type]
        background=mirror,
        records=Records(SecretStr("salt")),
    )
    request = gate().on_batch([erase_request(GROUP, ANN, now=60.0)])[0]
    [admitted] = list(request)
    job = Job(GROUP, (admitted,), history, summary="ann said 4711")  # type: ignore[arg-type]
    result = asyncio.run(runner.run(job))
    assert result.outputs == ()
    assert [t.user for t in result.history] == ["bob: hi"]
    assert result.summary == ""
    assert mirror.written == [(GROUP, result.history)]
