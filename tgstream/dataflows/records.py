"""Builds the Replies and ConversationEvents every step emits, so keys and hashes are made one way.

Identity is derived from the inputs only: a reply's idempotency key and an event's id are pure
functions of ``(chat_id, kind, update_ids)``. After a crash Bytewax replays the last epoch and the
same inputs produce the same keys, so the sender and the analytics can drop the duplicates.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

from pydantic import SecretStr

from tgstream.schemas.events import (
    ConversationEvent,
    EventType,
    InboundMessage,
    Reply,
    ReplyKind,
    idempotency_key,
)
from tgstream.steps.privacy import hash_id

GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})


def event_id(chat_id: int, event_type: str, update_ids: Sequence[int]) -> str:
    """Deterministic id of the event a set of updates produced; a replay gives the same id."""
    joined = ",".join(str(u) for u in sorted(update_ids))
    digest = hashlib.blake2b(f"{chat_id}|{event_type}|{joined}".encode(), digest_size=12).hexdigest()
    return f"{event_type}:{digest}"


class Records:
    """Factory for outgoing records; holds the analytics salt so no caller ever sees it."""

    def __init__(self, salt: SecretStr, *, clock: Callable[[], float] = time.time) -> None:
        self._salt = salt.get_secret_value().encode()
        self._clock = clock
        self._hash_cache: dict[int, str] = {}

    def hash_id(self, value: int) -> str:
        """The analytics hash of a Telegram id; cached because one chat produces many events."""
        cached = self._hash_cache.get(value)
        if cached is None:
            cached = hash_id(value, self._salt)
            if len(self._hash_cache) > 100_000:
                self._hash_cache.clear()
            self._hash_cache[value] = cached
        return cached

    def reply(
        self,
        messages: Sequence[InboundMessage],
        text: str,
        *,
        kind: ReplyKind = "reply",
        persona_id: str | None = None,
    ) -> Reply:
        """A reply to a burst of messages (or one); keyed by the chat and all their update_ids."""
        first, last = messages[0], messages[-1]
        update_ids = tuple(m.update_id for m in messages)
        return Reply(
            idempotency_key=idempotency_key(first.chat_id, update_ids, kind),
            kind=kind,
            chat_id=first.chat_id,
            chat_type=first.chat_type,
            text=text,
            reply_to_message_id=last.message_id if last.chat_type in GROUP_CHAT_TYPES else None,
            update_ids=update_ids,
            persona_id=persona_id,
            received_at=min(m.received_at for m in messages),
            emitted_at=self._clock(),
        )

    def event(
        self,
        event_type: EventType,
        messages: Sequence[InboundMessage],
        *,
        processed_at: float,
        reply: Reply | None = None,
        **fields: object,
    ) -> ConversationEvent:
        """One analytics fact about ``messages``; extra fields are ConversationEvent columns."""
        first = messages[0]
        update_ids = tuple(m.update_id for m in messages)
        return ConversationEvent.model_validate(
            {
                "event_id": event_id(first.chat_id, event_type, update_ids),
                "event_type": event_type,
                "chat_hash": self.hash_id(first.chat_id),
                "user_hash": self.hash_id(first.user_id),
                "chat_type": first.chat_type,
                "update_ids": update_ids,
                "content_kind": first.content_kind,
                "text_chars": sum(len(m.text) for m in messages),
                "reply_chars": len(reply.text) if reply is not None else 0,
                "persona_id": reply.persona_id if reply is not None else None,
                "sent_at": min(m.sent_at for m in messages),
                "received_at": min(m.received_at for m in messages),
                "processed_at": processed_at,
                "emitted_at": self._clock(),
                **fields,
            }
        )
