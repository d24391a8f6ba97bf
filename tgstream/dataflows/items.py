"""The values that travel between the dataflow's steps (not on the wire: Kafka carries schemas/).

They are frozen slotted dataclasses: cheap to build on the hot path, safe to share between a
live logic and its snapshot, and picklable for Bytewax recovery.
"""

from __future__ import annotations

from dataclasses import dataclass

from tgstream.schemas.events import InboundMessage
from tgstream.schemas.pickling import fast_pickle
from tgstream.steps.commands import Command


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A Kafka record we could not accept; it leaves the flow with its original bytes and the reason."""

    reason: str
    value: bytes | None
    key: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@fast_pickle
@dataclass(frozen=True, slots=True)
class Admitted:
    """A message that passed the rate limit and spam check, on its way to the turn step.

    ``command`` is set for bot commands: they travel the same ordered queue as messages, so
    "/persona luna" followed by "hi" is answered by Luna.
    """

    message: InboundMessage
    gated_at: float
    spam_score: float = 0.0
    spam_reasons: tuple[str, ...] = ()
    command: Command | None = None

    @property
    def chat_id(self) -> int:
        return self.message.chat_id


@fast_pickle
@dataclass(frozen=True, slots=True)
class ContextTurn:
    """One exchange of the context window: the (merged) user text and the bot's answer.

    ``user_ids`` are the authors of the user text (several in a group burst), so that erasing
    one user (``tgstream forget --user``) can drop exactly their turns from a shared chat.
    """

    user: str
    assistant: str
    at: float
    user_ids: tuple[int, ...] = ()
