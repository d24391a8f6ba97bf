from __future__ import annotations

import pytest

from tgstream.schemas.events import InboundMessage
from tgstream.steps.burst import merge_burst

CHAT = 918_273_645_501


def msg(
    update_id: int,
    text: str,
    *,
    user_id: int = 11,
    first_name: str = "Ana",
    message_id: int | None = None,
    chat_id: int = CHAT,
    content_kind: str = "text",
) -> InboundMessage:
    return InboundMessage(
        update_id=update_id,
        update_kind="message",
        chat_id=chat_id,
        chat_type="private",
        user_id=user_id,
        first_name=first_name,
        message_id=message_id if message_id is not None else 1000 + update_id,
        content_kind=content_kind,
        text=text,
        sent_at=100.0 + update_id,
        received_at=200.0 + update_id,
    )


def test_single_message_is_passed_through() -> None:
    turn = merge_burst([msg(7, "hello")])
    assert turn.text == "hello"
    assert turn.update_ids == (7,)
    assert turn.reply_to_message_id == 1007
    assert turn.message_count == 1
    assert turn.omitted == 0


def test_burst_keeps_order_all_update_ids_and_replies_to_the_last() -> None:
    texts = ["wait", "so I was at the store", "and guess who I saw"]
    turn = merge_burst([msg(i, t) for i, t in enumerate(texts, start=1)])
    assert turn.text == "\n".join(texts)
    assert turn.update_ids == (1, 2, 3)
    assert turn.reply_to_message_id == 1003
    assert turn.first_sent_at == 101.0
    assert turn.first_received_at == 201.0
    assert turn.chat_id == CHAT


def test_reply_to_skips_messages_without_an_id() -> None:
    messages = [msg(1, "a", message_id=55), msg(2, "b").model_copy(update={"message_id": None})]
    assert merge_burst(messages).reply_to_message_id == 55


def test_media_without_caption_gets_a_placeholder() -> None:
    turn = merge_burst([msg(1, "", content_kind="photo"), msg(2, "what do you think?")])
    assert turn.text == "[sent a photo]\nwhat do you think?"


def test_group_bursts_name_each_sender() -> None:
    turn = merge_burst(
        [msg(1, "hi bot", user_id=1, first_name="Ana"), msg(2, "hey", user_id=2, first_name="Bo")]
    )
    assert turn.text == "Ana: hi bot\nBo: hey"
    assert turn.user_id == 2


def test_too_many_messages_keep_the_newest_and_say_so() -> None:
    messages = [msg(i, f"m{i}") for i in range(30)]
    turn = merge_burst(messages, max_messages=20)
    lines = turn.text.split("\n")
    assert lines[0] == "[10 earlier messages omitted]"
    assert lines[1:] == [f"m{i}" for i in range(10, 30)]
    assert turn.update_ids == tuple(range(30))
    assert turn.omitted == 10


def test_too_long_keeps_the_newest_within_the_char_budget() -> None:
    messages = [msg(i, str(i) * 100) for i in range(1, 10)]
    turn = merge_burst(messages, max_chars=350)
    body = turn.text.split("\n")
    assert body[0] == "[6 earlier messages omitted]"
    assert body[1:] == ["7" * 100, "8" * 100, "9" * 100]
    assert len("\n".join(body[1:])) <= 350


def test_a_single_oversized_message_is_truncated_with_a_marker() -> None:
    turn = merge_burst([msg(1, "x" * 5000)], max_chars=1000)
    assert len(turn.text) == 1000
    assert turn.text.endswith("[…]")
    assert turn.omitted == 0


def test_bad_bursts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge_burst([])
    with pytest.raises(ValueError, match="one chat"):
        merge_burst([msg(1, "a"), msg(2, "b", chat_id=CHAT + 1)])
