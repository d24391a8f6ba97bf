"""Concise facts about the user, pulled out of what they say, one per *slot*.

A memory stores a whole exchange; a fact is the one line worth keeping from it ("User's dog is
called Biscuit."), filed under a slot ("pet:dog") so that a newer statement about the same
thing replaces the older one instead of contradicting it from the next row: "I live in Lyon",
then months later "I just moved to Berlin", leaves one fact, "User lives in Berlin.". Likes
and dislikes share a slot per object ("likes:sushi"), so "I hate sushi now" overrides "I love
sushi".

Heuristics, not a model: a regex per statement form, run per sentence on the user's text only,
English first. They aim for precision over recall (a wrong fact is repeated to the user
forever; a missed one is still in the memories): questions, negations and hypotheticals are
skipped, names must be capitalised unless introduced by "my name is", and "I'm a ..." counts
as a job only for words that look like occupations. The expensive LLM judgement of what
matters lives off the hot path (``tgstream adapt run --judge-importance``).

>>> [f.text for f in extract_facts("Hi! My name is mia and I live in Lisbon. My dog Biscuit is 3.")]
["User's name is Mia.", 'User lives in Lisbon.', "User's dog is called Biscuit."]
>>> extract_facts("Do you know where I live?")
[]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_VALUE_CHARS = 60

_SENTENCES = re.compile(
    r"(?<=[.!?;])(?<!\bSt\.)(?<!\bMt\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)\s+|\n+"
)
_SKIP = re.compile(
    r"^\s*(?:do|does|did|can|could|would|will|should|what|where|when|who|why|how|is|are|am)\b"
    r"|\b(?:if|unless|wish|pretend|imagine|suppose|not|never|n't|no longer)\b",
    re.IGNORECASE,
)
_STOP = r"(?=\s*(?:[,.;!?()]|\b(?:and|but|so|because|who|which|that|with|at|in|for|from|since|now)\b|$))"
_CAPITALISED = r"[A-Z][\w'-]*(?:\.(?=\s+[A-Z]))?"
_PARTICLE = r"(?:\s+(?:of|de|del|da|la|le|upon|am|on))?"
_PLACE = rf"(?P<v>(?-i:{_CAPITALISED}(?:{_PARTICLE}\s+{_CAPITALISED}){{0,3}}))(?![\w'-])"
_NAME = rf"(?P<v>(?-i:{_CAPITALISED}(?:\s+{_CAPITALISED})?))(?![\w'-])"
_LOOSE_NAME = rf"(?P<v>[A-Za-z][\w'-]*(?-i:(?:\s+{_CAPITALISED})?))(?![\w'-])"
_THING = r"(?P<v>[\w'-]+(?:\s+[\w'-]+){0,3}?)" + _STOP
_PETS = (
    "dog|cat|puppy|kitten|hamster|rabbit|bunny|parrot|bird|horse|turtle|tortoise|snake|lizard|ferret|"
    "guinea pig"
)
_FAMILY = (
    "wife|husband|partner|boyfriend|girlfriend|fiance|fiancee|son|daughter|sister|brother|mom|mum|mother|"
    "dad|father|grandma|grandmother|grandpa|grandfather|best friend|boss|roommate|flatmate"
)
# fmt: off
_JOB_WORDS = frozenset({
    "nurse", "chef", "cook", "teacher", "doctor", "lawyer", "dentist", "pilot", "farmer", "baker",
    "barista", "cashier", "student", "tutor", "architect", "designer", "developer", "programmer",
    "engineer", "scientist", "researcher", "analyst", "accountant", "consultant", "manager", "paramedic",
    "firefighter", "officer", "soldier", "writer", "journalist", "editor", "artist", "musician",
    "photographer", "carpenter", "plumber", "electrician", "mechanic", "driver", "courier", "translator",
    "librarian", "pharmacist", "therapist", "psychologist", "vet", "veterinarian", "florist",
    "technician", "surgeon", "professor", "lecturer", "waiter", "waitress", "bartender", "receptionist",
    "secretary", "clerk", "tailor", "hairdresser"
})
_NOT_JOBS = frozenset({
    "mother", "father", "brother", "sister", "daughter", "member", "beginner", "lover", "fan", "person",
    "bit", "fighter", "believer", "user", "gamer", "reader", "sucker", "leader", "winner", "loser",
    "worrier", "overthinker"
})
_ADJECTIVE_OPENERS = frozenset(
    {"bit", "little", "lot", "huge", "big", "total", "complete", "real", "bad", "good", "terrible", "great"}
)
_LIKE_OBJECT_STOP = frozenset({
    "it", "that", "this", "you", "him", "her", "them", "these", "those", "so"
})
# fmt: on
_NEGATED_LIKE = re.compile(r"\b(?:don't|do not|doesn't|really don't) (?:like|enjoy)\b", re.IGNORECASE)
_ARTICLES = re.compile(r"^(?:the|a|an|some|my)\s+", re.IGNORECASE)
_TRAILING = re.compile(r"\s+(?:so much|a lot|very much|too|anymore|lately|now)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact: ``slot`` says what it is about, ``text`` is the line a prompt can quote."""

    slot: str
    value: str
    text: str
    confidence: float


Builder = Callable[[re.Match[str], str], Fact | None]


def _clean(value: str) -> str:
    value = _TRAILING.sub("", " ".join(value.split()).strip(" '\"")).strip().rstrip(".")
    return value[:MAX_VALUE_CHARS]


def _proper(value: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in value.split())


def _name(match: re.Match[str], sentence: str) -> Fact | None:
    value = _proper(_clean(match.group("v")))
    if not value or value.lower() in {"not", "a", "an", "the", "just"}:
        return None
    return Fact("name", value, f"User's name is {value}.", 0.9)


def _age(match: re.Match[str], sentence: str) -> Fact | None:
    age = int(match.group("v"))
    if not 5 <= age <= 110:
        return None
    return Fact("age", str(age), f"User is {age} years old.", 0.85)


def _location(match: re.Match[str], sentence: str) -> Fact | None:
    value = _clean(match.group("v"))
    if not value or value == "I":
        return None
    return Fact("location", value, f"User lives in {value}.", 0.85)


def _hometown(match: re.Match[str], sentence: str) -> Fact | None:
    value = _clean(match.group("v"))
    if not value or value == "I":
        return None
    return Fact("hometown", value, f"User is originally from {value}.", 0.8)


def _job(match: re.Match[str], sentence: str) -> Fact | None:
    value = _clean(_ARTICLES.sub("", match.group("v"))).lower()
    words = value.split()
    if not words or words[0] in _ADJECTIVE_OPENERS or words[-1] in _NOT_JOBS:
        return None
    last = words[-1]
    if last not in _JOB_WORDS and not last.endswith(("ist", "eer", "ician", "grapher", "smith")):
        return None
    article = "an" if value[0] in "aeiou" else "a"
    return Fact("job", value, f"User works as {article} {value}.", 0.75)


def _employer(match: re.Match[str], sentence: str) -> Fact | None:
    value = _clean(match.group("v"))
    if not value or value == "I":
        return None
    return Fact("employer", value, f"User works at {value}.", 0.75)


def _pet(match: re.Match[str], sentence: str) -> Fact | None:
    kind = match.group("kind").lower()
    value = _clean(match.group("v"))
    if not value or value == "I":
        return None
    return Fact(f"pet:{kind}", value, f"User's {kind} is called {value}.", 0.85)


def _family(match: re.Match[str], sentence: str) -> Fact | None:
    relation = match.group("rel").lower()
    value = _clean(match.group("v"))
    if not value or value == "I":
        return None
    return Fact(f"family:{relation}", value, f"User's {relation} is called {value}.", 0.85)


def _preference(match: re.Match[str], sentence: str) -> Fact | None:
    verb = match.group("verb").lower()
    value = _clean(_ARTICLES.sub("", match.group("v")))
    key = value.lower()
    if not value or key.split()[0] in _LIKE_OBJECT_STOP or key.startswith(("to be", "when")):
        return None
    dislikes = verb in {"hate", "dislike", "can't stand", "cannot stand", "detest"}
    label = "dislikes" if dislikes else "likes"
    return Fact(f"likes:{key}", label, f"User {label} {value}.", 0.7)


def _favourite(match: re.Match[str], sentence: str) -> Fact | None:
    what = match.group("what").lower()
    value = _clean(match.group("v"))
    if not value:
        return None
    return Fact(f"favourite:{what}", value, f"User's favourite {what} is {value}.", 0.85)


def _allergy(match: re.Match[str], sentence: str) -> Fact | None:
    value = _clean(match.group("v")).lower()
    if not value:
        return None
    return Fact(f"allergy:{value}", value, f"User is allergic to {value}.", 0.9)


def _diet(match: re.Match[str], sentence: str) -> Fact | None:
    value = match.group("v").lower().replace("-", " ")
    return Fact("diet", value, f"User is {value}.", 0.85)


def _birthday(match: re.Match[str], sentence: str) -> Fact | None:
    text = match.group("v").lower()
    day = re.search(r"\d{1,2}", text)
    month = re.search(_MONTHS, text)
    if day is None or month is None or not 1 <= int(day.group()) <= 31:
        return None
    value = f"{month.group().capitalize()} {int(day.group())}"
    return Fact("birthday", value, f"User's birthday is {value}.", 0.85)


def _learning(match: re.Match[str], sentence: str) -> Fact | None:
    value = _clean(_ARTICLES.sub("", match.group("v")))
    if not value or value.lower().split()[0] in {"to", "that", "how", "about", "a", "for"}:
        return None
    return Fact(f"learning:{value.lower()}", value, f"User is learning {value}.", 0.75)


_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = rf"(?P<v>(?:the\s+)?{_DAY}(?:\s+of)?\s+(?:{_MONTHS})|(?:{_MONTHS})\s+{_DAY})"
_I_AM = r"\bi(?:'m|\s+am)"
_KIN_ADJECTIVE = "(?:older |younger |little |big |twin )?"

_RULES: tuple[tuple[re.Pattern[str], Builder], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), builder)
    for pattern, builder in (
        (r"\bmy name is " + _LOOSE_NAME, _name),
        (r"\b(?:call me|i'm called|i am called|people call me) " + _LOOSE_NAME, _name),
        (_I_AM + r" (?P<v>\d{1,3})(?: years old| yo| y/o)\b", _age),
        (r"\bi (?:just )?turned (?P<v>\d{1,3})\b", _age),
        (r"\bi (?:live|am living|'m living|'m based|am based) in " + _PLACE, _location),
        (r"\bi (?:just |recently )?(?:moved|relocated) to " + _PLACE, _location),
        (_I_AM + r" (?:originally )?from " + _PLACE, _hometown),
        (r"\bi (?:grew up|was born) in " + _PLACE, _hometown),
        (r"\bi work as (?:an? )?" + _THING, _job),
        (_I_AM + r" (?:an? )" + _THING, _job),
        (r"\bi work (?:at|for) " + _PLACE, _employer),
        (rf"\bmy (?P<kind>{_PETS})(?:'s name)? is (?:called |named )?" + _NAME, _pet),
        (rf"\bmy (?P<kind>{_PETS}) (?:is )?(?:called |named )?" + _NAME, _pet),
        (rf"\bi have an? (?P<kind>{_PETS}) (?:called|named) " + _NAME, _pet),
        (
            rf"\bmy {_KIN_ADJECTIVE}(?P<rel>{_FAMILY})(?:'s name)? is (?:called |named )?" + _NAME,
            _family,
        ),
        (rf"\bmy {_KIN_ADJECTIVE}(?P<rel>{_FAMILY}),? " + _NAME, _family),
        (
            r"\bi (?P<verb>love|like|enjoy|adore|hate|dislike|can't stand|cannot stand|detest) " + _THING,
            _preference,
        ),
        (r"\bmy (?:favourite|favorite) (?P<what>[a-z]+(?: [a-z]+)?) is " + _THING, _favourite),
        (_I_AM + r" allergic to " + _THING, _allergy),
        (_I_AM + r" (?:an? )?(?P<v>vegetarian|vegan|pescatarian|gluten[- ]free|lactose intolerant)\b", _diet),
        (r"\bmy birthday is (?:on )?" + _DATE, _birthday),
        (r"\bi was born on " + _DATE, _birthday),
        (r"\bi(?:'m| am) (?:learning|studying) " + _THING, _learning),
    )
)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text) if s.strip()]


def extract_facts(text: str) -> list[Fact]:
    """The facts stated in one user message, one per slot (the last statement of a slot wins)."""
    found: dict[str, Fact] = {}
    for sentence in _sentences(_NEGATED_LIKE.sub("dislike", text.replace("’", "'"))):
        if sentence.endswith("?") or _SKIP.search(sentence):
            continue
        for pattern, builder in _RULES:
            for match in pattern.finditer(sentence):
                fact = builder(match, sentence)
                if fact is not None:
                    found.pop(fact.slot, None)
                    found[fact.slot] = fact
    return list(found.values())
