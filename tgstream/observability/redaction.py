"""structlog processors that keep secrets and raw Telegram ids out of every log line.

They run last, on the fully built event dict (after exceptions were rendered to text), because a
secret most often leaks through text nobody meant to log: an aiohttp error carrying the request
URL ``/bot<token>/sendMessage``, a DSN with a password in a connection error, a settings dump.

Ids are hashed with the same salted hash the analytics use (``Records.hash_id``), so an operator
can follow one user from a log line to their Parquet rows without ever seeing the Telegram id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr
from structlog.typing import EventDict, WrappedLogger

from tgstream.config import Settings
from tgstream.dataflows.records import Records

REDACTED = "[REDACTED]"

SECRET_KEY_PARTS = frozenset(
    {"token", "secret", "password", "passwd", "pwd", "apikey", "authorization", "cookie", "salt", "dsn"}
)
ID_KEYS = frozenset({"chat_id", "user_id", "from_id", "from_user_id", "sender_id"})
ID_LIST_KEYS = frozenset({"chat_ids", "user_ids"})

_BOT_PATH = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>[^@/\s]+)@")
_MIN_SECRET_LEN = 6
_MAX_DEPTH = 8


def is_secret_key(key: str) -> bool:
    """True for names like ``bot_token``, ``X-Telegram-Bot-Api-Secret-Token`` or ``api_key``.

    Matched on whole name parts, so ``prompt_tokens`` (a count worth logging) stays visible.

    >>> [is_secret_key(k) for k in ("bot_token", "api_key", "prompt_tokens", "idempotency_key")]
    [True, True, False, False]
    """
    lowered = key.lower().replace("-", "_")
    if "api_key" in lowered:
        return True
    return any(part in SECRET_KEY_PARTS for part in lowered.split("_"))


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Every secret the settings hold: SecretStr fields, the bot token's secret half, URL passwords."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            found.add(secret)
            if name == "telegram_bot_token":
                found.add(secret.partition(":")[2])
        elif isinstance(value, str) and "://" in value:
            password = urlsplit(value).password
            if password:
                found.update({password, unquote(password)})
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET_LEN), key=len, reverse=True))


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """Remove known secret values, bot tokens in Bot API paths, and passwords in URLs.

    >>> scrub_text("POST https://api.telegram.org/bot123:AAE-x_y/sendMessage", ())
    'POST https://api.telegram.org/bot[REDACTED]/sendMessage'
    >>> scrub_text("redis://default:hunter22@redis:6379/0 down", ())
    'redis://default:[REDACTED]@redis:6379/0 down'
    """
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _BOT_PATH.sub("/bot" + REDACTED, text)
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)


class SecretRedactor:
    """Processor: redacts secret-named keys anywhere in the event and secret text in every value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(secrets)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(key, value, 0) for key, value in event_dict.items()}

    def _clean(self, key: str, value: Any, depth: int) -> Any:
        if is_secret_key(key) and value is not None:
            return REDACTED
        return self._clean_value(value, depth)

    def _clean_value(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, SecretStr):
            return REDACTED
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {str(k): self._clean(str(k), v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean_value(v, depth + 1) for v in value]
        # Anything else is logged as text, so scrub the text it will be rendered as.
        return scrub_text(value if isinstance(value, str) else str(value), self._secrets)


class IdHasher:
    """Processor: replaces Telegram chat and user ids with their salted analytics hash."""

    def __init__(self, hash_id: Callable[[int], str]) -> None:
        self._hash_id = hash_id

    @classmethod
    def from_settings(cls, settings: Settings) -> IdHasher:
        return cls(Records(settings.analytics_salt).hash_id)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key in ID_KEYS.intersection(event_dict):
            event_dict[key] = self._hashed(event_dict[key])
        for key in ID_LIST_KEYS.intersection(event_dict):
            values = event_dict[key]
            if isinstance(values, list | tuple | set | frozenset):
                event_dict[key] = [self._hashed(v) for v in values]
        return event_dict

    def _hashed(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return self._hash_id(value)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return self._hash_id(int(value))
        return value
