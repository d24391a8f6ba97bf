"""Character book (lore) selection: which entries go into this turn's prompt, within a token budget.

Rules, after the Character Card V2 spec:

* An entry is considered only when ``enabled``. A ``constant`` entry is always a candidate;
  any other needs one of its ``keys`` in the scanned text, and, when ``selective``, also one of
  its ``secondary_keys``.
* The scanned text is the last ``scan_depth`` messages (both speakers), newest included. With
  ``recursive_scanning``, the content of activated entries is scanned too, so "the Lantern
  Guild" in one entry can bring in the Guild's own entry (at most :data:`MAX_RECURSION` rounds).
* Keys match as whole words when they start/end with a word character ("cat" does not fire
  on "concatenate"), case-insensitively unless the entry says ``case_sensitive``.
* Over budget, entries are dropped lowest ``priority`` first (constant entries are kept
  longest), as the spec says; what remains is inserted by ``insertion_order``, lower first.

Lore is operator-authored, so it joins the trusted system message (see :func:`apply_lore`).

>>> book = LoreBook.from_card({"data": {"name": "Ada", "character_book": {"entries": [
...     {"keys": ["lighthouse"], "content": "The lighthouse is on Gull Rock."},
...     {"keys": ["tea"], "content": "{{char}} drinks smoky tea."}]}}})
>>> [e.content for e in select_lore(book, ["Tell me about the Lighthouse!"], token_budget=100)]
['The lighthouse is on Gull Rock.']
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tgstream.schemas.persona_card import CharacterBook
from tgstream.steps.card_prompt import substitute
from tgstream.steps.tokens import estimate_tokens

DEFAULT_SCAN_DEPTH = 4
DEFAULT_TOKEN_BUDGET = 400
MAX_RECURSION = 3
LORE_HEADER = "Background facts you know (use them when relevant):"


@dataclass(frozen=True, slots=True)
class LoreEntry:
    keys: tuple[str, ...]
    content: str
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False
    constant: bool = False
    enabled: bool = True
    case_sensitive: bool = False
    insertion_order: int = 100
    priority: int = 0
    position: str = "after_char"

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.content) + 2


@dataclass(frozen=True, slots=True)
class LoreBook:
    name: str
    entries: tuple[LoreEntry, ...]
    scan_depth: int = DEFAULT_SCAN_DEPTH
    token_budget: int | None = None
    recursive: bool = False

    @classmethod
    def from_book(cls, name: str, book: CharacterBook) -> LoreBook:
        entries = tuple(
            LoreEntry(
                keys=tuple(e.keys),
                content=substitute(e.content, name),
                secondary_keys=tuple(e.secondary_keys or ()),
                selective=bool(e.selective),
                constant=bool(e.constant),
                enabled=e.enabled,
                case_sensitive=bool(e.case_sensitive),
                insertion_order=e.insertion_order,
                priority=e.priority or 0,
                position=e.position or "after_char",
            )
            for e in book.entries
            if e.enabled and e.content.strip()
        )
        return cls(
            name=name,
            entries=entries,
            scan_depth=book.scan_depth or DEFAULT_SCAN_DEPTH,
            token_budget=book.token_budget,
            recursive=bool(book.recursive_scanning),
        )

    @classmethod
    def from_card(cls, card: Mapping[str, Any] | None) -> LoreBook | None:
        """The book of a stored card (the ``card`` column), or None when it has none or it is malformed.

        Malformed lore never fails a turn: the card was validated at import, so this only
        happens after hand edits in the database, and the persona still works without lore.
        """
        if not card:
            return None
        data = card.get("data")
        if not isinstance(data, Mapping) or not data.get("character_book"):
            return None
        try:
            book = CharacterBook.model_validate(data["character_book"])
        except ValidationError:
            return None
        lore = cls.from_book(str(data.get("name") or ""), book)
        return lore if lore.entries else None


@functools.lru_cache(maxsize=4096)
def _pattern(key: str, case_sensitive: bool) -> re.Pattern[str]:
    escaped = re.escape(key)
    start = r"(?<!\w)" if re.match(r"\w", key) else ""
    end = r"(?!\w)" if re.search(r"\w$", key) else ""
    return re.compile(start + escaped + end, 0 if case_sensitive else re.IGNORECASE)


def _any_key(keys: Iterable[str], text: str, case_sensitive: bool) -> bool:
    return any(_pattern(key, case_sensitive).search(text) for key in keys)


def _triggered(entry: LoreEntry, text: str) -> bool:
    if entry.constant:
        return True
    if not _any_key(entry.keys, text, entry.case_sensitive):
        return False
    if entry.selective and entry.secondary_keys:
        return _any_key(entry.secondary_keys, text, entry.case_sensitive)
    return True


def select_lore(book: LoreBook, recent: Sequence[str], *, token_budget: int) -> list[LoreEntry]:
    """The entries to insert for a chat whose latest messages are ``recent`` (oldest first)."""
    if token_budget <= 0 or not book.entries:
        return []
    budget = min(token_budget, book.token_budget) if book.token_budget else token_budget
    text = "\n".join(recent[-book.scan_depth :])
    active: dict[int, LoreEntry] = {}
    scan = text
    for _ in range(MAX_RECURSION if book.recursive else 1):
        new = {
            i: entry for i, entry in enumerate(book.entries) if i not in active and _triggered(entry, scan)
        }
        if not new:
            break
        active.update(new)
        scan = "\n".join(entry.content for entry in new.values())
    ranked = sorted(
        active.items(),
        key=lambda item: (not item[1].constant, -item[1].priority, item[1].insertion_order, item[0]),
    )
    kept: list[tuple[int, LoreEntry]] = []
    used = 0
    for index, entry in ranked:
        if used + entry.tokens <= budget:
            kept.append((index, entry))
            used += entry.tokens
    kept.sort(key=lambda item: (item[1].insertion_order, item[0]))
    return [entry for _, entry in kept]


def apply_lore(system_prompt: str, entries: Sequence[LoreEntry]) -> str:
    """``system_prompt`` with the selected lore around it (``before_char`` first, then the rest).

    >>> apply_lore("You are Ada.", [LoreEntry(("x",), "X is a cat.")])
    'You are Ada.\\n\\nBackground facts you know (use them when relevant):\\n- X is a cat.'
    """
    if not entries:
        return system_prompt
    before = [e for e in entries if e.position == "before_char"]
    after = [e for e in entries if e.position != "before_char"]

    def block(items: list[LoreEntry]) -> str:
        lines = [f"- {' '.join(e.content.split())}" for e in items]
        return "\n".join([LORE_HEADER, *lines])

    parts = [block(before)] if before else []
    parts.append(system_prompt)
    if after:
        parts.append(block(after))
    return "\n\n".join(parts)


class LoreCache:
    """Parsed books per (persona id, version), bounded; so a turn never re-validates a card."""

    def __init__(self, max_personas: int = 256) -> None:
        self._max = max_personas
        self._books: OrderedDict[tuple[str, int], LoreBook | None] = OrderedDict()

    def get(self, persona_id: str, version: int, card: Mapping[str, Any] | None) -> LoreBook | None:
        key = (persona_id, version)
        if key in self._books:
            self._books.move_to_end(key)
            return self._books[key]
        book = LoreBook.from_card(card)
        self._books[key] = book
        while len(self._books) > self._max:
            self._books.popitem(last=False)
        return book
