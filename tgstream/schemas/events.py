"""Versioned internal events that travel between tgstream's processes as JSON Kafka values.

Each model carries ``v``; a consumer rejects a version it does not know (to the dead-letter
topic) instead of guessing. Times are float Unix seconds, stamped by each stage, so the
end-to-end and per-stage latency of every message can be computed from the events alone.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tgstream.schemas.telegram import MAX_TELEGRAM_ID, Update

SCHEMA_VERSION = 1

ContentKind = str
ReplyKind = Literal["reply", "notice", "fallback", "command", "typing"]
EventType = Literal[
    "message_in", "reply_out", "rate_limited", "spam_blocked", "command", "ignored", "llm_error"
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class InboundMessage(BaseModel):
    """A Telegram update normalised by the gateway or poller; the value of ``telegram_messages``."""

    model_config = _STRICT

    v: Literal[1] = 1
    update_id: int = Field(ge=0, le=MAX_TELEGRAM_ID)
    update_kind: str
    chat_id: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    chat_type: str
    user_id: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    first_name: str = ""
    language_code: str | None = None
    message_id: int | None = None
    content_kind: ContentKind = "text"
    text: str = ""
    sent_at: float = Field(description="Telegram's own message date")
    received_at: float = Field(description="when the gateway or poller accepted the update")

    @classmethod
    def from_update(cls, update: Update, *, received_at: float) -> InboundMessage | None:
        """Flatten an update into the one shape the dataflow handles, or None when it has no chat."""
        message = update.message or update.edited_message or update.channel_post
        if message is not None:
            sender = message.from_
            user_id = sender.id if sender else (message.sender_chat or message.chat).id
            return cls(
                update_id=update.update_id,
                update_kind=update.kind,
                chat_id=message.chat.id,
                chat_type=str(message.chat.type),
                user_id=user_id,
                first_name=sender.first_name if sender else "",
                language_code=sender.language_code if sender else None,
                message_id=message.message_id,
                content_kind=message.content_kind,
                text=message.text if message.text is not None else (message.caption or ""),
                sent_at=float(message.date),
                received_at=received_at,
            )
        query = update.callback_query
        if query is not None and query.message is not None:
            return cls(
                update_id=update.update_id,
                update_kind=update.kind,
                chat_id=query.message.chat.id,
                chat_type=str(query.message.chat.type),
                user_id=query.from_.id,
                first_name=query.from_.first_name,
                message_id=query.message.message_id,
                content_kind="callback",
                text=query.data or "",
                sent_at=received_at,
                received_at=received_at,
            )
        member = update.my_chat_member
        if member is not None:
            return cls(
                update_id=update.update_id,
                update_kind=update.kind,
                chat_id=member.chat.id,
                chat_type=str(member.chat.type),
                user_id=member.from_.id,
                first_name=member.from_.first_name,
                content_kind=f"member_{member.new_status}",
                sent_at=float(member.date),
                received_at=received_at,
            )
        return None


class PromptMessage(BaseModel):
    model_config = _STRICT

    role: Literal["system", "user", "assistant"]
    content: str


class TurnRequest(BaseModel):
    """One LLM turn for one chat: a burst of user messages merged, with its assembled prompt."""

    model_config = _STRICT

    v: Literal[1] = 1
    chat_id: int
    user_id: int
    update_ids: tuple[int, ...]
    persona_id: str
    messages: tuple[PromptMessage, ...]
    memories_used: int = 0
    received_at: float
    enriched_at: float


ERASE_USER_KIND = "erase_user"
"""An update kind that no Telegram update has: ``tgstream forget --user`` asks the dataflow to drop
one user's turns from one chat's state. It travels that chat's partition like any message, so it
is handled after everything the user said there before it."""

_ERASE_ID_BASE = 2**52


def erase_request(chat_id: int, user_id: int, *, now: float, index: int = 0) -> InboundMessage:
    """The record that erases ``user_id`` from ``chat_id``'s dataflow state.

    Its update id lies above every real Telegram update id (below 2**52 for any bot today), so it
    never meets a real update in the gateway's dedupe or the replay guard.
    """
    return InboundMessage(
        update_id=_ERASE_ID_BASE + (int(now * 1_000_000) + index) % _ERASE_ID_BASE,
        update_kind=ERASE_USER_KIND,
        chat_id=chat_id,
        chat_type="private" if chat_id == user_id else "group",
        user_id=user_id,
        sent_at=now,
        received_at=now,
    )


def idempotency_key(chat_id: int, update_ids: tuple[int, ...] | list[int], kind: str = "reply") -> str:
    """A reply's identity: the same inputs always give the same key, so replays dedupe at the sender."""
    joined = ",".join(str(u) for u in sorted(update_ids))
    digest = hashlib.blake2b(f"{chat_id}|{kind}|{joined}".encode(), digest_size=12).hexdigest()
    return f"{chat_id}:{digest}"


class Reply(BaseModel):
    """A message for the sender to deliver; the value of ``telegram_responses``."""

    model_config = _STRICT

    v: Literal[1] = 1
    idempotency_key: str
    kind: ReplyKind = "reply"
    chat_id: int
    chat_type: str = "private"
    text: str = ""
    reply_to_message_id: int | None = None
    update_ids: tuple[int, ...] = ()
    persona_id: str | None = None
    received_at: float
    emitted_at: float


class ConversationEvent(BaseModel):
    """One analytics fact about a conversation; user and chat ids are salted hashes."""

    model_config = _STRICT

    v: Literal[1] = 1
    event_id: str
    event_type: EventType
    chat_hash: str
    user_hash: str
    chat_type: str
    update_ids: tuple[int, ...] = ()
    persona_id: str | None = None
    content_kind: str = "text"
    text_chars: int = 0
    reply_chars: int = 0
    spam_score: float = 0.0
    spam_reasons: tuple[str, ...] = ()
    rate_window: str | None = None
    memories_used: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_ms: float | None = None
    degraded: tuple[str, ...] = ()
    sent_at: float
    received_at: float
    processed_at: float
    llm_started_at: float | None = None
    llm_finished_at: float | None = None
    emitted_at: float
