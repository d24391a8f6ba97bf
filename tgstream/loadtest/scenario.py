"""Simulated users and the Telegram updates they send.

Each user is a private chat with a short session script: ``/start`` first, then a greeting, then
a seeded mix of small talk, personal facts, questions that recall those facts, now and then a long
message of a few hundred characters, and for some users another language. User ``i`` of a given
seed always says the same things, so two runs offer the same text; only the ids are new per run
(see :func:`run_ids`), because the gateway drops update ids it has seen in the last 26 hours and
the memory store keeps what earlier runs told it about a chat.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from tgstream.loadtest import phrases

SESSION_MIN = 4
SESSION_MAX = 24
OTHER_LANGUAGE_SHARE = 0.2
CATEGORY_WEIGHTS = (("small_talk", 0.35), ("fact", 0.2), ("question", 0.25), ("story", 0.1), ("native", 0.1))
CHAT_ID_FLOOR = 100_000_000_000
CHAT_ID_SPAN = 800_000_000_000


@dataclass(frozen=True)
class SimUser:
    """One simulated person in one private chat (``chat_id`` doubles as the user id, as in Telegram)."""

    index: int
    chat_id: int
    first_name: str
    language_code: str
    script: tuple[str, ...]


@dataclass(frozen=True)
class RunIds:
    """Per-run id bases: update ids from the run's start in ms, chat ids from a random 12-digit base."""

    update_base: int
    chat_base: int


def run_ids(now_s: float, rng: random.Random) -> RunIds:
    """Ids no earlier run used: two runs' update ids never overlap below 10^6 updates a second."""
    return RunIds(
        update_base=int(now_s * 1000) * 1000,
        chat_base=CHAT_ID_FLOOR + rng.randrange(CHAT_ID_SPAN),
    )


def _fill(template: str, slots: dict[str, str]) -> str:
    return template.format(**slots) if "{" in template else template


def _story(rng: random.Random, slots: dict[str, str]) -> str:
    sentences = rng.sample(phrases.STORY_SENTENCES, rng.randint(2, 6))
    return " ".join(_fill(s, slots) for s in sentences)


def session_script(rng: random.Random, *, name: str, language: str, length: int) -> tuple[str, ...]:
    """A session of ``length`` messages (at least 2): /start, a greeting, then a varied mix.

    Phrases are drawn without replacement within a session, so a user never repeats themself
    (the spam scorer rightly flags that), and a category that runs dry is skipped.
    """
    slots = {key: rng.choice(values) for key, values in phrases.SLOTS.items()}
    slots["name"] = name
    pools: dict[str, list[str]] = {
        "small_talk": rng.sample(phrases.SMALL_TALK, len(phrases.SMALL_TALK)),
        "fact": rng.sample(phrases.FACTS, len(phrases.FACTS)),
        "question": rng.sample(phrases.QUESTIONS, len(phrases.QUESTIONS)),
    }
    native = phrases.OTHER_LANGUAGES.get(language, ())
    pools["native"] = rng.sample(native, len(native))
    stories = 2
    script = ["/start", _fill(rng.choice(phrases.GREETINGS), slots)]
    names = [name for name, _ in CATEGORY_WEIGHTS]
    weights = [weight * (4 if name == "native" else 1) for name, weight in CATEGORY_WEIGHTS]
    while len(script) < max(2, length) - 1:
        category = rng.choices(names, weights)[0]
        if category == "story":
            if stories:
                stories -= 1
                script.append(_story(rng, slots))
        elif pools[category]:
            script.append(_fill(pools[category].pop(), slots))
        elif not any(pools.values()) and not stories:
            break
    if len(script) < length:
        script.append(rng.choice(phrases.CLOSINGS))
    return tuple(script)


class Population:
    """Users created on demand; user ``i`` depends only on the seed and ``i``."""

    def __init__(self, *, seed: int, ids: RunIds) -> None:
        self._seed = seed
        self._ids = ids

    def user(self, index: int) -> SimUser:
        rng = random.Random(f"{self._seed}:{index}")
        language = "en"
        if rng.random() < OTHER_LANGUAGE_SHARE:
            language = rng.choice(sorted(phrases.OTHER_LANGUAGES))
        name = rng.choice(phrases.FIRST_NAMES)
        length = rng.randint(SESSION_MIN, SESSION_MAX)
        return SimUser(
            index=index,
            chat_id=self._ids.chat_base + index,
            first_name=name,
            language_code=language,
            script=session_script(rng, name=name, language=language, length=length),
        )


class UpdateFactory:
    """Builds Telegram ``Update`` JSON with unique update ids and per-chat message ids."""

    def __init__(self, ids: RunIds) -> None:
        self._update_ids = itertools.count(ids.update_base)

    def message(self, user: SimUser, turn: int, *, date: float) -> dict[str, Any]:
        """The update for ``user``'s ``turn``-th message (0-based); its message_id is ``turn + 1``."""
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": turn + 1,
                "date": int(date),
                "chat": {"id": user.chat_id, "type": "private", "first_name": user.first_name},
                "from": {
                    "id": user.chat_id,
                    "is_bot": False,
                    "first_name": user.first_name,
                    "language_code": user.language_code,
                },
                "text": user.script[turn],
            },
        }
