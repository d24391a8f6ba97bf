"""Which exchanges become long-term memories: only those worth a row in the memories table.

A memory row costs about 0.7 ms of Postgres CPU with the btree index alone and about 5 ms with
the HNSW index, against a budget of about 1 ms per message for everything but the model call.
Storing every "hi" and "lol ok" would spend most of Postgres on rows that retrieval ranks last
anyway (importance is part of its score). So an exchange is stored only when its importance
(:func:`tgstream.steps.importance.importance`) reaches ``MEMORY_MIN_IMPORTANCE``.

Scores of that function, for choosing the threshold: greetings and acknowledgements 0.02, other
small talk and questions to the bot 0.05-0.12, a single weak hint (a feeling, a date, a long
message) 0.25-0.3, a personal fact, belonging or preference 0.4-0.6, an explicit "remember
this" 0.7 and more. The default 0.35 sits between one weak hint and one personal cue; two weak
hints together ("I'm nervous about tomorrow", 0.41) pass.

>>> gate = MemoryGate(0.35)
>>> gate.importance("lol ok", "haha") is None
True
>>> gate.importance("my dog is called Rex", "Rex is a great name!") is not None
True
"""

from __future__ import annotations

from tgstream.steps.importance import importance


class MemoryGate:
    """Decides, per exchange, whether it is stored and with which importance."""

    def __init__(self, min_importance: float) -> None:
        if not 0.0 <= min_importance <= 1.0:
            msg = f"min_importance must be within 0..1, got {min_importance}"
            raise ValueError(msg)
        self.min_importance = min_importance

    def importance(self, user_text: str, reply: str) -> float | None:
        """The importance to store the exchange with, or None when it is not worth storing."""
        if not user_text.strip():
            return None
        score = importance(user_text, reply)
        return score if score >= self.min_importance else None
