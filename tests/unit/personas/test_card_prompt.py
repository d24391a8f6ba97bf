"""Composing a card into the stored persona row."""

from __future__ import annotations

from typing import Any

from tgstream.schemas.persona_card import parse_card
from tgstream.schemas.persona_file import Exchange, format_examples
from tgstream.steps.card_prompt import DEFAULT_CARD_PROMPT, EXAMPLES_TOKEN_CAP, persona_row, substitute
from tgstream.steps.tokens import estimate_tokens


def row(**data: Any):  # type: ignore[no-untyped-def]
    return persona_row(parse_card({"spec": "chara_card_v2", "data": {"name": "Ada", **data}}))


def test_placeholders_are_filled_everywhere_but_user_in_the_greeting() -> None:
    composed = row(description="<BOT> helps {{USER}}.", first_mes="Hi {{user}}, {{char}} here.")

    assert "Ada helps the user." in composed.system_prompt
    assert "{{" not in composed.system_prompt
    assert composed.greeting == "Hi {{user}}, Ada here."


def test_original_placeholder_stands_for_the_default_prompt() -> None:
    composed = row(system_prompt="{{original}} Speak in rhyme.")

    assert composed.system_prompt.startswith(substitute(DEFAULT_CARD_PROMPT, "Ada") + " Speak in rhyme.")


def test_a_blank_system_prompt_gets_the_default_and_sections_keep_card_order() -> None:
    composed = row(description="D.", personality="P", scenario="S", post_history_instructions="Stay Ada.")
    text = composed.system_prompt

    assert text.startswith("You are Ada.")
    assert (
        text.index("D.")
        < text.index("Ada's personality: P")
        < text.index("Scenario: S")
        < text.index("Stay Ada.")
    )


def test_examples_are_rendered_as_named_lines_and_capped_by_whole_exchanges() -> None:
    many = [Exchange(user=f"question {i} " + "word " * 30, assistant="answer " * 30) for i in range(20)]

    text = row(mes_example=format_examples(many)).system_prompt

    assert "User: question 0" in text
    assert "Ada: answer" in text
    examples = text[text.index("How Ada talks") :]
    assert estimate_tokens(examples) <= EXAMPLES_TOKEN_CAP + 40
    assert "question 19" not in text


def test_traits_and_style_come_from_the_tgstream_extension_only() -> None:
    composed = row(extensions={"tgstream": {"traits": {"humor": 0.8}, "style": {"length": "short"}}, "x": {}})
    foreign = row(extensions={"tgstream": "not a mapping"})

    assert (composed.traits, composed.style) == ({"humor": 0.8}, {"length": "short"})
    assert (foreign.traits, foreign.style) == ({}, {})


def test_description_column_is_the_first_sentence_capped() -> None:
    assert row(description="{{char}} fixes clocks. She is 40.").description == "Ada fixes clocks."
    assert len(row(description="word " * 100).description) <= 160
    assert row(creator_notes="Notes only.").description == "Notes only."


def test_empty_greeting_is_none_and_the_card_column_is_the_normalised_card() -> None:
    composed = row()

    assert composed.greeting is None
    assert composed.card["spec"] == "chara_card_v2"
    assert composed.card["data"]["name"] == "Ada"
