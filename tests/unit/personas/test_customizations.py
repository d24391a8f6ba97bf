"""Customizations: --set parsing, validation, and the base < adapted < explicit layering."""

from __future__ import annotations

from typing import Any

import pytest

from tgstream.schemas.customizations import (
    CustomizationError,
    layered,
    parse_assignments,
    validate_customizations,
    without,
)


def test_values_that_are_json_numbers_or_booleans_are_typed() -> None:
    patch = parse_assignments(
        ["personality_traits.humor=1", "conversation_style.emoji=false", "nickname=007"]
    )

    assert patch == {
        "personality_traits": {"humor": 1.0},
        "conversation_style": {"emoji": False},
        "nickname": "007",
    }


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("novalue", "key=value"),
        ("=x", "key=value"),
        ("tone.x=1", "dotted keys"),
        ("conversation_style=x", "is a group"),
    ],
)
def test_malformed_assignments_are_refused(item: str, fragment: str) -> None:
    with pytest.raises(CustomizationError, match=fragment):
        parse_assignments([item])


def test_unknown_keys_fail_and_list_the_allowed_ones() -> None:
    with pytest.raises(CustomizationError, match="allowed: name, nickname"):
        validate_customizations({"nick": "Sam"})


def test_explicit_customizations_beat_adapted_traits_key_by_key() -> None:
    adapted: dict[str, Any] = {
        "conversation_style": {"length": "long", "tone": "playful"},
        "nickname": "buddy",
    }
    explicit = {"conversation_style": {"length": "short"}}

    merged = layered(adapted, explicit)

    assert merged == {"conversation_style": {"length": "short", "tone": "playful"}, "nickname": "buddy"}
    assert adapted["conversation_style"]["length"] == "long"  # inputs untouched


def test_without_removes_whole_keys_and_nested_entries() -> None:
    custom = {
        "nickname": "Sam",
        "conversation_style": {"length": "short"},
        "personality_traits": {"a": 1.0, "b": 0.5},
    }

    assert without(custom, ["nickname", "conversation_style.length", "personality_traits.a"]) == {
        "personality_traits": {"b": 0.5}
    }
    assert custom["personality_traits"] == {"a": 1.0, "b": 0.5}
