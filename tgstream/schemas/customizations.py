"""Per-chat persona customizations (``user_personalities.customizations``), and how layers combine.

Only what the prompt builder applies is accepted, so a typo is an error instead of a setting
that silently does nothing: ``name`` (what the persona calls itself), ``nickname`` (what it
calls the user), and ``personality_traits`` / ``conversation_style`` (merged key by key over
the persona's own).

Three layers decide a chat's effective traits, weakest first: the persona's base traits, the
adapted traits the adaptation job derived from the conversation, and the explicit
customizations someone set for this chat. :func:`layered` merges the last two into one
customizations mapping for :func:`tgstream.steps.prompt.build_prompt` (which lays it over the
base), so an explicit ``conversation_style.length`` always beats an adapted one.

>>> parse_assignments(["nickname=Sam", "conversation_style.length=short", "personality_traits.humor=0.9"])
{'nickname': 'Sam', 'conversation_style': {'length': 'short'}, 'personality_traits': {'humor': 0.9}}
>>> adapted = {"conversation_style": {"length": "long", "tone": "warm"}}
>>> layered(adapted, {"conversation_style": {"length": "short"}})
{'conversation_style': {'length': 'short', 'tone': 'warm'}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tgstream.schemas.persona_card import describe_errors

Scalar = float | bool | str


class CustomizationError(ValueError):
    """A customization is unknown or malformed; the message says which and why."""


class Customizations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=64)
    nickname: str | None = Field(default=None, min_length=1, max_length=64)
    personality_traits: dict[str, Scalar] | None = Field(default=None, max_length=30)
    conversation_style: dict[str, Scalar] | None = Field(default=None, max_length=30)


ALLOWED_KEYS = tuple(Customizations.model_fields)
NESTED_KEYS = ("personality_traits", "conversation_style")


def validate_customizations(data: Mapping[str, Any]) -> dict[str, Any]:
    """The validated mapping, without unset keys; raises :class:`CustomizationError`."""
    try:
        model = Customizations.model_validate(dict(data))
    except ValidationError as exc:
        raise CustomizationError(f"{describe_errors(exc)} (allowed: {', '.join(ALLOWED_KEYS)})") from exc
    return model.model_dump(exclude_none=True)


def _value(text: str) -> Scalar:
    """A number or boolean when the text is one in JSON, else the text itself."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(value, bool | int | float):
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return text


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """``key=value`` and ``group.key=value`` strings (from ``--set``) as a customizations patch."""
    patch: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CustomizationError(f"expected key=value, got {item!r}")
        group, dot, sub = key.partition(".")
        if dot:
            if group not in NESTED_KEYS or not sub:
                raise CustomizationError(f"{key!r}: dotted keys must start with {' or '.join(NESTED_KEYS)}")
            patch.setdefault(group, {})[sub] = _value(raw.strip())
        else:
            if key in NESTED_KEYS:
                raise CustomizationError(f"{key!r} is a group; set its entries as {key}.<name>=<value>")
            patch[key] = raw.strip()
    return patch


def layered(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers win; the nested trait/style groups merge key by key instead of replacing."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key in NESTED_KEYS and isinstance(value, Mapping):
                current = merged.get(key)
                merged[key] = {**(current if isinstance(current, Mapping) else {}), **value}
            else:
                merged[key] = value
    return merged


def without(customizations: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """``customizations`` minus ``keys`` (``nickname`` or ``conversation_style.length``)."""
    result = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in customizations.items()}
    for key in keys:
        group, dot, sub = key.partition(".")
        if dot and isinstance(result.get(group), dict):
            result[group].pop(sub, None)
            if not result[group]:
                del result[group]
        else:
            result.pop(key, None)
    return result
