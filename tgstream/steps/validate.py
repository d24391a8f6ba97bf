"""Turn a raw ``telegram_messages`` value into an InboundMessage, repairing what can be repaired.

The seed rejected any text containing ``<script``, ``javascript:`` or more than ten quotes. We do
not: message text is data that goes to a model and back to Telegram as plain text (the sender
escapes it), and "what does <script> do?" is a fair question. What we *do* fix is what would break
a later stage:

* NUL characters (Postgres ``text`` refuses them) are removed;
* lone UTF-16 surrogates (valid in JSON escapes, invalid in UTF-8, so every encoder downstream
  would fail on them) are removed; orjson refuses such values, so they take a slower stdlib path;
* bytes that are not UTF-8 become U+FFFD instead of losing the whole message;
* text over Telegram's 4096 UTF-16 code units is truncated (never splitting a surrogate pair).

Each repair is named in :attr:`Parsed.repairs` (for the event's ``degraded`` field and metrics).
Anything still invalid (not JSON, wrong shape, unknown version) becomes an :class:`InvalidRecord`
whose ``reason`` is short enough for a dead-letter header; the dataflow wraps it with the record's
topic, partition and offset.

>>> parse_inbound(None)
InvalidRecord(reason='empty value')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tgstream.schemas.codec import DecodeError, decode
from tgstream.schemas.events import InboundMessage
from tgstream.schemas.telegram import MAX_TEXT_UTF16

MAX_VALUE_BYTES = 1_048_576
_REASON_CAP = 500


@dataclass(frozen=True, slots=True)
class Parsed:
    message: InboundMessage
    repairs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    reason: str


def _clean(value: str) -> str:
    """Without NULs and lone surrogates; O(len) in C."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value.encode("utf-8", "ignore").decode("utf-8")


def clean_tree(value: Any) -> Any:
    """``value`` with NULs and lone surrogates removed from every string, keys included."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(str(k)): clean_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_tree(v) for v in value]
    return value


def truncate_utf16(text: str, limit: int = MAX_TEXT_UTF16) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 code units.

    >>> truncate_utf16("ab😀", 3)
    'ab'
    """
    if len(text) <= limit // 2 or len(text.encode("utf-16-le", "surrogatepass")) // 2 <= limit:
        return text
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:i]
    return text


def _slow_path(raw: bytes | str) -> InboundMessage:
    """Lenient parse for values orjson refuses over surrogates or bad UTF-8; then strict validation."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    cleaned = clean_tree(data)
    return decode(InboundMessage, json.dumps(cleaned, ensure_ascii=False))


def parse_inbound(raw: bytes | str | None) -> Parsed | InvalidRecord:
    """Decode, validate and repair one Kafka value; never raises for bad input."""
    if raw is None or len(raw) == 0:
        return InvalidRecord("empty value")
    if len(raw) > MAX_VALUE_BYTES:
        return InvalidRecord(f"value too large: {len(raw)} bytes > {MAX_VALUE_BYTES}")
    repairs: list[str] = []
    try:
        message = decode(InboundMessage, raw)
    except DecodeError as exc:
        if "surrogate" not in exc.reason and "UTF-8" not in exc.reason:
            return InvalidRecord(exc.reason[:_REASON_CAP])
        try:
            message = _slow_path(raw)
        except DecodeError as slow_exc:
            return InvalidRecord(slow_exc.reason[:_REASON_CAP])
        repairs.append("text_sanitized")

    updates: dict[str, str] = {}
    for field in ("text", "first_name"):
        value: str = getattr(message, field)
        if "\x00" in value:
            updates[field] = value.replace("\x00", "")
            if "text_sanitized" not in repairs:
                repairs.append("text_sanitized")
    text = updates.get("text", message.text)
    truncated = truncate_utf16(text)
    if truncated != text:
        updates["text"] = truncated
        repairs.append("text_truncated")
    if updates:
        message = message.model_copy(update=updates)
    return Parsed(message, tuple(repairs))
