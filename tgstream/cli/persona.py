"""`tgstream persona add|list|show|assign|export`: manage the characters the bot can play.

``add`` takes YAML persona files (ours) and Character Card V2/V1 JSON, files or directories; it
validates every file before writing any, so a typo in one file never leaves a half-imported
set. The dataflow's persona cache picks up changes within its TTL (30 s).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
import yaml
from rich.console import Console
from rich.table import Table

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

persona_app = typer.Typer(
    help="Personas: import, inspect, assign and export characters.", no_args_is_help=True
)
console = Console()
T = TypeVar("T")


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    """Open a small pool, run ``work(pool)``, close it; database errors become one red line."""
    from tgstream.connectors.postgres import DatabaseError, open_pool
    from tgstream.schemas.customizations import CustomizationError
    from tgstream.schemas.persona_card import CardError
    from tgstream.state.personas import PersonaNotFound

    settings = settings_or_exit()

    async def main() -> T:
        pool = await open_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    with reported_errors():
        try:
            return asyncio.run(main())
        except (DatabaseError, PersonaNotFound, CardError, CustomizationError) as exc:
            raise CommandError(str(exc)) from exc
    raise AssertionError("unreachable")  # pragma: no cover


@persona_app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="YAML persona files, card JSON files, or directories.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing.")] = False,
) -> None:
    """Import or update personas; an unchanged file keeps its version, a changed one gets a new one."""
    from tgstream.schemas.persona_card import CardError
    from tgstream.schemas.persona_file import load_persona, persona_paths
    from tgstream.state.persona_admin import PersonaAdmin
    from tgstream.steps.card_prompt import PersonaRow, persona_row

    rows: list[tuple[Path, PersonaRow]] = []
    errors: list[str] = []
    for path in paths:
        try:
            found = list(persona_paths(path))
        except CardError as exc:
            errors.append(str(exc))
            continue
        if not found:
            errors.append(f"{path}: no .yaml, .yml or .json files in this directory")
        for file in found:
            try:
                rows.append((file, persona_row(load_persona(file))))
            except CardError as exc:
                errors.append(str(exc))
    names: dict[str, Path] = {}
    for file, row in rows:
        other = names.setdefault(row.name.lower(), file)
        if other != file:
            errors.append(f"{file}: persona {row.name!r} is also defined in {other}")
    if errors:
        with reported_errors():
            raise CommandError(
                f"{len(errors)} invalid persona file(s), nothing was written:\n" + "\n".join(errors)
            )
    if dry_run:
        for file, row in rows:
            console.print(f"[green]valid:[/] {file} -> {row.name}", highlight=False)
        return

    async def work(pool: Any) -> list[tuple[Path, Any]]:
        admin = PersonaAdmin(pool)
        return [(file, await admin.add(row)) for file, row in rows]

    table = Table("file", "persona", "version", "result", title="persona add")
    for file, result in _run(work):
        colour = {"created": "green", "updated": "yellow", "unchanged": "dim"}[result.action]
        table.add_row(str(file), result.name, str(result.version), f"[{colour}]{result.action}[/]")
    console.print(table)


@persona_app.command("list")
def list_personas() -> None:
    """Every persona with its version, description, lore size and how many chats use it."""
    from tgstream.state.persona_admin import PersonaAdmin
    from tgstream.state.personas import PersonaStore
    from tgstream.steps.character_book import LoreBook

    async def work(pool: Any) -> tuple[list[Any], dict[str, int]]:
        return await PersonaStore(pool).list_personas(), await PersonaAdmin(pool).assignment_counts()

    personas, counts = _run(work)
    table = Table("name", "version", "description", "lore", "chats", title="personas")
    for persona in personas:
        book = LoreBook.from_card(persona.card)
        lore = str(len(book.entries)) if book else "-"
        table.add_row(
            persona.name, str(persona.version), persona.description, lore, str(counts.get(persona.name, 0))
        )
    console.print(table)


@persona_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Persona name (case-insensitive).")],
    version: Annotated[
        int | None, typer.Option("--version", help="An older version from the history.")
    ] = None,
) -> None:
    """The persona's composed system prompt, traits, style, greeting, lore keys and version history."""
    from tgstream.state.persona_admin import PersonaAdmin
    from tgstream.steps.character_book import LoreBook

    async def work(pool: Any) -> tuple[Any, list[Any]]:
        admin = PersonaAdmin(pool)
        return await admin.version(name, version), await admin.history(name)

    shown, history = _run(work)
    console.rule(f"{shown.name}  v{shown.version}")
    console.print(f"[bold]description:[/] {shown.description}", highlight=False)
    console.print(f"[bold]greeting:[/] {shown.greeting or '-'}", highlight=False)
    console.print(f"[bold]traits:[/] {json.dumps(dict(shown.traits), ensure_ascii=False)}", highlight=False)
    console.print(f"[bold]style:[/] {json.dumps(dict(shown.style), ensure_ascii=False)}", highlight=False)
    book = LoreBook.from_card(shown.card)
    if book:
        for entry in book.entries:
            keys = "(constant)" if entry.constant else ", ".join(entry.keys)
            console.print(f"[bold]lore[/] [{keys}] {entry.content[:80]}", highlight=False)
    console.print("[bold]system prompt:[/]")
    console.print(shown.system_prompt, highlight=False, markup=False)
    versions = ", ".join(f"v{v.version} ({v.recorded_at:%Y-%m-%d %H:%M})" for v in history)
    console.print(f"[bold]history:[/] {versions}", highlight=False)


@persona_app.command("assign")
def assign(
    name: Annotated[str, typer.Argument(help="Persona name.")],
    chat: Annotated[int, typer.Option("--chat", help="Telegram chat id.")],
    user: Annotated[int | None, typer.Option("--user", help="Who chose it (default: the chat id).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Customization key=value; traits/style as personality_traits.humor=0.8."),
    ] = None,
    unset: Annotated[list[str] | None, typer.Option("--unset", help="Remove a customization key.")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Start from no customizations.")] = False,
) -> None:
    """Give a chat a persona; --set/--unset edit its customizations (kept otherwise)."""
    from tgstream.schemas.customizations import layered, parse_assignments, validate_customizations, without
    from tgstream.state.persona_admin import PersonaAdmin
    from tgstream.state.personas import PersonaStore

    user_id = chat if user is None else user
    with reported_errors():
        try:
            patch = parse_assignments(set_ or [])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    async def work(pool: Any) -> Any:
        current = None if reset else await PersonaAdmin(pool).customizations(chat, user_id)
        customizations = None
        if reset or patch or unset or current is None:
            customizations = validate_customizations(without(layered(current, patch), unset or []))
        return await PersonaStore(pool).assign(chat, user_id, name, customizations)

    assignment = _run(work)
    console.print(
        f"chat {chat} now talks to [bold]{assignment.persona.name}[/] v{assignment.persona.version}; "
        f"customizations: {json.dumps(dict(assignment.customizations), ensure_ascii=False)} "
        "(the dataflow picks this up within 30 s)",
        highlight=False,
    )


@persona_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Persona name.")],
    format_: Annotated[
        Literal["yaml", "card"], typer.Option("--format", help="Our YAML, or Character Card V2 JSON.")
    ] = "yaml",
    version: Annotated[
        int | None, typer.Option("--version", help="An older version from the history.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) a persona as YAML or as a Character Card V2 that other apps can import."""
    from tgstream.schemas.persona_file import card_to_file
    from tgstream.state.persona_admin import PersonaAdmin

    async def work(pool: Any) -> Any:
        return await PersonaAdmin(pool).version(name, version)

    card = _run(work).as_card()
    if format_ == "card":
        text = json.dumps(card.to_json_dict(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = yaml.safe_dump(card_to_file(card), sort_keys=False, allow_unicode=True, width=100)
    if output is None:
        typer.echo(text, nl=False)
        return
    with reported_errors():
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc}") from exc
    console.print(f"wrote {output}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(persona_app, name="persona")
