"""Combining persona, adapted traits, customizations, lore, facts and memories for one turn."""

from __future__ import annotations

from tgstream.steps.character_book import LoreBook, LoreEntry
from tgstream.steps.persona_turn import remembered, turn_persona
from tgstream.steps.prompt import build_prompt

PERSONA = {
    "name": "Marigold",
    "system_prompt": "You are Marigold.",
    "conversation_style": {"length": "medium", "tone": "brisk"},
}
LORE = LoreBook(
    name="Marigold",
    entries=(
        LoreEntry(keys=(), content="Wren's End is an island.", constant=True, position="before_char"),
        LoreEntry(keys=("cat",), content="Barnaby is a one-eared cat."),
    ),
)


def test_lore_triggered_by_recent_messages_lands_in_the_system_prompt() -> None:
    persona, _ = turn_persona(PERSONA, lore=LORE, recent=["how is your cat?"])
    quiet, _ = turn_persona(PERSONA, lore=LORE, recent=["hello"])

    assert persona["system_prompt"].index("Wren's End") < persona["system_prompt"].index("You are Marigold.")
    assert "Barnaby" in persona["system_prompt"]
    assert "Barnaby" not in quiet["system_prompt"]
    assert PERSONA["system_prompt"] == "You are Marigold."  # the cached mapping is not mutated


def test_style_precedence_base_then_adapted_then_explicit_reaches_the_prompt() -> None:
    persona, custom = turn_persona(
        PERSONA,
        adapted={"conversation_style": {"length": "short", "emoji": "never"}},
        explicit={"conversation_style": {"emoji": "often"}},
    )

    system = (
        build_prompt(persona, user_text="hi", budget_tokens=500, customizations=custom).messages[0].content
    )

    assert "length: short" in system
    assert "tone: brisk" in system
    assert "emoji: often" in system


def test_without_adaptation_or_lore_the_inputs_pass_through() -> None:
    persona, custom = turn_persona(PERSONA, explicit={"nickname": "Sam"})

    assert persona == PERSONA
    assert custom == {"nickname": "Sam"}


def test_remembered_puts_facts_first_dedupes_and_caps() -> None:
    lines = remembered(["User lives in Oslo.", " "], ["User lives in Oslo.", "a", "b", "c"], limit=3)

    assert lines == ["User lives in Oslo.", "a", "b"]
