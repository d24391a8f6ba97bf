"""A cheap importance score (0..1) for a (user message, reply) pair about to be stored as a memory.

Retrieval ranks memories by relevance, recency *and* importance, so "my daughter Mia starts school
on the 5th" should outlive "lol ok" even when both are equally similar to a later question. A model
call per memory would cost more than the turn itself; these cues are phrase lookups on normalised
text (O(len) per phrase, no regex), English first with a few common Russian, Spanish, German and
French forms.

Cues combine as a noisy-OR on top of a small base, like the spam score, so several weak hints add
up without passing 1:

* explicit requests to remember ("remember that", "don't forget"),
* identity and personal facts ("my name is", "I live in", "I work as", "I'm allergic"),
* people, pets and things that belong to the user ("my wife", "my dog", "my job"),
* preferences ("I love", "I hate", "my favourite"), and, more weakly, feelings ("I'm worried"),
* dates and numbers (a birthday, an age, "next week"),
* length: a longer statement usually carries more to remember.

A question to the bot says less about the user than a statement, so questions without a personal
cue are damped; greetings and acknowledgements score near zero.

>>> importance("ok") < 0.1
True
>>> importance("Remember that my daughter Mia starts school on 5 September") > 0.8
True
"""

from __future__ import annotations

import re

_BASE = 0.08
_PUNCTUATION = re.compile(r"[^\w' ]|_")
_REMEMBER = (
    "remember that", "remember this", "don't forget", "dont forget", "please remember", "запомни",
    "не забудь", "recuerda que", "merk dir", "souviens-toi",
)  # fmt: skip
_IDENTITY = (
    "my name is", "call me", "i'm called", "i am called", "i live in", "i'm from", "i am from",
    "i moved to", "i work as", "i work at", "i work for", "i'm a ", "i am a ", "i'm an ", "i am an ",
    "years old", "i'm allergic", "i am allergic", "i can't eat", "i'm vegetarian", "i'm vegan",
    "i study", "i'm studying", "my birthday", "меня зовут", "я живу", "я работаю", "me llamo",
    "vivo en", "ich heiße", "ich wohne", "je m'appelle", "j'habite",
)  # fmt: skip
_BELONGINGS = (
    "my wife", "my husband", "my partner", "my boyfriend", "my girlfriend", "my son", "my daughter",
    "my kid", "my kids", "my children", "my mom", "my mum", "my mother", "my dad", "my father",
    "my sister", "my brother", "my friend", "my best friend", "my boss", "my dog", "my cat", "my pet",
    "my job", "my work", "my school", "my university", "my car", "my house", "my flat",
    "my apartment", "my team", "моя жена", "мой муж", "моя собака", "мой кот", "mi esposa",
    "mi perro", "meine frau", "mein hund", "ma femme", "mon chien",
)  # fmt: skip
_PREFERENCES = (
    "i like", "i love", "i hate", "i dislike", "i prefer", "i enjoy", "i can't stand", "my favourite",
    "my favorite", "i'm afraid of", "i am afraid of", "i'm scared of", "i dream of", "мне нравится",
    "я люблю", "me gusta", "ich mag", "j'aime",
)  # fmt: skip
_FEELINGS = (
    "i feel", "i'm feeling", "i am feeling", "i'm sad", "i'm happy", "i'm tired", "i'm worried",
    "i'm stressed", "i'm lonely", "i'm anxious", "i'm excited", "i'm nervous", "i miss",
)  # fmt: skip
_TIME = (
    "tomorrow", "yesterday", "next week", "next month", "next year", "last year", "on monday",
    "on tuesday", "on wednesday", "on thursday", "on friday", "on saturday", "on sunday", "january",
    "february", "march", "april", "may ", "june", "july", "august", "september", "october",
    "november", "december", "birthday", "anniversary", "завтра", "mañana", "morgen", "demain",
)  # fmt: skip
_TRIVIAL = frozenset(
    {
        "ok", "okay", "k", "lol", "haha", "hahaha", "hi", "hello", "hey", "thanks", "thx", "ty", "yes",
        "no", "yeah", "yep", "nope", "sure", "cool", "nice", "hmm", "bye", "gn", "gm",
    }
)  # fmt: skip


def _normalised(text: str) -> str:
    """Lower case, curly apostrophes straightened, other punctuation to spaces, padded with spaces."""
    words = _PUNCTUATION.sub(" ", text.casefold().replace("’", "'")).split()
    return " " + " ".join(words) + " "


def _padded(phrases: tuple[str, ...]) -> tuple[str, ...]:
    """Each phrase as a whole-word needle: followed by a space or an apostrophe ("my dog's")."""
    return tuple(f" {p.strip()}{end}" for p in phrases for end in (" ", "'"))


_CUES = {
    name: _padded(phrases)
    for name, phrases in (
        ("remember", _REMEMBER),
        ("identity", _IDENTITY),
        ("belongings", _BELONGINGS),
        ("preferences", _PREFERENCES),
        ("feelings", _FEELINGS),
        ("time", _TIME),
    )
}


def _hit(text: str, cue: str) -> bool:
    return any(needle in text for needle in _CUES[cue])


def importance(user_text: str, reply_text: str = "") -> float:
    """How worth remembering this exchange is; mostly about what the *user* said."""
    norm = _normalised(user_text)
    words = norm.split()
    if not words or (len(words) <= 2 and all(w in _TRIVIAL for w in words)):
        return 0.02
    cues: list[float] = []
    if _hit(norm, "remember"):
        cues.append(0.7)
    if _hit(norm, "identity"):
        cues.append(0.55)
    if _hit(norm, "belongings"):
        cues.append(0.4)
    if _hit(norm, "preferences"):
        cues.append(0.35)
    personal = bool(cues)
    if _hit(norm, "feelings"):
        cues.append(0.2)
    if _hit(norm, "time"):
        cues.append(0.2)
    if any(ch.isdigit() for ch in norm):
        cues.append(0.15)
    cues.append(min(0.2, len(user_text.strip()) / 1500))
    if "remember" in reply_text.casefold():
        cues.append(0.1)

    keep = 1.0 - _BASE
    for cue in cues:
        keep *= 1.0 - cue
    score = 1.0 - keep
    if user_text.rstrip().endswith("?") and not personal:
        score *= 0.6
    return round(min(1.0, max(0.0, score)), 3)
