"""What the OpenAI stub says: replies and embeddings that are pure functions of the request.

Tests assert on these, so they must be predictable from the request alone:

>>> reply_text([{"role": "system", "content": "You are Sage, calm."}, {"role": "user", "content": "hi"}])
'[Sage] You said: hi [turn 1]'
>>> reply_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
...             {"role": "user", "content": "c"}])
'You said: c [turn 2]'
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

ECHO_CHARS = 200
_WORD = re.compile(r"\w+")
_PERSONA = re.compile(r"\byou are\s+(?:an?\s+|the\s+)?([A-Za-z][\w-]*)", re.IGNORECASE)


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message, whether ``content`` is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def persona_tag(messages: Sequence[dict[str, Any]]) -> str:
    """A short name from the system prompt ("You are Sage..." gives "Sage"), or "" without one."""
    system = " ".join(message_text(m) for m in messages if m.get("role") == "system").strip()
    if not system:
        return ""
    match = _PERSONA.search(system)
    if match:
        return match.group(1)
    words = _WORD.findall(system)
    return words[0] if words else ""


def reply_text(messages: Sequence[dict[str, Any]]) -> str:
    """``[<persona>] You said: <last user text, truncated> [turn N]``, N = user messages in the request."""
    user_texts = [message_text(m) for m in messages if m.get("role") == "user"]
    last = " ".join(user_texts[-1].split()) if user_texts else ""
    if len(last) > ECHO_CHARS:
        last = last[:ECHO_CHARS].rstrip() + "..."
    tag = persona_tag(messages)
    prefix = f"[{tag}] " if tag else ""
    return f"{prefix}You said: {last} [turn {len(user_texts)}]"


def count_tokens(text: str) -> int:
    """Whitespace words; real tokenisers differ, but tests only need a stable, monotone count."""
    return len(text.split())


def limit_tokens(text: str, max_tokens: int | None) -> tuple[str, str]:
    """Cut the reply to ``max_tokens`` words, returning it with the OpenAI ``finish_reason``."""
    words = text.split()
    if max_tokens is not None and len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def embed(text: str, dim: int) -> list[float]:
    """A hashed bag of words and character trigrams, L2-normalised.

    Texts sharing words or word fragments get a high cosine similarity, which is enough for
    retrieval tests to find the planted memory. An empty text maps to a fixed unit vector so that
    cosine distance stays defined.
    """
    vector = [0.0] * dim
    words = _WORD.findall(text.lower())
    for word in words:
        _add(vector, "w:" + word, 1.0)
        padded = f" {word} "
        for i in range(len(padded) - 2):
            _add(vector, "t:" + padded[i : i + 3], 0.5)
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return [x / norm for x in vector]


def _add(vector: list[float], feature: str, weight: float) -> None:
    digest = zlib.crc32(feature.encode())
    sign = 1.0 if digest & 0x8000_0000 else -1.0
    vector[digest % len(vector)] += sign * weight
