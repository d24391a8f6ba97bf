"""Matching the bot's messages at the fake Telegram server to the user messages they answer.

The sender replies with ``reply_to_message_id`` set to the user's message when it knows it; then
the match is exact. Otherwise a chat's replies are matched to its unanswered messages in order,
which is also exact here because a simulated user waits for the answer before writing again.
A bot message for a chat with nothing unanswered is counted as *extra* (a duplicate delivery, or
an unsolicited message), never silently dropped: zero loss means every accepted message got a
reply, and zero extras means none got two.

>>> t = ReplyTracker()
>>> t.sent(Pending(chat_id=5, message_id=1, user=0, phase=0, sent_at=10.0))
>>> t.accepted(5, 1)
>>> [p.message_id for p in t.match(chat_id=5, reply_to=None, at=10.4)]
[1]
>>> t.match(chat_id=5, reply_to=None, at=10.5), t.extra
([], 1)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class Pending:
    """A user message sent to the gateway and not answered yet."""

    chat_id: int
    message_id: int
    user: int
    phase: int
    sent_at: float
    accepted: bool = False
    released: bool = False
    """Its user stopped waiting (reply timed out) and may already have written again."""
    ack_s: float | None = None
    text: str = ""
    update_id: int = 0

    @property
    def is_command(self) -> bool:
        return self.text.startswith("/")


@dataclass
class ReplyTracker:
    """Unanswered messages by chat, in send order; counts of what matched and what did not."""

    _chats: dict[int, OrderedDict[int, Pending]] = field(default_factory=dict)
    extra: int = 0
    answered: int = 0
    merged: int = 0
    unaccepted_replies: int = 0

    def sent(self, pending: Pending) -> None:
        self._chats.setdefault(pending.chat_id, OrderedDict())[pending.message_id] = pending

    def accepted(self, chat_id: int, message_id: int, ack_s: float | None = None) -> None:
        queue = self._chats.get(chat_id)
        pending = queue.get(message_id) if queue is not None else None
        if pending is not None:
            pending.accepted = True
            pending.ack_s = ack_s

    def rejected(self, chat_id: int, message_id: int) -> Pending | None:
        """The gateway refused it: it is not owed a reply, so stop waiting for one."""
        return self._remove(chat_id, message_id)

    def match(self, *, chat_id: int, reply_to: int | None, at: float) -> list[Pending]:
        """The messages a bot message at ``at`` answers; empty (and one more *extra*) when none.

        A reply to message ``k`` also answers the chat's earlier unanswered messages: the dataflow
        merges a burst into one turn and replies to its newest message.
        """
        queue = self._chats.get(chat_id)
        if not queue:
            self.extra += 1
            return []
        if reply_to is None:
            answered = [next(iter(queue.values()))]
        elif reply_to in queue:
            answered = []
            for pending in queue.values():
                answered.append(pending)
                if pending.message_id == reply_to:
                    break
        else:
            answered = []
        answered = [p for p in answered if p.sent_at <= at]
        if not answered:
            self.extra += 1
            return []
        for pending in answered:
            self._remove(chat_id, pending.message_id)
            if not pending.accepted:
                self.unaccepted_replies += 1
        self.answered += len(answered)
        self.merged += len(answered) - 1
        return answered

    def _remove(self, chat_id: int, message_id: int) -> Pending | None:
        queue = self._chats.get(chat_id)
        if queue is None:
            return None
        pending = queue.pop(message_id, None)
        if not queue:
            del self._chats[chat_id]
        return pending

    def overdue(self, now: float, timeout_s: float) -> list[Pending]:
        """Messages waiting longer than ``timeout_s`` whose users were not yet released; marks them."""
        found = []
        for queue in self._chats.values():
            for pending in queue.values():
                if not pending.released and now - pending.sent_at > timeout_s:
                    pending.released = True
                    found.append(pending)
        return found

    def outstanding(self) -> list[Pending]:
        return [p for queue in self._chats.values() for p in queue.values()]

    @property
    def in_flight(self) -> int:
        return sum(len(queue) for queue in self._chats.values())
