"""Hypothesis strategies for hostile webhook bodies, shared by the unit and the HTTP fuzz tests.

A body is bytes, because that is what reaches the gateway: most are Telegram-shaped updates whose
fields hold hostile values (wrong types, Unicode oddities, 4096/4097-unit texts, deep nesting),
the rest are broken JSON. Lone surrogates are written as JSON escapes (valid JSON, invalid
Unicode) and as raw CESU bytes (invalid UTF-8), the two ways they reach a server.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("TGSTREAM_FUZZ_EXAMPLES", "0")) or None
"""Per-test example count override; unset means each test's CI default."""


def examples(default: int) -> int:
    return EXAMPLES or default


ODDITIES = (
    "\x00",
    "\ud800",
    "\udfff",
    "\ud83d",
    "\u202e",
    "\u200f",
    "\u200b",
    "\u200c",
    "\u200d",
    "\ufeff",
    "\u2028",
    "\ufffd",
    "\uffff",
    "\U0010ffff",
    "\u0301\u0301\u0301",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "\u0645\u0631\u062d\u0628\u0627",
    "/persona sage",
    "/forget",
    "<script>alert(1)</script>",
    "'; DROP TABLE memories; --",
    "\\",
    '"',
)

oddity_text = st.lists(st.one_of(st.sampled_from(ODDITIES), st.text(max_size=8)), max_size=12).map("".join)

ASTRAL = "\U0001f600"


@st.composite
def edge_length_text(draw: st.DrawFn) -> str:
    """Texts of exactly 4095-4097 UTF-16 units, with astral characters around the boundary."""
    units = draw(st.sampled_from((4095, 4096, 4097)))
    astral = draw(st.integers(0, 8))
    tail = "".join(draw(st.sampled_from(("a", ASTRAL, "\u200d"))) for _ in range(3))
    body_units = units - 2 * astral - sum(2 if ord(c) > 0xFFFF else 1 for c in tail)
    return "a" * max(body_units, 0) + ASTRAL * astral + tail


hostile_text = st.one_of(oddity_text, st.text(max_size=64), edge_length_text())

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a well-typed value, sometimes any JSON value, so wrong types reach every field."""
    return st.one_of(good, good, good, json_value)


telegram_id = st.one_of(st.integers(-(10**12), 10**12), st.integers(-(2**64), 2**64))
user = st.fixed_dictionaries(
    {"id": field(telegram_id), "is_bot": field(st.booleans()), "first_name": field(hostile_text)},
    optional={
        "username": field(hostile_text),
        "language_code": field(st.sampled_from(["en", "ar", "", "x" * 40])),
    },
)
chat = st.fixed_dictionaries(
    {"id": field(telegram_id)},
    optional={"type": field(st.sampled_from(["private", "group", "supergroup", "channel", "weird"]))},
)
message = st.fixed_dictionaries(
    {
        "message_id": field(st.integers(-(2**64), 2**64)),
        "date": field(st.integers(-(2**64), 2**64)),
        "chat": field(chat),
    },
    optional={
        "from": field(user),
        "text": field(hostile_text),
        "caption": field(hostile_text),
        "sticker": field(st.dictionaries(st.text(max_size=5), json_scalar, max_size=3)),
        "photo": field(st.lists(st.dictionaries(st.text(max_size=5), json_scalar, max_size=3), max_size=3)),
        "entities": json_value,
    },
)
KINDS = ("message", "edited_message", "channel_post", "callback_query", "my_chat_member", "poll_answer", "zz")


@st.composite
def update(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"update_id": draw(field(st.integers(-5, 2**60)))}
    kind = draw(st.sampled_from(KINDS))
    if kind in ("message", "edited_message", "channel_post"):
        body[kind] = draw(field(message))
    elif kind == "callback_query":
        body[kind] = draw(
            field(
                st.fixed_dictionaries(
                    {"id": field(hostile_text), "from": field(user)},
                    optional={"message": field(message), "data": field(hostile_text)},
                )
            )
        )
    elif kind == "my_chat_member":
        body[kind] = draw(
            field(
                st.fixed_dictionaries(
                    {
                        "chat": field(chat),
                        "from": field(user),
                        "date": field(st.integers(0, 2**40)),
                        "new_chat_member": field(st.fixed_dictionaries({"status": field(hostile_text)})),
                    }
                )
            )
        )
    else:
        body[kind] = draw(json_value)
    if draw(st.booleans()):
        body.update(draw(st.dictionaries(st.text(max_size=6), json_value, max_size=2)))
    return body


def dump(value: Any, style: str) -> bytes:
    """Serialise as Telegram might (``ascii``: lone surrogates as escapes) or as a broken client would."""
    if style == "ascii":
        return json.dumps(value, ensure_ascii=True).encode()
    # Raw UTF-8 with any lone surrogate encoded as its 3 CESU bytes: not valid UTF-8.
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from((10, 200, 1_000, 50_000)))
    opener, closer = draw(st.sampled_from(((b"[", b"]"), (b'{"a":', b"}"))))
    inner = opener * depth + b"1" + closer * depth
    if draw(st.booleans()):
        return (
            b'{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1},"text":"x","entities":'
            + inner
            + b"}}"
        )
    return inner


@st.composite
def broken_json(draw: st.DrawFn) -> bytes:
    valid = dump(draw(update()), "ascii")
    how = draw(st.sampled_from(("truncate", "flip", "bytes", "scalar", "empty", "trailing")))
    if how == "truncate":
        return valid[: draw(st.integers(0, max(len(valid) - 1, 0)))]
    if how == "flip":
        at = draw(st.integers(0, len(valid) - 1))
        return valid[:at] + bytes([draw(st.integers(0, 255))]) + valid[at + 1 :]
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "scalar":
        return draw(st.sampled_from((b"null", b"1", b'"x"', b"[]", b"true", b"NaN", b"1e999")))
    if how == "trailing":
        return valid + b" }"
    return b""


def huge_text_body(size: int) -> bytes:
    """A readable update of exactly ``size`` bytes (text and first_name share the bulk)."""
    shape = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 1,
            "chat": {"id": 1},
            "from": {"id": 1, "first_name": ""},
            "text": "",
        },
    }
    pad = max(size - len(json.dumps(shape)), 0)
    shape["message"]["from"]["first_name"] = "n" * (pad // 2)  # type: ignore[index]
    shape["message"]["text"] = "t" * (pad - pad // 2)  # type: ignore[index]
    return json.dumps(shape).encode()


bodies = st.one_of(
    st.builds(dump, update(), st.sampled_from(("ascii", "raw"))),
    st.builds(dump, update(), st.sampled_from(("ascii", "raw"))),
    st.builds(dump, update(), st.sampled_from(("ascii", "raw"))),
    broken_json(),
    deeply_nested(),
)
