"""From a Character Card V2 to the row the dataflow reads: one composed system prompt, traits, greeting.

A card spreads the character over several fields (``system_prompt``, ``description``,
``personality``, ``scenario``, ``mes_example``, ``post_history_instructions``); front-ends such
as SillyTavern concatenate them at chat time. We concatenate once, at import, so the hot path
reads one ready ``system_prompt`` column and the prompt builder needs no card knowledge. The
card itself is stored too, for lore (``character_book``) and for a faithful export.

Placeholders follow the card convention: ``{{char}}`` (or ``<BOT>``) becomes the character's
name, ``{{user}}`` (or ``<USER>``) becomes "the user" in the prompt; the greeting keeps
``{{user}}`` because ``/start`` fills in the user's first name. ``{{original}}`` in a card's
system prompt stands for our default prompt, as the spec describes.

``post_history_instructions`` belongs after the chat history; the prompt builder has one system
message, so they close the composed prompt instead (still the last thing the persona says).

>>> from tgstream.schemas.persona_card import parse_card
>>> row = persona_row(parse_card({"name": "Ada", "description": "{{char}} fixes clocks.",
...                               "personality": "patient", "first_mes": "Hi {{user}}, I'm {{char}}."}))
>>> print(row.system_prompt)
You are Ada. Stay in character and answer as Ada would, in short, natural chat messages.
<BLANKLINE>
Ada fixes clocks.
<BLANKLINE>
Ada's personality: patient
>>> row.greeting
"Hi {{user}}, I'm Ada."
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgstream.schemas.persona_card import CardData, CharacterCardV2
from tgstream.schemas.persona_file import EXTENSION_KEY, parse_examples
from tgstream.steps.tokens import estimate_tokens

DEFAULT_CARD_PROMPT = (
    "You are {{char}}. Stay in character and answer as {{char}} would, in short, natural chat messages."
)
EXAMPLES_TOKEN_CAP = 300
DESCRIPTION_CAP = 160
_CHAR = re.compile(r"\{\{char\}\}|<BOT>", re.IGNORECASE)
_USER = re.compile(r"\{\{user\}\}|<USER>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{original\}\}", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True, slots=True)
class PersonaRow:
    """The ``personalities`` columns a card becomes."""

    name: str
    description: str
    system_prompt: str
    traits: dict[str, Any]
    style: dict[str, Any]
    greeting: str | None
    card: dict[str, Any]


def substitute(text: str, char_name: str, user: str = "the user") -> str:
    """Fill the card placeholders.

    >>> substitute("{{char}} waves at {{User}}.", "Ada")
    'Ada waves at the user.'
    """
    return _USER.sub(lambda _: user, _CHAR.sub(lambda _: char_name, text))


def _examples_block(data: CardData) -> str:
    """Example dialogue as ``User:``/``Name:`` lines, whole exchanges only, within a token cap."""
    text = data.mes_example.strip()
    if not text:
        return ""
    exchanges = parse_examples(text)
    if exchanges is None:
        lines = [substitute(text, data.name, "User")]
    else:
        lines = [f"User: {e.user}\n{data.name}: {e.assistant}" for e in exchanges]
        lines = [substitute(line, data.name, "User") for line in lines]
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = estimate_tokens(line) + 1
        if kept and used + cost > EXAMPLES_TOKEN_CAP:
            break
        kept.append(line)
        used += cost
    header = f"How {data.name} talks (style examples, not part of this conversation):"
    return "\n".join([header, *kept])


def compose_system_prompt(data: CardData) -> str:
    """The card's fields as one system prompt, in the order front-ends assemble them."""
    base = data.system_prompt.strip()
    base = _ORIGINAL.sub(lambda _: DEFAULT_CARD_PROMPT, base) if base else DEFAULT_CARD_PROMPT
    parts = [base, data.description.strip()]
    if data.personality.strip():
        parts.append(f"{{{{char}}}}'s personality: {data.personality.strip()}")
    if data.scenario.strip():
        parts.append(f"Scenario: {data.scenario.strip()}")
    parts = [substitute(part, data.name) for part in parts if part]
    examples = _examples_block(data)
    if examples:
        parts.append(examples)
    if data.post_history_instructions.strip():
        post = _ORIGINAL.sub("", data.post_history_instructions).strip()
        if post:
            parts.append(substitute(post, data.name))
    return "\n\n".join(parts)


def short_description(data: CardData) -> str:
    """One line for ``/persona`` and ``persona list``: the description's first sentence, capped."""
    source = data.description.strip() or data.creator_notes.strip() or data.personality.strip()
    text = " ".join(substitute(source, data.name).split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""
    return first if len(first) <= DESCRIPTION_CAP else first[: DESCRIPTION_CAP - 1] + "…"


def _extension(data: CardData) -> Mapping[str, Any]:
    value = data.extensions.get(EXTENSION_KEY)
    return value if isinstance(value, Mapping) else {}


def persona_row(card: CharacterCardV2) -> PersonaRow:
    """What gets stored for a card; ``card`` is the normalised V2 JSON (V1 upgraded, defaults filled)."""
    data = card.data
    extension = _extension(data)
    traits = extension.get("traits")
    style = extension.get("style")
    greeting = _CHAR.sub(lambda _: data.name, data.first_mes).strip()
    return PersonaRow(
        name=data.name,
        description=short_description(data),
        system_prompt=compose_system_prompt(data),
        traits=dict(traits) if isinstance(traits, Mapping) else {},
        style=dict(style) if isinstance(style, Mapping) else {},
        greeting=greeting or None,
        card=card.to_json_dict(),
    )
