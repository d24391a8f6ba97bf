from __future__ import annotations

from tgstream.loadtest.tracker import Pending, ReplyTracker

CHAT = 900_000_000_001


def _send(tracker: ReplyTracker, message_id: int, at: float, *, chat: int = CHAT) -> None:
    tracker.sent(Pending(chat_id=chat, message_id=message_id, user=0, phase=0, sent_at=at))
    tracker.accepted(chat, message_id, ack_s=0.002)


def test_replies_without_reply_to_match_in_send_order() -> None:
    tracker = ReplyTracker()
    _send(tracker, 1, 0.0)
    _send(tracker, 2, 0.5)
    assert [p.message_id for p in tracker.match(chat_id=CHAT, reply_to=None, at=1.0)] == [1]
    assert [p.message_id for p in tracker.match(chat_id=CHAT, reply_to=None, at=1.1)] == [2]
    assert tracker.in_flight == 0
    assert tracker.answered == 2
    assert tracker.extra == 0


def test_reply_to_answers_its_message_and_the_merged_burst_before_it() -> None:
    tracker = ReplyTracker()
    for message_id in (1, 2, 3):
        _send(tracker, message_id, message_id * 0.1)
    answered = tracker.match(chat_id=CHAT, reply_to=2, at=1.0)
    assert [p.message_id for p in answered] == [1, 2]
    assert tracker.merged == 1
    assert [p.message_id for p in tracker.outstanding()] == [3]


def test_a_second_reply_to_the_same_message_is_extra() -> None:
    tracker = ReplyTracker()
    _send(tracker, 1, 0.0)
    _send(tracker, 2, 0.1)
    tracker.match(chat_id=CHAT, reply_to=1, at=0.5)
    assert tracker.match(chat_id=CHAT, reply_to=1, at=0.6) == []
    assert tracker.extra == 1
    assert [p.message_id for p in tracker.outstanding()] == [2]


def test_messages_for_unknown_chats_or_before_the_send_are_extra() -> None:
    tracker = ReplyTracker()
    assert tracker.match(chat_id=CHAT, reply_to=None, at=1.0) == []
    _send(tracker, 1, 5.0)
    assert tracker.match(chat_id=CHAT, reply_to=None, at=4.0) == []
    assert tracker.extra == 2
    assert tracker.in_flight == 1


def test_rejected_messages_are_not_owed_a_reply() -> None:
    tracker = ReplyTracker()
    _send(tracker, 1, 0.0)
    tracker.sent(Pending(chat_id=CHAT, message_id=2, user=0, phase=0, sent_at=0.1))
    assert tracker.rejected(CHAT, 2) is not None
    assert [p.message_id for p in tracker.outstanding()] == [1]


def test_a_reply_to_a_never_accepted_message_is_counted() -> None:
    tracker = ReplyTracker()
    tracker.sent(Pending(chat_id=CHAT, message_id=1, user=0, phase=0, sent_at=0.0))
    tracker.match(chat_id=CHAT, reply_to=1, at=0.3)
    assert tracker.unaccepted_replies == 1


def test_overdue_releases_each_waiting_user_once() -> None:
    tracker = ReplyTracker()
    _send(tracker, 1, 0.0)
    _send(tracker, 1, 5.0, chat=CHAT + 1)
    assert [p.chat_id for p in tracker.overdue(now=31.0, timeout_s=30.0)] == [CHAT]
    assert tracker.overdue(now=32.0, timeout_s=30.0) == []
    assert tracker.in_flight == 2
