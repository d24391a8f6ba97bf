"""Merge a burst of one chat's queued messages into a single user turn.

People type in bursts ("wait" / "so I was at the store" / "guess who I saw"). Messages that arrive
while a turn is in flight are answered together, as one turn, so the bot replies once to the whole
thought instead of three times to its fragments.

The merged text is capped: a chat that queued 300 messages during an outage must not produce a
prompt that blows the token budget. The *newest* messages are kept (they are what the user is
waiting on) and the omission is stated in the text, so the model does not pretend to have read
everything. Every update_id is kept regardless, so the reply's idempotency key and the analytics
cover the whole burst.

>>> from tgstream.schemas.events import InboundMessage
>>> def msg(uid, text):
...     return InboundMessage(update_id=uid, update_kind="message", chat_id=5, chat_type="private",
...                           user_id=9, message_id=100 + uid, text=text, sent_at=uid, received_at=uid)
>>> turn = merge_burst([msg(1, "wait"), msg(2, "guess who I saw")])
>>> turn.text, turn.update_ids, turn.reply_to_message_id
('wait\\nguess who I saw', (1, 2), 102)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tgstream.schemas.events import InboundMessage

DEFAULT_MAX_CHARS = 4000
DEFAULT_MAX_MESSAGES = 20
_TRUNCATED = " […]"


@dataclass(frozen=True, slots=True)
class MergedTurn:
    """One user turn made of one or more messages, in arrival order."""

    chat_id: int
    user_id: int
    text: str
    update_ids: tuple[int, ...]
    reply_to_message_id: int | None
    first_sent_at: float
    first_received_at: float
    message_count: int
    omitted: int = 0
    user_ids: tuple[int, ...] = ()
    """Every sender of the burst, in order of first message."""


def _message_text(message: InboundMessage) -> str:
    """The text a model should see; media without a caption become a short placeholder."""
    text = message.text.strip()
    if text:
        return text
    kind = message.content_kind or "message"
    return f"[sent a {kind}]"


def merge_burst(
    messages: Sequence[InboundMessage],
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_messages: int = DEFAULT_MAX_MESSAGES,
) -> MergedTurn:
    """Join the texts with newlines, keeping order, all update_ids, and the last message_id to reply to.

    In a group burst with several senders each line is prefixed by its sender's first name, so the
    model can tell who said what. ``max_chars`` bounds the kept messages; the omission note adds a
    few characters on top. Raises ValueError on an empty burst or one spanning two chats: both
    are wiring bugs upstream, and answering them would misroute a reply.
    """
    if not messages:
        raise ValueError("merge_burst needs at least one message")
    chat_id = messages[0].chat_id
    if any(m.chat_id != chat_id for m in messages):
        raise ValueError(
            f"a burst must come from one chat, got chat ids {sorted({m.chat_id for m in messages})}"
        )
    if max_chars < 16 or max_messages < 1:
        raise ValueError("max_chars must be >= 16 and max_messages >= 1")

    several_senders = len({m.user_id for m in messages}) > 1
    lines = [
        f"{m.first_name or 'someone'}: {_message_text(m)}" if several_senders else _message_text(m)
        for m in messages
    ]

    kept: list[str] = []
    used = 0
    for line in reversed(lines[-max_messages:]):
        cost = len(line) + (1 if kept else 0)
        if used + cost > max_chars:
            if not kept:
                kept.append(line[: max_chars - len(_TRUNCATED)] + _TRUNCATED)
            break
        kept.append(line)
        used += cost
    kept.reverse()
    omitted = len(lines) - len(kept)
    if omitted:
        note = f"[{omitted} earlier message{'s' if omitted != 1 else ''} omitted]"
        kept.insert(0, note)

    last_with_id = next((m.message_id for m in reversed(messages) if m.message_id is not None), None)
    return MergedTurn(
        chat_id=chat_id,
        user_id=messages[-1].user_id,
        text="\n".join(kept),
        update_ids=tuple(m.update_id for m in messages),
        reply_to_message_id=last_with_id,
        first_sent_at=min(m.sent_at for m in messages),
        first_received_at=min(m.received_at for m in messages),
        message_count=len(messages),
        omitted=omitted,
        user_ids=tuple(dict.fromkeys(m.user_id for m in messages)),
    )
