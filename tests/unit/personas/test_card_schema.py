"""Character Card V2 parsing: lenient where real cards vary, strict where a card would be broken."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tgstream.schemas.persona_card import CardError, parse_card

EXAMPLE_CARD = Path(__file__).resolve().parents[3] / "personas" / "marigold.card.json"


def v2(**data: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Ada", **data}}


def test_v1_card_is_upgraded_to_v2_with_every_v2_field() -> None:
    v1 = {
        "name": "Ada",
        "description": "d",
        "personality": "p",
        "scenario": "s",
        "first_mes": "hi",
        "mes_example": "e",
    }

    card = parse_card(v1).to_json_dict()

    assert card["spec"] == "chara_card_v2"
    assert {k: card["data"][k] for k in v1} == v1
    for field in (
        "creator_notes",
        "system_prompt",
        "post_history_instructions",
        "alternate_greetings",
        "tags",
    ):
        assert field in card["data"]


def test_nulls_and_empty_position_in_lore_mean_unset() -> None:
    entry = {"keys": ["x"], "content": "X.", "case_sensitive": None, "priority": None, "position": ""}

    card = parse_card(v2(character_book={"entries": [entry], "scan_depth": None}))

    parsed = card.data.character_book
    assert parsed is not None
    assert parsed.scan_depth is None
    assert parsed.entries[0].position is None
    assert parsed.entries[0].case_sensitive is None


def test_unknown_fields_and_extensions_survive_a_round_trip() -> None:
    document = v2(extensions={"other_app": {"depth": 4}}, some_new_field=[1, 2])
    document["data"]["character_book"] = {"entries": [{"keys": ["k"], "content": "c", "vendor": "x"}]}

    again = parse_card(parse_card(document).to_json_dict()).to_json_dict()

    assert again["data"]["extensions"] == {"other_app": {"depth": 4}}
    assert again["data"]["some_new_field"] == [1, 2]
    assert again["data"]["character_book"]["entries"][0]["vendor"] == "x"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"spec": "chara_card_v3", "data": {"name": "A"}}, "unsupported card spec"),
        ({"data": {"name": "A"}}, "no 'spec'"),
        (v2(name=""), "data.name"),
        (v2(name="Two\nlines"), "one line"),
        (v2(tags="not a list"), "data.tags"),
        (v2(character_book={"entries": [{"keys": [], "content": "orphan"}]}), "at least one key"),
        (
            v2(character_book={"entries": [{"keys": [3], "content": "c"}]}),
            "data.character_book.entries.0.keys.0",
        ),
        (v2(first_mes="x" * 40_000), "data.first_mes"),
    ],
)
def test_broken_cards_fail_with_the_field_path(document: Any, fragment: str) -> None:
    with pytest.raises(CardError, match=None) as info:
        parse_card(document)
    assert fragment in str(info.value)


def test_constant_entry_needs_no_keys_and_disabled_entry_is_accepted_keyless() -> None:
    entries = [
        {"keys": [], "content": "always", "constant": True},
        {"keys": [], "content": "off", "enabled": False},
    ]

    book = parse_card(v2(character_book={"entries": entries})).data.character_book

    assert book is not None
    assert [e.content for e in book.entries] == ["always", "off"]


def test_the_shipped_example_card_is_valid_and_uses_every_lore_feature() -> None:
    card = parse_card(json.loads(EXAMPLE_CARD.read_text(encoding="utf-8")))

    book = card.data.character_book
    assert book is not None
    assert any(e.constant for e in book.entries)
    assert any(e.selective and e.secondary_keys for e in book.entries)
    assert any(e.case_sensitive for e in book.entries)
    assert any(e.position == "before_char" for e in book.entries)
    assert card.data.first_mes
    assert card.data.mes_example
