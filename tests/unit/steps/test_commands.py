from __future__ import annotations

import pytest

from tgstream.steps.commands import (
    ChatStats,
    Command,
    CommandIntent,
    forget_text,
    help_text,
    interpret,
    match_persona,
    parse_command,
    persona_list_text,
    persona_not_found_text,
    stats_text,
    unknown_command_text,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/start", Command("start")),
        ("/START", Command("start")),
        ("/help", Command("help")),
        ("/persona", Command("persona")),
        ("/persona Luna", Command("persona", "Luna")),
        ("/persona   Captain   Nemo  ", Command("persona", "Captain   Nemo")),
        ("/persona\nLuna", Command("persona", "Luna")),
        ("/reset", Command("reset")),
        ("/forget", Command("forget")),
        ("/stats", Command("stats")),
        ("/start@LunaBot", Command("start")),
        ("/persona@lunabot max", Command("persona", "max")),
        ("/dance", Command("dance")),
        ("/x_1", Command("x_1")),
    ],
)
def test_commands_are_parsed(text: str, expected: Command) -> None:
    assert parse_command(text, bot_username="LunaBot") == expected


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        " /start",
        "/",
        "/ start",
        "/etc/passwd is a file",
        "/start@OtherBot",
        "/start@",
        "/привет",
        "/" + "a" * 33,
        "/start!",
        "",
    ],
)
def test_non_commands_and_other_bots_commands_are_none(text: str) -> None:
    assert parse_command(text, bot_username="@LunaBot") is None


def test_without_a_bot_username_any_mention_is_accepted() -> None:
    assert parse_command("/start@AnyBot") == Command("start")


@pytest.mark.parametrize(
    ("command", "intent"),
    [
        (Command("start"), CommandIntent("greet", command="start")),
        (Command("help"), CommandIntent("help", command="help")),
        (Command("persona"), CommandIntent("list_personas", command="persona")),
        (Command("personas"), CommandIntent("list_personas", command="personas")),
        (Command("persona", "Luna  Lovegood"), CommandIntent("switch_persona", "Luna Lovegood", "persona")),
        (Command("reset"), CommandIntent("reset", command="reset")),
        (Command("forget"), CommandIntent("forget", command="forget")),
        (Command("stats"), CommandIntent("stats", command="stats")),
        (Command("dance"), CommandIntent("unknown", command="dance")),
    ],
)
def test_intents(command: Command, intent: CommandIntent) -> None:
    assert interpret(command) == intent


def test_help_lists_every_command() -> None:
    text = help_text("Luna")
    for name in ("/start", "/help", "/persona", "/reset", "/forget", "/stats"):
        assert name in text
    assert text.startswith("I'm Luna.")


def test_unknown_command_suggests_the_closest() -> None:
    assert "Did you mean /stats?" in unknown_command_text("stat")
    assert "/help" in unknown_command_text("zzzzzz")
    assert "Did you mean" not in unknown_command_text("zzzzzz")


def test_persona_list_marks_the_current_one() -> None:
    text = persona_list_text(["Luna", "Max"], current="luna")
    assert "• Luna (current)" in text
    assert "• Max\n" in text
    assert "default" in persona_list_text([])


def test_persona_matching_and_not_found() -> None:
    assert match_persona("  LUNA ", ["Luna", "Max"]) == "Luna"
    assert match_persona("Lu", ["Luna", "Max"]) is None
    assert "Did you mean Luna?" in persona_not_found_text("Lunna", ["Luna", "Max"])
    assert "…" in persona_not_found_text("x" * 100, ["Luna"])


def test_forget_text_counts() -> None:
    assert "nothing to forget" in forget_text(0)
    assert "1 thing " in forget_text(1)
    assert "5 things" in forget_text(5)


def test_stats_text_includes_optional_lines_only_when_known() -> None:
    stats = ChatStats("Max", exchanges_in_context=2, memories=7, messages_total=40, rate_limited=3)
    text = stats_text(stats)
    assert "Persona: Max" in text
    assert "Messages you've sent me: 40" in text
    assert "skip for speed: 3" in text
    assert "since" not in text
