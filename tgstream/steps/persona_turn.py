"""Everything persona-related a turn needs, combined in one pure call for the prompt builder.

The turn step has, per chat: the persona row and its explicit customizations (Postgres, cached),
the adapted traits (Redis, from ``tgstream adapt run``), the persona's lore book (parsed once
per persona version, :class:`~tgstream.steps.character_book.LoreCache`), the recent messages,
facts about the user and recalled memories. This module turns them into the two inputs
:func:`tgstream.steps.prompt.build_prompt` takes (``persona`` and ``customizations``) and the
list of things to remember, so the dataflow only wires data.

Precedence of traits and style: the persona's base < adapted < explicit customizations.

>>> persona, custom = turn_persona(
...     {"name": "Ada", "system_prompt": "You are Ada.", "conversation_style": {"length": "medium"}},
...     explicit={"nickname": "Sam"},
...     adapted={"conversation_style": {"length": "short", "tone": "playful"}, "nickname": "Sammy"},
... )
>>> custom
{'conversation_style': {'length': 'short', 'tone': 'playful'}, 'nickname': 'Sam'}
>>> remembered(["User's name is Sam."], ["User's name is Sam.", "I love tea"], limit=3)
["User's name is Sam.", 'I love tea']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tgstream.schemas.customizations import layered
from tgstream.steps.character_book import LoreBook, apply_lore, select_lore

DEFAULT_LORE_BUDGET = 250


def turn_persona(
    persona: Mapping[str, Any],
    *,
    explicit: Mapping[str, Any] | None = None,
    adapted: Mapping[str, Any] | None = None,
    lore: LoreBook | None = None,
    recent: Sequence[str] = (),
    lore_budget_tokens: int = DEFAULT_LORE_BUDGET,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(persona mapping with the triggered lore in its system prompt, layered customizations)."""
    mapping = dict(persona)
    if lore is not None:
        entries = select_lore(lore, recent, token_budget=lore_budget_tokens)
        mapping["system_prompt"] = apply_lore(str(mapping.get("system_prompt") or ""), entries)
    return mapping, layered(adapted, explicit)


def remembered(facts: Sequence[str], memories: Sequence[str], *, limit: int) -> list[str]:
    """Facts first (short, current, one per slot), then recalled memories; no duplicates, capped."""
    return list(dict.fromkeys(text for text in (*facts, *memories) if text.strip()))[:limit]
