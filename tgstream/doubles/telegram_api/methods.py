"""The Bot API methods the double implements, with Telegram's validation and error wording."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tgstream.doubles.telegram_api.faults import Faults
from tgstream.doubles.telegram_api.markup import EntityParseError, parse_html, parse_markdown_v2
from tgstream.doubles.telegram_api.protocol import ApiError, Params, bad_request
from tgstream.doubles.telegram_api.store import BotStore, WebhookConfig
from tgstream.doubles.telegram_api.webhook import RetryPolicy, WebhookDeliverer
from tgstream.steps.split import TELEGRAM_TEXT_LIMIT, utf16_len

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)

Method = Callable[[Params], Awaitable[Any]]


def _chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"chat{chat_id}"}


class FakeBotApi:
    """One bot's view of the API: its store, its faults and its webhook deliverer."""

    def __init__(self, bot_id: int, store: BotStore, faults: Faults, policy: RetryPolicy) -> None:
        self.bot_id = bot_id
        self.store = store
        self.faults = faults
        self.policy = policy
        self.deliverer: WebhookDeliverer | None = None
        self._poll_generation = 0
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "tgstream fake bot",
            "username": "tgstream_fake_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.methods: dict[str, Method] = {
            "getme": self.get_me,
            "getupdates": self.get_updates,
            "setwebhook": self.set_webhook,
            "deletewebhook": self.delete_webhook,
            "getwebhookinfo": self.get_webhook_info,
            "sendmessage": self.send_message,
            "sendchataction": self.send_chat_action,
            "editmessagetext": self.edit_message_text,
        }

    async def call(self, method: str, params: Params) -> Any:
        handler = self.methods.get(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        error = self.faults.check(method, params.chat_id() if params.has("chat_id") else None)
        if error is not None:
            raise error
        return await handler(params)

    async def get_me(self, params: Params) -> Any:
        return self.bot_user

    async def get_updates(self, params: Params) -> Any:
        if self.store.webhook is not None:
            raise ApiError(409, _WEBHOOK_ACTIVE)
        self._poll_generation += 1
        generation = self._poll_generation
        self.store.wake_polls()
        offset = params.optional_int("offset")
        limit = min(max(params.get_int("limit", 100), 1), 100)
        timeout = max(params.get_int("timeout", 0), 0)
        if offset is not None and offset > 0:
            self.store.confirm(offset)
        deadline = time.monotonic() + timeout
        while True:
            batch = self.store.take(limit, offset)
            if batch or time.monotonic() >= deadline:
                return batch
            await self.store.wait_for_updates(deadline - time.monotonic())
            if generation != self._poll_generation:
                raise ApiError(409, _POLL_CONFLICT)
            if self.store.webhook is not None:
                raise ApiError(409, _WEBHOOK_ACTIVE)

    async def set_webhook(self, params: Params) -> Any:
        url = params.get_str("url", "")
        if not url:
            return await self.delete_webhook(params)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token", "") or None
        if secret is not None and not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.get_int("max_connections", 40)
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        await self._stop_delivery()
        if params.get_bool("drop_pending_updates"):
            self.store.pending.clear()
        self.store.webhook_generation += 1
        self.store.webhook = WebhookConfig(url, secret, max_connections, self.store.webhook_generation)
        self.store.wake_polls()
        self.deliverer = WebhookDeliverer(self.store, self.store.webhook, self.policy)
        await self.deliverer.start()
        return True

    async def delete_webhook(self, params: Params) -> Any:
        await self.forget_webhook()
        if params.get_bool("drop_pending_updates"):
            self.store.pending.clear()
        return True

    async def forget_webhook(self) -> None:
        await self._stop_delivery()
        self.store.webhook = None

    async def _stop_delivery(self) -> None:
        if self.deliverer is not None:
            deliverer, self.deliverer = self.deliverer, None
            await deliverer.stop()

    async def get_webhook_info(self, params: Params) -> Any:
        webhook = self.store.webhook
        info: dict[str, Any] = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.store.pending),
        }
        if webhook is not None:
            info["max_connections"] = webhook.max_connections
        if self.store.last_webhook_error is not None:
            info["last_error_date"] = int(self.store.last_webhook_error[0])
            info["last_error_message"] = self.store.last_webhook_error[1]
        return info

    def queue_updates(self, updates: list[dict[str, Any]]) -> list[int]:
        """Simulated users' updates: to the webhook when one is set, otherwise to getUpdates."""
        ids = self.store.add_updates(updates)
        if self.deliverer is not None:
            self.deliverer.enqueue([self.store.pending[i] for i in ids if i in self.store.pending])
        return ids

    async def send_message(self, params: Params) -> Any:
        chat_id = params.chat_id()
        text, visible, parse_mode = self._text(params)
        reply = params.get_json("reply_parameters")
        reply_to = params.optional_int("reply_to_message_id")
        if isinstance(reply, dict) and isinstance(reply.get("message_id"), int):
            reply_to = reply["message_id"]
        entry = self.store.record(
            "message", chat_id, text=text, visible_text=visible, parse_mode=parse_mode, reply_to=reply_to
        )
        return self._message(chat_id, entry.message_id, visible, entry.wall)

    async def edit_message_text(self, params: Params) -> Any:
        if params.has("inline_message_id"):
            raise bad_request("inline messages are not supported by this test double")
        chat_id = params.chat_id()
        message_id = params.get_int("message_id")
        text, visible, parse_mode = self._text(params)
        current = self.store.texts.get((chat_id, message_id))
        if current is None:
            raise bad_request("message to edit not found")
        if current == visible:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message"
            )
        entry = self.store.record(
            "edit", chat_id, text=text, visible_text=visible, parse_mode=parse_mode, message_id=message_id
        )
        return {**self._message(chat_id, message_id, visible, entry.wall), "edit_date": int(entry.wall)}

    async def send_chat_action(self, params: Params) -> Any:
        chat_id = params.chat_id()
        action = params.get_str("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.store.record("action", chat_id, action=action)
        return True

    def _text(self, params: Params) -> tuple[str, str, str | None]:
        """The raw text, what the user sees, and the parse mode, validated like Telegram does."""
        text = params.get_str("text", "")
        parse_mode = params.get_str("parse_mode", "") or None
        try:
            if parse_mode is None:
                visible = text
            elif parse_mode.lower() == "html":
                visible = parse_html(text)
            elif parse_mode.lower() == "markdownv2":
                visible = parse_markdown_v2(text)
            else:
                raise bad_request(f"unsupported parse_mode {parse_mode!r}")
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from exc
        if not visible.strip():
            raise bad_request("message text is empty")
        if utf16_len(visible) > TELEGRAM_TEXT_LIMIT:
            raise bad_request("message is too long")
        return text, visible, parse_mode

    def _message(self, chat_id: int, message_id: int | None, text: str, wall: float) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(wall),
            "chat": _chat(chat_id),
            "from": self.bot_user,
            "text": text,
        }

    async def close(self) -> None:
        await self._stop_delivery()
        self.store.wake_polls()
