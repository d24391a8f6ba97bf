"""Bot commands: recognise them, say what they mean, and word the answers. No side effects here.

:func:`parse_command` follows Telegram's rules: ``/name`` of 1-32 letters, digits or underscores at
the very start, optionally ``@BotName``, then whitespace and free arguments. "/etc/passwd is a file"
is an ordinary message, and ``/start@OtherBot`` in a group is for another bot (None when
``bot_username`` is given). Names are case-insensitive.

:func:`interpret` maps a command to a :class:`CommandIntent`; the dataflow performs it (database
writes, clearing the context window) and uses the text builders below for the answer.

>>> parse_command("/Persona@LunaBot  Luna ")
Command(name='persona', args='Luna')
>>> interpret(parse_command("/persona luna"))
CommandIntent(kind='switch_persona', persona_name='luna', command='persona')
>>> parse_command("/etc/passwd is a file") is None
True
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tgstream.schemas.pickling import fast_pickle

IntentKind = Literal[
    "greet", "help", "list_personas", "switch_persona", "reset", "forget", "stats", "unknown", "erase_user"
]

ERASE_USER_COMMAND = "erase-user"
"""Not a Telegram command name (no hyphens there), so no typed text can produce it: the gate makes
it from an erase request (``tgstream forget --user``), with the user id as its argument."""

_MAX_NAME = 32
_ALIASES: dict[str, IntentKind] = {
    "start": "greet",
    "help": "help",
    "commands": "help",
    "reset": "reset",
    "forget": "forget",
    "stats": "stats",
}


@fast_pickle
@dataclass(frozen=True, slots=True)
class Command:
    """A command addressed to us: ``name`` lower case without the slash, ``args`` stripped."""

    name: str
    args: str = ""


@fast_pickle
@dataclass(frozen=True, slots=True)
class CommandIntent:
    """What a command asks the dataflow to do."""

    kind: IntentKind
    persona_name: str | None = None
    command: str = ""


@dataclass(frozen=True, slots=True)
class ChatStats:
    """Numbers for /stats, gathered by the dataflow."""

    persona_name: str
    exchanges_in_context: int
    memories: int
    messages_total: int | None = None
    first_seen_at: float | None = None
    rate_limited: int = 0


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def parse_command(text: str, bot_username: str | None = None) -> Command | None:
    """The command at the start of ``text``, or None for ordinary text or another bot's command."""
    if not text.startswith("/"):
        return None
    end = 1
    while end < len(text) and end <= _MAX_NAME + 1 and _is_name_char(text[end]):
        end += 1
    name = text[1:end]
    if not name or len(name) > _MAX_NAME:
        return None
    rest = text[end:]
    if rest.startswith("@"):
        mention_end = 1
        while mention_end < len(rest) and _is_name_char(rest[mention_end]):
            mention_end += 1
        mention = rest[1:mention_end]
        if not mention:
            return None
        if bot_username is not None and mention.lower() != bot_username.lstrip("@").lower():
            return None
        rest = rest[mention_end:]
    if rest and not rest[0].isspace():
        return None
    return Command(name=name.lower(), args=rest.strip())


def interpret(command: Command) -> CommandIntent:
    """The intent of a parsed command; ``/persona`` without a name lists, with a name switches."""
    if command.name == ERASE_USER_COMMAND:
        return CommandIntent("erase_user", command=command.name)
    if command.name in ("persona", "personas"):
        wanted = " ".join(command.args.split())
        if wanted and command.name == "persona":
            return CommandIntent("switch_persona", persona_name=wanted, command=command.name)
        return CommandIntent("list_personas", command=command.name)
    return CommandIntent(_ALIASES.get(command.name, "unknown"), command=command.name)


def help_text(persona_name: str | None = None) -> str:
    who = f"I'm {persona_name}. " if persona_name else ""
    return (
        f"{who}Here is what I understand:\n"
        "/start — say hello again\n"
        "/persona — list the characters I can be; /persona <name> switches\n"
        "/reset — start our conversation afresh (long-term memories stay)\n"
        "/forget — erase everything I remember about this chat\n"
        "/stats — a few numbers about our chat\n"
        "/help — this message\n"
        "Anything else: just write, I'm listening."
    )


def unknown_command_text(name: str) -> str:
    """A helpful answer to a command we do not have, suggesting the closest one."""
    known = ["start", "help", "persona", "reset", "forget", "stats"]
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    hint = f" Did you mean /{close[0]}?" if close else ""
    return f"I don't know the command /{name}.{hint} Type /help to see what I can do."


def persona_list_text(names: Sequence[str], current: str | None = None) -> str:
    if not names:
        return "I only have my default personality right now."
    lines = [f"• {n}{' (current)' if current and n.lower() == current.lower() else ''}" for n in names]
    return "I can be:\n" + "\n".join(lines) + "\nSwitch with /persona <name>."


def match_persona(wanted: str, names: Sequence[str]) -> str | None:
    """The persona name a user meant, case-insensitively; None if there is no exact match."""
    by_lower = {n.lower(): n for n in names}
    return by_lower.get(" ".join(wanted.split()).lower())


def persona_not_found_text(wanted: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(wanted.lower(), [n.lower() for n in names], n=1, cutoff=0.5)
    suggestion = next((n for n in names if close and n.lower() == close[0]), None)
    hint = f" Did you mean {suggestion}?" if suggestion else ""
    shown = wanted if len(wanted) <= 40 else wanted[:39] + "…"
    return f"I don't know a persona called “{shown}”.{hint} Type /persona to see the list."


def switched_text(persona_name: str) -> str:
    return f"Okay — I'm {persona_name} now. Say hi!"


def reset_text() -> str:
    return "Fresh start! I've cleared our conversation (my long-term memories stay)."


def forget_text(removed: int) -> str:
    if removed == 0:
        return "There was nothing to forget — I don't remember anything about this chat yet."
    return f"Done: I forgot {removed} thing{'s' if removed != 1 else ''} I remembered about this chat."


def stats_text(stats: ChatStats) -> str:
    """The /stats answer.

    >>> print(stats_text(ChatStats("Luna", exchanges_in_context=3, memories=1, first_seen_at=0.0)))
    Persona: Luna
    Exchanges in our current conversation: 3
    Things I remember about this chat: 1
    Chatting since: 1970-01-01
    """
    lines = [
        f"Persona: {stats.persona_name}",
        f"Exchanges in our current conversation: {stats.exchanges_in_context}",
        f"Things I remember about this chat: {stats.memories}",
    ]
    if stats.messages_total is not None:
        lines.append(f"Messages you've sent me: {stats.messages_total}")
    if stats.first_seen_at is not None:
        since = datetime.fromtimestamp(stats.first_seen_at, tz=UTC).date().isoformat()
        lines.append(f"Chatting since: {since}")
    if stats.rate_limited:
        lines.append(f"Messages I had to skip for speed: {stats.rate_limited}")
    return "\n".join(lines)
