"""Character Card V2 (``chara_card_v2``), the JSON format most companion apps export characters in.

Spec: github.com/malfoyslastname/character-card-spec-v2. We read it leniently and write it
completely, because cards in the wild are hand-edited and produced by a dozen tools:

* V1 cards (the six fields at the top level, no ``spec``) are upgraded to V2 on read.
* Fields V2 requires but many exporters omit (``creator_notes``, ``tags``...) default to empty.
* ``null`` in an optional lore field means "not set"; an empty ``position`` means "not set".
* Unknown fields are kept (``extra="allow"``) and ``extensions`` are kept verbatim, as the spec
  asks, so a card imported and exported again says the same thing.

What is *not* lenient: wrong types, a missing name, keys that are not strings, and sizes past
what a prompt could ever hold. Those fail with the field's path in the message
(:class:`CardError`), because a silently half-imported character is worse than a clear refusal.

>>> card = parse_card({"name": "Ada", "description": "A tinkerer.", "first_mes": "Hi {{user}}!"})
>>> card.spec, card.data.name, card.data.first_mes
('chara_card_v2', 'Ada', 'Hi {{user}}!')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_NAME = 255
MAX_FIELD = 32_000
MAX_ENTRIES = 500
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")

_LENIENT = ConfigDict(extra="allow")


class CardError(ValueError):
    """A card or persona file is invalid; the message names every bad field."""


def _drop_nulls(data: Any) -> Any:
    """Optional fields sent as ``null`` behave as if absent (their defaults apply)."""
    if isinstance(data, Mapping):
        return {k: v for k, v in data.items() if v is not None}
    return data


class BookEntry(BaseModel):
    """One lore entry: inserted into the prompt when one of its keys appears in the chat."""

    model_config = _LENIENT

    keys: list[str] = Field(default_factory=list, max_length=100)
    content: str = Field(max_length=MAX_FIELD)
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int = 100
    case_sensitive: bool | None = None
    name: str | None = None
    priority: int | None = None
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    secondary_keys: list[str] | None = Field(default=None, max_length=100)
    constant: bool | None = None
    position: Literal["before_char", "after_char"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _lenient_input(cls, data: Any) -> Any:
        data = _drop_nulls(data)
        if isinstance(data, Mapping) and data.get("position") == "":
            data = {k: v for k, v in data.items() if k != "position"}
        return data

    @field_validator("keys", "secondary_keys")
    @classmethod
    def _clean_keys(cls, keys: list[str] | None) -> list[str] | None:
        if keys is None:
            return None
        cleaned = [key.strip() for key in keys]
        return [key for key in cleaned if key]

    @model_validator(mode="after")
    def _triggerable(self) -> BookEntry:
        if self.enabled and not self.constant and not self.keys:
            raise ValueError("an enabled entry needs at least one key, or constant: true")
        return self


class CharacterBook(BaseModel):
    """Lore for a character: entries triggered by keywords, within a token budget."""

    model_config = _LENIENT

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = Field(default=None, ge=1, le=100)
    token_budget: int | None = Field(default=None, ge=1, le=100_000)
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[BookEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)

    @model_validator(mode="before")
    @classmethod
    def _lenient_input(cls, data: Any) -> Any:
        return _drop_nulls(data)


class CardData(BaseModel):
    """The ``data`` object of a V2 card."""

    model_config = _LENIENT

    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = Field(default="", max_length=MAX_FIELD)
    personality: str = Field(default="", max_length=MAX_FIELD)
    scenario: str = Field(default="", max_length=MAX_FIELD)
    first_mes: str = Field(default="", max_length=MAX_FIELD)
    mes_example: str = Field(default="", max_length=MAX_FIELD)
    creator_notes: str = Field(default="", max_length=MAX_FIELD)
    system_prompt: str = Field(default="", max_length=MAX_FIELD)
    post_history_instructions: str = Field(default="", max_length=MAX_FIELD)
    alternate_greetings: list[str] = Field(default_factory=list, max_length=100)
    character_book: CharacterBook | None = None
    tags: list[str] = Field(default_factory=list, max_length=100)
    creator: str = Field(default="", max_length=MAX_NAME)
    character_version: str = Field(default="", max_length=MAX_NAME)
    extensions: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _lenient_input(cls, data: Any) -> Any:
        return _drop_nulls(data)

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("name must not be blank")
        if any(ch in name for ch in "\r\n\t") or not name.isprintable():
            raise ValueError("name must be one line of printable characters")
        return name


class CharacterCardV2(BaseModel):
    model_config = _LENIENT

    spec: Literal["chara_card_v2"] = "chara_card_v2"
    spec_version: str = "2.0"
    data: CardData

    def to_json_dict(self) -> dict[str, Any]:
        """The card as plain JSON data, every V2 field present, unset optional lore fields left out."""
        dumped: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return dumped


def parse_card(document: Any) -> CharacterCardV2:
    """A validated V2 card from decoded JSON (V2, or V1 upgraded); raises :class:`CardError`."""
    if not isinstance(document, Mapping):
        raise CardError(f"a character card must be a JSON object, got {type(document).__name__}")
    spec = document.get("spec")
    if spec is None:
        if "data" in document:
            raise CardError("card has a 'data' object but no 'spec'; expected spec: chara_card_v2")
        v1 = {key: document[key] for key in V1_FIELDS if key in document}
        document = {"spec": "chara_card_v2", "spec_version": "2.0", "data": v1}
    elif spec != "chara_card_v2":
        raise CardError(f"unsupported card spec {spec!r}; this importer reads chara_card_v2 (and V1)")
    try:
        return CharacterCardV2.model_validate(document)
    except ValidationError as exc:
        raise CardError(describe_errors(exc)) from exc


def describe_errors(exc: ValidationError) -> str:
    """One line per bad field, with its path (``data.character_book.entries.2.keys``)."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)
