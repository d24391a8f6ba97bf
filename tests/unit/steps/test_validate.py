from __future__ import annotations

import json
from typing import Any

import pytest

from tgstream.schemas.codec import encode
from tgstream.schemas.events import InboundMessage
from tgstream.steps.validate import InvalidRecord, Parsed, parse_inbound, truncate_utf16

CHAT = 551_234_567_890


def good(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "v": 1,
        "update_id": 77,
        "update_kind": "message",
        "chat_id": CHAT,
        "chat_type": "private",
        "user_id": CHAT,
        "first_name": "Ana",
        "message_id": 5,
        "text": "hello",
        "sent_at": 1_700_000_000.0,
        "received_at": 1_700_000_000.5,
    }
    value.update(overrides)
    return value


def parsed(raw: bytes | str) -> Parsed:
    result = parse_inbound(raw)
    assert isinstance(result, Parsed), result
    return result


def test_a_valid_record_round_trips_without_repairs() -> None:
    message = InboundMessage.model_validate(good())
    result = parsed(encode(message))
    assert result.message == message
    assert result.repairs == ()


@pytest.mark.parametrize(
    "text",
    [
        'he said "hi" and <b>left</b>',
        "what does <script>alert(1)</script> do?",
        "is javascript:void(0) dangerous? data:text/html too?",
        "'''\"\"\"<<<>>>''' " * 20,
        "Привет 😀 مرحبا 你好 שלום",
    ],
)
def test_text_is_data_and_is_never_rejected(text: str) -> None:
    assert parsed(json.dumps(good(text=text))).message.text == text


def test_nul_characters_are_removed_and_flagged() -> None:
    result = parsed(json.dumps(good(text="a\x00b", first_name="A\x00na")))
    assert result.message.text == "ab"
    assert result.message.first_name == "Ana"
    assert result.repairs == ("text_sanitized",)


def test_lone_surrogates_are_removed_and_pairs_kept() -> None:
    raw = json.dumps(good(text="x")).replace('"text": "x"', '"text": "a\\ud800b \\ud83d\\ude00"')
    result = parsed(raw.encode())
    assert result.message.text == "ab 😀"
    assert "text_sanitized" in result.repairs
    result.message.text.encode("utf-8")


def test_invalid_utf8_bytes_become_replacement_characters() -> None:
    raw = json.dumps(good(text="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"caf\xe9")
    result = parsed(raw)
    assert result.message.text == "caf\ufffd"
    assert result.repairs == ("text_sanitized",)


def test_oversized_text_is_truncated_with_a_flag() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    result = parsed(json.dumps(good(text=text)))
    assert result.message.text == "😀" * 2048
    assert result.repairs == ("text_truncated",)


def test_truncate_utf16_never_splits_a_pair() -> None:
    assert truncate_utf16("a" + "😀" * 3, 4) == "a😀"
    assert truncate_utf16("x" * 4096) == "x" * 4096
    assert truncate_utf16("x" * 4097) == "x" * 4096


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps(good(v=2)).encode(), "InboundMessage.v"),
        (json.dumps(good(chat_id="abc")).encode(), "chat_id"),
        (json.dumps({k: v for k, v in good().items() if k != "update_id"}).encode(), "update_id"),
        (json.dumps(good(surprise=1)).encode(), "surprise"),
        (b"{" + b" " * 1_048_576 + b"}", "too large"),
        (b'{"text": "\\ud800", "v": 1}', "InboundMessage"),
        (b"\xff\xfe not json \xe9", "not JSON"),
    ],
)
def test_invalid_values_become_dead_letters_with_a_reason(raw: bytes | None, reason_part: str) -> None:
    result = parse_inbound(raw)
    assert isinstance(result, InvalidRecord)
    assert reason_part in result.reason
    assert len(result.reason) <= 500
