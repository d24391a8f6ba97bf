"""tgstream's own persona file (YAML), and its two-way mapping onto a Character Card V2.

A YAML persona is what an operator writes by hand, so it is strict: unknown keys are errors
(``greting:`` must not silently drop the greeting), and traits are numbers in [0, 1], short
strings or booleans. Every persona is stored as a V2 card (the ``card`` column), so that lore,
examples and post-history instructions live in one place whatever the source format; our
traits and style ride in the card's ``extensions.tgstream``, as the spec intends for
app-specific data. The mapping is lossless in both directions for everything a YAML file can
say (``file_to_card`` then ``card_to_file`` gives the same file back).

Example dialogue travels in the card's ``mes_example`` text format::

    <START>
    {{user}}: Hi!
    {{char}}: Hello there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tgstream.schemas.persona_card import (
    MAX_FIELD,
    CardData,
    CardError,
    CharacterBook,
    CharacterCardV2,
    describe_errors,
    parse_card,
)

EXTENSION_KEY = "tgstream"
MAX_FILE_BYTES = 1_000_000
YAML_SUFFIXES = (".yaml", ".yml")
CARD_SUFFIXES = (".json",)

TraitValue = float | bool | str
_NAME = re.compile(r"^[^\W_][\w .'-]{0,63}$")
_SPEAKER = re.compile(r"^\s*(\{\{user\}\}|\{\{char\}\}|<USER>|<BOT>)\s*:\s?(.*)$", re.IGNORECASE)
_START = re.compile(r"^\s*<START>\s*$", re.IGNORECASE)


class Exchange(BaseModel):
    """One example exchange: how the character answers a typical message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(min_length=1, max_length=4000)
    assistant: str = Field(min_length=1, max_length=4000)


class PersonaFile(BaseModel):
    """A persona as written in ``personas/*.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    system_prompt: str = Field(min_length=20, max_length=MAX_FIELD)
    description: str = Field(default="", max_length=MAX_FIELD)
    notes: str = Field(default="", max_length=4000)
    personality: str = Field(default="", max_length=MAX_FIELD)
    scenario: str = Field(default="", max_length=MAX_FIELD)
    greeting: str = Field(default="", max_length=4000)
    alternate_greetings: list[str] = Field(default_factory=list, max_length=20)
    traits: dict[str, TraitValue] = Field(default_factory=dict, max_length=30)
    style: dict[str, TraitValue] = Field(default_factory=dict, max_length=30)
    examples: list[Exchange] = Field(default_factory=list, max_length=30)
    post_history_instructions: str = Field(default="", max_length=4000)
    lore: CharacterBook | None = None
    tags: list[str] = Field(default_factory=list, max_length=30)
    creator: str = Field(default="", max_length=255)

    @field_validator("name")
    @classmethod
    def _usable_name(cls, name: str) -> str:
        name = name.strip()
        if not _NAME.match(name):
            msg = (
                "name must be 1-64 characters: letters, digits, spaces, '.', '-', ''' or '_', "
                "starting with a letter or digit (users type it after /persona)"
            )
            raise ValueError(msg)
        return name

    @field_validator("traits", "style")
    @classmethod
    def _bounded_values(cls, values: dict[str, TraitValue]) -> dict[str, TraitValue]:
        for key, value in values.items():
            if not key.strip() or len(key) > 40:
                raise ValueError(f"key {key!r} must be 1-40 characters")
            if isinstance(value, float) and not isinstance(value, bool) and not 0.0 <= value <= 1.0:
                raise ValueError(f"{key}: numeric values are intensities within [0, 1], got {value}")
            if isinstance(value, str) and len(value) > 200:
                raise ValueError(f"{key}: text values are at most 200 characters")
        return values


def format_examples(examples: list[Exchange]) -> str:
    """Exchanges in the card's ``mes_example`` format, one ``<START>`` block each."""
    blocks = [f"<START>\n{{{{user}}}}: {e.user}\n{{{{char}}}}: {e.assistant}" for e in examples]
    return "\n".join(blocks)


def parse_examples(text: str) -> list[Exchange] | None:
    """``mes_example`` back into exchanges, or None when it is not in the simple two-speaker form.

    >>> parse_examples("<START>\\n{{user}}: Hi\\n{{char}}: Hello\\nthere")
    [Exchange(user='Hi', assistant='Hello\\nthere')]
    >>> parse_examples("Ada speaks in riddles.") is None
    True
    """
    turns: list[tuple[str, str]] = []
    for line in text.splitlines():
        if _START.match(line):
            continue
        match = _SPEAKER.match(line)
        if match:
            speaker = "user" if match.group(1).lower() in ("{{user}}", "<user>") else "char"
            turns.append((speaker, match.group(2)))
        elif turns:
            turns[-1] = (turns[-1][0], f"{turns[-1][1]}\n{line}")
        elif line.strip():
            return None
    if not turns or len(turns) % 2:
        return None
    pairs = list(zip(turns[::2], turns[1::2], strict=True))
    if any(u[0] != "user" or c[0] != "char" for u, c in pairs):
        return None
    try:
        return [Exchange(user=u[1].strip(), assistant=c[1].strip()) for u, c in pairs]
    except ValidationError:
        return None


def file_to_card(persona: PersonaFile) -> CharacterCardV2:
    """The V2 card equivalent of a YAML persona; traits and style go into ``extensions.tgstream``."""
    extension: dict[str, Any] = {}
    if persona.traits:
        extension["traits"] = dict(persona.traits)
    if persona.style:
        extension["style"] = dict(persona.style)
    data = CardData(
        name=persona.name,
        description=persona.description,
        creator_notes=persona.notes,
        personality=persona.personality,
        scenario=persona.scenario,
        first_mes=persona.greeting,
        mes_example=format_examples(persona.examples),
        system_prompt=persona.system_prompt,
        post_history_instructions=persona.post_history_instructions,
        alternate_greetings=list(persona.alternate_greetings),
        character_book=persona.lore,
        tags=list(persona.tags),
        creator=persona.creator,
        extensions={EXTENSION_KEY: extension} if extension else {},
    )
    return CharacterCardV2(data=data)


def card_to_file(card: CharacterCardV2) -> dict[str, Any]:
    """A card as YAML-ready data, empty fields left out.

    A ``mes_example`` that is not in the two-speaker form cannot become ``examples``; it is
    returned verbatim as ``mes_example_raw``, so an export never loses text, and the operator
    rewrites it as ``examples`` before importing the YAML again (the importer says so).
    """
    data = card.data
    extension = data.extensions.get(EXTENSION_KEY, {}) if isinstance(data.extensions, Mapping) else {}
    out: dict[str, Any] = {"name": data.name, "system_prompt": data.system_prompt}
    for key, value in (
        ("description", data.description),
        ("notes", data.creator_notes),
        ("personality", data.personality),
        ("scenario", data.scenario),
        ("greeting", data.first_mes),
        ("alternate_greetings", list(data.alternate_greetings)),
        ("traits", dict(extension.get("traits", {}))),
        ("style", dict(extension.get("style", {}))),
    ):
        if value:
            out[key] = value
    if data.mes_example.strip():
        examples = parse_examples(data.mes_example)
        if examples is None:
            out["mes_example_raw"] = data.mes_example
        else:
            out["examples"] = [e.model_dump() for e in examples]
    if data.post_history_instructions:
        out["post_history_instructions"] = data.post_history_instructions
    if data.character_book is not None:
        out["lore"] = data.character_book.model_dump(mode="json", exclude_none=True)
    if data.tags:
        out["tags"] = list(data.tags)
    if data.creator:
        out["creator"] = data.creator
    return out


def parse_persona_yaml(text: str, *, source: str = "<yaml>") -> CharacterCardV2:
    """A YAML persona (validated) as a card; raises :class:`CardError` naming the file and fields."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CardError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise CardError(f"{source}: a persona file must be a YAML mapping (name: ..., system_prompt: ...)")
    if "mes_example_raw" in document:
        raise CardError(
            f"{source}: mes_example_raw is an export of unparsed example dialogue; "
            "rewrite it as examples: [{user: ..., assistant: ...}]"
        )
    try:
        return file_to_card(PersonaFile.model_validate(document))
    except ValidationError as exc:
        raise CardError(f"{source}: {describe_errors(exc)}") from exc


def load_persona(path: Path) -> CharacterCardV2:
    """One persona file: ``.yaml``/``.yml`` (ours) or ``.json`` (Character Card V1/V2)."""
    suffix = path.suffix.lower()
    if suffix not in YAML_SUFFIXES + CARD_SUFFIXES:
        raise CardError(f"{path}: expected a .yaml, .yml or .json file")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CardError(f"{path}: larger than {MAX_FILE_BYTES} bytes; is this really a persona?")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: cannot read: {exc}") from exc
    if suffix in YAML_SUFFIXES:
        return parse_persona_yaml(text, source=str(path))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: not valid JSON: {exc}") from exc
    try:
        return parse_card(document)
    except CardError as exc:
        raise CardError(f"{path}: {exc}") from exc


def persona_paths(path: Path) -> Iterator[Path]:
    """The file itself, or every persona file directly inside a directory, sorted by name."""
    if path.is_dir():
        yield from sorted(p for p in path.iterdir() if p.suffix.lower() in YAML_SUFFIXES + CARD_SUFFIXES)
    elif path.exists():
        yield path
    else:
        raise CardError(f"{path}: no such file or directory")
