"""Our YAML persona files: strict validation, and the lossless mapping to and from a card."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tgstream.schemas.persona_card import CardError, parse_card
from tgstream.schemas.persona_file import (
    Exchange,
    card_to_file,
    format_examples,
    load_persona,
    parse_examples,
    parse_persona_yaml,
    persona_paths,
)

PERSONAS = Path(__file__).resolve().parents[3] / "personas"

MINIMAL = """
name: Ada
system_prompt: You are Ada, a patient tinkerer who fixes clocks.
"""


def test_every_shipped_persona_loads_and_has_a_greeting_and_examples() -> None:
    paths = list(persona_paths(PERSONAS))

    assert len(paths) >= 4
    for path in paths:
        card = load_persona(path)
        assert card.data.first_mes, path
        assert parse_examples(card.data.mes_example), path


@pytest.mark.parametrize("path", sorted(PERSONAS.glob("*.yaml")), ids=lambda p: p.name)
def test_yaml_to_card_and_back_gives_the_same_file(path: Path) -> None:
    original = yaml.safe_load(path.read_text(encoding="utf-8"))

    exported = card_to_file(load_persona(path))

    assert exported == original


def test_card_to_yaml_to_card_keeps_every_field() -> None:
    card = load_persona(PERSONAS / "marigold.card.json")
    text = yaml.safe_dump(card_to_file(card), sort_keys=False)

    again = parse_persona_yaml(text)

    before, after = card.to_json_dict()["data"], again.to_json_dict()["data"]
    assert after["extensions"] == before["extensions"]
    assert after["character_book"] == before["character_book"]
    for field in ("name", "description", "personality", "scenario", "first_mes", "system_prompt"):
        assert after[field] == before[field]
    assert parse_examples(after["mes_example"]) == parse_examples(before["mes_example"])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: Ada\nsystem_prompt: [unclosed", "not valid YAML"),
        ("- just\n- a list", "must be a YAML mapping"),
        (MINIMAL + "greting: Hi\n", "greting: Extra inputs are not permitted"),
        (MINIMAL + "traits: {warmth: 1.5}\n", "within [0, 1]"),
        ("name: Ada\nsystem_prompt: too short\n", "system_prompt"),
        ("name: '/persona'\nsystem_prompt: You are Ada, a patient tinkerer.\n", "name must be"),
        (MINIMAL + "examples: [{user: hi}]\n", "examples.0.assistant"),
        (MINIMAL + "mes_example_raw: x\n", "rewrite it as examples"),
    ],
)
def test_invalid_yaml_fails_with_the_file_and_field(text: str, fragment: str) -> None:
    with pytest.raises(CardError) as info:
        parse_persona_yaml(text, source="ada.yaml")
    assert "ada.yaml" in str(info.value)
    assert fragment in str(info.value)


def test_examples_round_trip_through_the_card_text_format() -> None:
    exchanges = [
        Exchange(user="Hi", assistant="Hello.\nHow are you?"),
        Exchange(user="ok", assistant="Good."),
    ]

    assert parse_examples(format_examples(exchanges)) == exchanges


@pytest.mark.parametrize(
    "text",
    [
        "{{char}}: I speak first",
        "{{user}}: a\n{{user}}: b",
        "Ada talks like a pirate.",
        "{{user}}: only a question",
    ],
)
def test_examples_not_in_two_speaker_form_are_not_forced(text: str) -> None:
    assert parse_examples(text) is None


def test_unparsed_card_examples_are_exported_verbatim_not_dropped() -> None:
    card = parse_card({"name": "Ada", "mes_example": "Ada talks like a pirate."})

    assert card_to_file(card)["mes_example_raw"] == "Ada talks like a pirate."


def test_files_with_other_suffixes_and_missing_paths_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "ada.txt"
    other.write_text(MINIMAL)
    bad_json = tmp_path / "ada.json"
    bad_json.write_text("{not json")

    with pytest.raises(CardError, match=r"expected a \.yaml"):
        load_persona(other)
    with pytest.raises(CardError, match="not valid JSON"):
        load_persona(bad_json)
    with pytest.raises(CardError, match="no such file"):
        list(persona_paths(tmp_path / "missing"))
