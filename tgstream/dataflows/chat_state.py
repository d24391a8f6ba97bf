"""The per-chat gate: rate limits, spam scoring and command recognition, as keyed Bytewax state.

Everything here is cheap and synchronous (the I/O-bound work happens in the turn step), so it
runs on the worker thread directly. The decisions themselves are pure functions in
``tgstream.steps``; this module only holds each chat's state between messages, snapshots it
for recovery (so limits are exact across restarts), and turns decisions into records.

State per chat, each piece capped: the per-user rate counters (at most 512 users per group),
the spam history (the last few messages), and when the chat was last told about spam. An idle
chat is discarded once all its rate windows have rolled over, at the latest a day later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bytewax.operators import StatefulBatchLogic

from tgstream.dataflows.items import Admitted
from tgstream.dataflows.records import Records
from tgstream.schemas.events import ERASE_USER_KIND, ConversationEvent, InboundMessage, Reply
from tgstream.schemas.pickling import fast_pickle
from tgstream.steps.commands import ERASE_USER_COMMAND, Command, parse_command
from tgstream.steps.rate_limit import RateLimiter, RateState, polite_notice
from tgstream.steps.spam import SpamHistory, SpamScorer

GateOutput = Admitted | Reply | ConversationEvent
CommandParser = Callable[[str], Command | None]

ANSWERED_KINDS = frozenset({"message", "channel_post"})
SPAM_NOTICE_EVERY_S = 3600.0
SPAM_NOTICE = (
    "That last message looked like spam to me, so I skipped it. "
    "If I got it wrong, just say it again in your own words."
)


@fast_pickle
@dataclass(frozen=True, slots=True)
class GateSnapshot:
    rates: tuple[tuple[int, RateState], ...]
    spam: SpamHistory
    spam_noticed_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The stateless half of the gate, shared by every chat on a worker."""

    limiter: RateLimiter
    scorer: SpamScorer
    records: Records
    parse_command: CommandParser = parse_command
    clock: Callable[[], float] = time.time


class ChatGate(StatefulBatchLogic[InboundMessage, GateOutput, GateSnapshot]):
    """One chat's gate; emits Admitted messages and commands, plus notices and events for the rest."""

    def __init__(self, policy: GatePolicy, resume: GateSnapshot | None = None) -> None:
        self._policy = policy
        self.rates: dict[int, RateState] = dict(resume.rates) if resume else {}
        self.spam = resume.spam if resume else SpamHistory()
        self.spam_noticed_at = resume.spam_noticed_at if resume else float("-inf")
        self.last_seen = resume.last_seen if resume else policy.clock()

    def on_batch(self, values: list[InboundMessage]) -> tuple[Iterable[GateOutput], bool]:
        out: list[GateOutput] = []
        for message in values:
            self._admit(message, out)
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[GateOutput], bool]:
        now = self._policy.clock()
        idle = all(self._policy.limiter.is_idle(state, now) for state in self.rates.values())
        return (), StatefulBatchLogic.DISCARD if idle else StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        """Wake when the longest rate window has rolled over, to drop this chat if it went quiet."""
        longest = max(w.seconds for w in self._policy.limiter.windows)
        return datetime.fromtimestamp((self.last_seen // longest + 1) * longest + 1, tz=UTC)

    def snapshot(self) -> GateSnapshot:
        return GateSnapshot(tuple(self.rates.items()), self.spam, self.spam_noticed_at, self.last_seen)

    def _admit(self, message: InboundMessage, out: list[GateOutput]) -> None:
        policy = self._policy
        now = policy.clock()
        self.last_seen = now
        if message.update_kind == ERASE_USER_KIND:
            # The gate keeps recent texts for spam scoring: they go here, the turns in the turn step.
            self.spam = self.spam.without_user(message.user_id)
            self.rates.pop(message.user_id, None)
            out.append(
                Admitted(message, gated_at=now, command=Command(ERASE_USER_COMMAND, str(message.user_id)))
            )
            return
        text = message.text.strip()
        if message.update_kind not in ANSWERED_KINDS or not text:
            out.append(policy.records.event("ignored", [message], processed_at=now))
            return

        self.rates, decision = policy.limiter.check_user(self.rates, message.user_id, now)
        if not decision.allowed:
            out.append(
                policy.records.event("rate_limited", [message], processed_at=now, rate_window=decision.window)
            )
            if decision.notify:
                notice = polite_notice(decision.window, decision.retry_after_s)
                out.append(policy.records.reply([message], notice, kind="notice"))
            return

        command = policy.parse_command(text)
        if command is not None:
            out.append(Admitted(message, gated_at=now, command=command))
            return

        self.spam, verdict = policy.scorer.score(self.spam, text, user_id=message.user_id, now=now)
        if verdict.is_spam:
            out.append(
                policy.records.event(
                    "spam_blocked",
                    [message],
                    processed_at=now,
                    spam_score=verdict.score,
                    spam_reasons=verdict.reasons,
                )
            )
            if now - self.spam_noticed_at >= SPAM_NOTICE_EVERY_S:
                self.spam_noticed_at = now
                out.append(policy.records.reply([message], SPAM_NOTICE, kind="notice"))
            return
        out.append(Admitted(message, gated_at=now, spam_score=verdict.score, spam_reasons=verdict.reasons))
