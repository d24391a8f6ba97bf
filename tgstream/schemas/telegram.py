"""The subset of Telegram's Update object that tgstream handles.

Telegram adds fields often; every model ignores what it does not know so that a Bot API
upgrade never turns into rejected updates. Only ``update_id`` is structurally required:
an update of a kind we do not handle is still valid, it is simply not a chat message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TEXT_UTF16 = 4096
MAX_TELEGRAM_ID = 2**53

ChatType = Literal["private", "group", "supergroup", "channel", "sender"]

_TOLERANT = ConfigDict(extra="ignore", frozen=True)


class User(BaseModel):
    model_config = _TOLERANT

    id: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    is_bot: bool = False
    first_name: str = ""
    username: str | None = None
    language_code: str | None = None


class Chat(BaseModel):
    model_config = _TOLERANT

    id: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    type: ChatType | str = "private"
    title: str | None = None
    username: str | None = None


class Message(BaseModel):
    """A message or channel post; ``text`` is absent for media, which ``content_kind`` names."""

    model_config = _TOLERANT

    message_id: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    date: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    chat: Chat
    from_: User | None = Field(default=None, alias="from")
    sender_chat: Chat | None = None
    text: str | None = None
    caption: str | None = None
    photo: list[dict[str, object]] | None = None
    sticker: dict[str, object] | None = None
    voice: dict[str, object] | None = None
    video: dict[str, object] | None = None
    document: dict[str, object] | None = None
    audio: dict[str, object] | None = None
    animation: dict[str, object] | None = None
    location: dict[str, object] | None = None
    contact: dict[str, object] | None = None
    poll: dict[str, object] | None = None

    @property
    def content_kind(self) -> str:
        if self.text is not None:
            return "text"
        for kind in (
            "photo",
            "sticker",
            "voice",
            "video",
            "document",
            "audio",
            "animation",
            "location",
            "contact",
            "poll",
        ):
            if getattr(self, kind) is not None:
                return kind
        return "other"


class CallbackQuery(BaseModel):
    model_config = _TOLERANT

    id: str
    from_: User = Field(alias="from")
    message: Message | None = None
    data: str | None = None


class ChatMemberUpdated(BaseModel):
    model_config = _TOLERANT

    chat: Chat
    from_: User = Field(alias="from")
    date: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    old_chat_member: dict[str, object] = Field(default_factory=dict)
    new_chat_member: dict[str, object] = Field(default_factory=dict)

    @property
    def new_status(self) -> str:
        status = self.new_chat_member.get("status")
        return status if isinstance(status, str) else "unknown"


class Update(BaseModel):
    """One Telegram update; at most one of the optional payloads is set."""

    model_config = _TOLERANT

    update_id: int = Field(ge=0, le=MAX_TELEGRAM_ID)
    message: Message | None = None
    edited_message: Message | None = None
    channel_post: Message | None = None
    callback_query: CallbackQuery | None = None
    my_chat_member: ChatMemberUpdated | None = None

    @property
    def kind(self) -> str:
        for kind in ("message", "edited_message", "channel_post", "callback_query", "my_chat_member"):
            if getattr(self, kind) is not None:
                return kind
        return "unsupported"
