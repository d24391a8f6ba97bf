"""Spam scoring for one incoming message, against a small per-chat history of recent messages.

The seed summed +0.3 per regex hit, which flags a single shared URL plus an excited "NOOOO..." and
misses a promo re-posted with one word changed. Here each signal yields a *strength* in 0..1 that is
scaled by its weight, and the weighted strengths are combined as a noisy-OR::

    score = 1 - prod(1 - weight_i * strength_i)

so weak signals add up, no signal alone exceeds its weight, and the score never exceeds 1. With the
default weights only three things are spam on their own: a link flood, the same text posted a fourth
time, and a message that is one long run of a character; shouting, a burst of quick messages or a long
text only tip the balance together with something else.

Signals (all O(len(text)): the few regexes have no nested or alternative quantifiers, so they
cannot backtrack catastrophically; normalisation looks at the first 1,024 characters only):

* ``repeated_chars`` — the longest run of one letter/digit. Emoji and punctuation runs are ignored:
  "😂😂😂😂" and "!!!!" are how people talk.
* ``repeated_words`` — few distinct words in a message of many words ("buy buy buy ...").
* ``shouting`` — the upper-case share of cased letters, only with enough cased letters, so "OK",
  "LOL", "NASA" and scripts without case (CJK, Arabic, Hebrew) never count.
* ``links`` — URLs and bare domains; one is free, harmless hosts (t.me, wikipedia...) count half.
* ``duplicate`` — near-duplicates of the same user's recent messages: digits folded, 3-gram shingles,
  Jaccard similarity, so "Earn $500 now" and "earn $800 NOW!!" match. Short texts ("ok") are exempt.
* ``flood`` — many messages from the same user within a few seconds.
* ``length`` — only very long texts, weakly.

Code (fenced ```...``` blocks and inline `...`) is left out of the character, case, word and link
signals: code is full of ``====``, ``CONSTANTS`` and ``http://localhost``. Words such as "<script>" or
"javascript:" carry no weight at all: they are data, and people ask about them.

>>> scorer = SpamScorer()
>>> history, verdict = scorer.score(None, "he said \\"hi\\" and left 😅", user_id=1, now=0.0)
>>> verdict.is_spam, verdict.reasons
(False, ())
>>> links = " ".join(f"http://win{i}.example.biz" for i in range(5))
>>> scorer.score(history, "FREE MONEY " + links, user_id=1, now=30.0)[1].is_spam
True
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tgstream.schemas.pickling import fast_pickle

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "repeated_chars": 0.75,
        "repeated_words": 0.55,
        "shouting": 0.35,
        "links": 0.85,
        "duplicate": 0.9,
        "flood": 0.55,
        "length": 0.2,
    }
)
DEFAULT_HARMLESS_HOSTS = frozenset(
    {"t.me", "telegram.me", "telegram.org", "wikipedia.org", "github.com", "youtube.com", "youtu.be"}
)
# Bare "word.tld" counts as a link only for these TLDs: "main.py" or "node.js" must not.
_BARE_TLDS = frozenset(
    {
        *("com", "net", "org", "ru", "io", "xyz", "top", "biz", "info", "click", "link", "site", "online"),
        *("shop", "store", "live", "club", "vip", "me", "ly", "gg", "co", "cc", "tk", "ml", "ga", "cf"),
        *("gq", "su", "win", "bid", "loan", "buzz", "icu", "fun"),
    }
)
_URL_PREFIXES = ("http://", "https://", "www.", "t.me/")
_STRIP = "()[]{}<>\"'`.,;:!?«»“”‘’"
_NORM_CAP = 256
_MIN_REPORTED = 0.05
_NON_WORD = re.compile(r"[\W_]+")
_DIGIT = re.compile(r"\d")
_WORDISH = re.compile(r"[^\W_]")


@dataclass(frozen=True, slots=True)
class SpamConfig:
    """Thresholds and weights; ``weights`` may name any subset of :data:`DEFAULT_WEIGHTS` to override."""

    threshold: float = 0.7
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    history_size: int = 12
    flood_window_s: float = 10.0
    flood_free_messages: int = 4
    flood_max_messages: int = 10
    duplicate_similarity: float = 0.75
    duplicate_min_chars: int = 12
    shout_min_letters: int = 20
    run_free_chars: int = 12
    run_max_chars: int = 32
    long_text_chars: int = 2000
    harmless_hosts: frozenset[str] = DEFAULT_HARMLESS_HOSTS

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown spam signal weights: {sorted(unknown)}")
        if any(not 0.0 <= w <= 1.0 for w in self.weights.values()):
            raise ValueError("spam weights must be within 0..1")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("spam threshold must be within (0, 1]")
        if self.history_size < 1 or self.history_size > 256:
            raise ValueError("spam history_size must be within 1..256")
        if self.flood_max_messages <= self.flood_free_messages:
            raise ValueError("flood_max_messages must exceed flood_free_messages")

    def weight(self, signal: str) -> float:
        return self.weights.get(signal, DEFAULT_WEIGHTS[signal])


@fast_pickle
@dataclass(frozen=True, slots=True)
class SpamEntry:
    user_id: int
    at: float
    norm: str


@fast_pickle
@dataclass(frozen=True, slots=True)
class SpamHistory:
    """The last ``history_size`` messages of one chat (all users), normalised and capped at 256 chars."""

    entries: tuple[SpamEntry, ...] = ()

    def without_user(self, user_id: int) -> SpamHistory:
        """The history with none of ``user_id``'s messages (for erasing a user).

        >>> h = SpamHistory((SpamEntry(1, 0.0, "a"), SpamEntry(2, 0.0, "b")))
        >>> [e.user_id for e in h.without_user(1).entries]
        [2]
        """
        return SpamHistory(tuple(e for e in self.entries if e.user_id != user_id))


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    score: float
    reasons: tuple[str, ...]
    is_spam: bool


def strip_code(text: str) -> str:
    """The text without fenced and inline code, each replaced by a space.

    >>> strip_code("look: ```python\\nX = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA'\\n``` and `FOO` ok")
    'look:   and   ok'
    """
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find("`", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        fence = "```" if text.startswith("```", start) else "`"
        end = text.find(fence, start + len(fence))
        if end < 0:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        parts.append(" ")
        pos = end + len(fence)
    return "".join(parts)


def normalise(text: str) -> str:
    """Case-, width- and digit-folded letters and digits with single spaces; the duplicate key.

    >>> normalise("Earn $500/DAY!!  Ｎｏｗ")
    'earn 000 day now'
    """
    folded = unicodedata.normalize("NFKC", text[: _NORM_CAP * 4]).casefold()
    return _DIGIT.sub("0", _NON_WORD.sub(" ", folded)).strip()[:_NORM_CAP]


@functools.lru_cache(maxsize=4096)
def _shingles(norm: str) -> frozenset[str]:
    """Cached: each history entry is compared with every later message of its chat."""
    return frozenset(norm[i : i + 3] for i in range(max(1, len(norm) - 2)))


def _host(token: str) -> str:
    rest = token.split("://", 1)[1] if "://" in token else token
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    host = host.lower()
    return host[4:] if host.startswith("www.") else host


def _is_bare_domain(token: str) -> bool:
    host = token.split("/", 1)[0].lower()
    if "@" in host or host.count(".") < 1:
        return False
    labels = host.split(".")
    return labels[-1] in _BARE_TLDS and all(label and label.replace("-", "").isalnum() for label in labels)


def split_links(text: str, harmless_hosts: frozenset[str] = DEFAULT_HARMLESS_HOSTS) -> tuple[float, str]:
    """Links in ``text`` (harmless hosts counting half), and the text with the links left out.

    >>> split_links("see https://en.wikipedia.org/wiki/Kafka and spam.xyz/win, main.py, javascript:void(0)")
    (1.5, 'see and main.py, javascript:void(0)')
    """
    total = 0.0
    kept: list[str] = []
    for raw in text.split():
        if "." not in raw and "/" not in raw:
            kept.append(raw)
            continue
        lower = raw.strip(_STRIP).lower()
        if not (lower.startswith(_URL_PREFIXES) or _is_bare_domain(lower)):
            kept.append(raw)
            continue
        host = _host(lower)
        harmless = any(host == h or host.endswith("." + h) for h in harmless_hosts)
        total += 0.5 if harmless else 1.0
    return total, " ".join(kept)


def count_links(text: str, harmless_hosts: frozenset[str] = DEFAULT_HARMLESS_HOSTS) -> float:
    return split_links(text, harmless_hosts)[0]


def _ramp(value: float, start: float, full: float) -> float:
    """0 at ``start``, 1 at ``full``, linear between."""
    if value <= start:
        return 0.0
    return min(1.0, (value - start) / (full - start))


class SpamScorer:
    """Scores messages and keeps each chat's :class:`SpamHistory` small; holds no per-chat data itself."""

    def __init__(self, config: SpamConfig | None = None) -> None:
        self.config = config or SpamConfig()
        # Runs longer than run_free_chars only; linear: one group, no nested or alternative quantifiers.
        self._long_run = re.compile(rf"([^\W_])\1{{{self.config.run_free_chars},}}", re.IGNORECASE)

    def _signals(
        self, text: str, norm: str, user_id: int, now: float, history: SpamHistory
    ) -> dict[str, tuple[float, str]]:
        cfg = self.config
        links, prose = split_links(strip_code(text), cfg.harmless_hosts)
        signals: dict[str, tuple[float, str]] = {}

        run = max((m.end() - m.start() for m in self._long_run.finditer(prose)), default=0)
        signals["repeated_chars"] = (
            _ramp(run, cfg.run_free_chars, cfg.run_max_chars),
            f"repeated_chars({run})",
        )

        words = [w for w in prose.casefold().split()[:300] if _WORDISH.search(w)][:200]
        if len(words) >= 10:
            ratio = len(set(words)) / len(words)
            signals["repeated_words"] = (
                _ramp(0.35 - ratio, 0.0, 0.2),
                f"repeated_words({ratio:.0%} distinct)",
            )

        upper, lower = sum(map(str.isupper, prose)), sum(map(str.islower, prose))
        if upper + lower >= cfg.shout_min_letters:
            caps = upper / (upper + lower)
            signals["shouting"] = (_ramp(caps, 0.6, 0.9), f"shouting({caps:.0%} caps)")

        link_strength = 0.1 if 0 < links <= 1 else _ramp(links, 1.0, 4.0)
        signals["links"] = (link_strength, f"links({links:g})")

        mine = [e for e in history.entries if e.user_id == user_id]
        if len(norm) >= cfg.duplicate_min_chars:
            shingles = _shingles(norm)
            dups = 0
            for entry in mine:
                if len(entry.norm) < cfg.duplicate_min_chars:
                    continue
                other = _shingles(entry.norm)
                if len(shingles & other) / len(shingles | other) >= cfg.duplicate_similarity:
                    dups += 1
            signals["duplicate"] = (min(1.0, dups / 3), f"duplicate(x{dups + 1})")

        recent = 1 + sum(1 for e in mine if now - e.at < cfg.flood_window_s)
        signals["flood"] = (
            _ramp(recent, cfg.flood_free_messages, cfg.flood_max_messages),
            f"flood({recent} in {cfg.flood_window_s:g}s)",
        )
        signals["length"] = (_ramp(len(text), cfg.long_text_chars, 4096), f"length({len(text)})")
        return signals

    def score(
        self, history: SpamHistory | None, text: str, *, user_id: int, now: float
    ) -> tuple[SpamHistory, SpamVerdict]:
        """Score ``text`` and return the history with it appended (spam included: repeats must count)."""
        history = history or SpamHistory()
        norm = normalise(text)
        contributions: list[tuple[float, str]] = []
        keep = 1.0
        for name, (strength, reason) in self._signals(text, norm, user_id, now, history).items():
            contribution = self.config.weight(name) * strength
            keep *= 1.0 - contribution
            if contribution >= _MIN_REPORTED:
                contributions.append((contribution, reason))
        score = round(1.0 - keep, 4)
        contributions.sort(key=lambda c: -c[0])
        entries = (*history.entries, SpamEntry(user_id, now, norm))[-self.config.history_size :]
        verdict = SpamVerdict(
            score=score,
            reasons=tuple(reason for _, reason in contributions),
            is_spam=score >= self.config.threshold,
        )
        return SpamHistory(entries), verdict
