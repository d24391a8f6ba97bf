"""Persona add / version / history / assign / export against the real Postgres."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tgstream.cli.main import app
from tgstream.connectors.postgres import Pool
from tgstream.schemas.persona_card import parse_card
from tgstream.schemas.persona_file import card_to_file, parse_persona_yaml
from tgstream.state.persona_admin import PersonaAdmin
from tgstream.state.personas import PersonaNotFound, PersonaStore
from tgstream.steps.card_prompt import persona_row
from tgstream.steps.character_book import LoreBook

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PERSONAS = Path(__file__).resolve().parents[3] / "personas"


def yaml_persona(name: str, prompt: str = "You are {name}, a patient tinkerer who fixes clocks.") -> str:
    return yaml.safe_dump(
        {
            "name": name,
            "system_prompt": prompt.format(name=name),
            "greeting": "Hello {{user}}!",
            "traits": {"patience": 0.9},
            "examples": [{"user": "hi", "assistant": "Hello, friend."}],
        }
    )


async def test_add_is_versioned_and_unchanged_content_keeps_the_version(
    pool: Pool, persona_name: Callable[[], str]
) -> None:
    name = persona_name()
    admin = PersonaAdmin(pool)
    first = persona_row(parse_persona_yaml(yaml_persona(name)))
    edited = persona_row(
        parse_persona_yaml(yaml_persona(name, "You are {name}, who now repairs bicycles too."))
    )

    created = await admin.add(first)
    again = await admin.add(first)
    updated = await admin.add(edited)
    history = await admin.history(name.upper())

    assert (created.action, created.version) == ("created", 1)
    assert (again.action, again.version, again.id) == ("unchanged", 1, created.id)
    assert (updated.action, updated.version, updated.id) == ("updated", 2, created.id)
    assert [v.version for v in history] == [2, 1]
    assert "bicycles" in history[0].system_prompt
    assert "bicycles" not in history[1].system_prompt
    assert (await admin.version(name, 1)).system_prompt == first.system_prompt
    live = await PersonaStore(pool).get_by_name(name)
    assert (live.version, live.system_prompt, live.greeting) == (2, edited.system_prompt, "Hello {{user}}!")


async def test_card_import_then_export_equals_the_input(pool: Pool, persona_name: Callable[[], str]) -> None:
    document = json.loads((PERSONAS / "marigold.card.json").read_text(encoding="utf-8"))
    document["data"]["name"] = persona_name()
    admin = PersonaAdmin(pool)

    await admin.add(persona_row(parse_card(document)))
    exported = (await admin.version(document["data"]["name"])).as_card().to_json_dict()

    assert exported == document
    stored = await PersonaStore(pool).get_by_name(document["data"]["name"])
    lore = LoreBook.from_card(stored.card)
    assert lore is not None
    assert len(lore.entries) == len(document["data"]["character_book"]["entries"])


async def test_a_v1_card_exports_as_the_equivalent_v2_card(
    pool: Pool, persona_name: Callable[[], str]
) -> None:
    v1 = {"name": persona_name(), "description": "A clockmaker.", "personality": "calm", "scenario": "",
          "first_mes": "Tick, tock, {{user}}.", "mes_example": ""}  # fmt: skip
    admin = PersonaAdmin(pool)

    await admin.add(persona_row(parse_card(v1)))
    exported = (await admin.version(v1["name"])).as_card().to_json_dict()

    assert exported["spec"] == "chara_card_v2"
    assert {k: exported["data"][k] for k in v1} == v1


async def test_assign_with_customizations_then_resolve(
    pool: Pool, persona_name: Callable[[], str], chat_ids: list[int]
) -> None:
    name = persona_name()
    await PersonaAdmin(pool).add(persona_row(parse_persona_yaml(yaml_persona(name))))
    store = PersonaStore(pool)

    await store.assign(chat_ids[0], chat_ids[0], name, {"nickname": "Sam"})
    assignment = await store.resolve(chat_ids[0])

    assert assignment.persona.name == name
    assert dict(assignment.customizations) == {"nickname": "Sam"}
    assert await PersonaAdmin(pool).customizations(chat_ids[0], chat_ids[0]) == {"nickname": "Sam"}
    assert await PersonaAdmin(pool).customizations(chat_ids[1], chat_ids[1]) is None


async def test_unknown_names_and_versions_raise_persona_not_found(pool: Pool) -> None:
    admin = PersonaAdmin(pool)

    with pytest.raises(PersonaNotFound):
        await admin.history("no-such-persona-anywhere")
    with pytest.raises(PersonaNotFound, match="version 99"):
        await admin.version("default", 99)


async def test_a_seeded_persona_without_card_exports_and_reimports_to_the_same_prompt(pool: Pool) -> None:
    seeded = await PersonaAdmin(pool).version("sage")

    again = persona_row(parse_card(seeded.as_card().to_json_dict()))

    assert again.system_prompt == seeded.system_prompt
    assert (again.traits, again.style, again.greeting) == (
        dict(seeded.traits),
        dict(seeded.style),
        seeded.greeting,
    )
    assert again.description == seeded.description


def test_cli_add_assign_export_round_trip(
    tmp_path: Path, persona_name: Callable[[], str], chat_ids: list[int]
) -> None:
    runner = CliRunner()
    name = persona_name()
    card = json.loads((PERSONAS / "marigold.card.json").read_text(encoding="utf-8"))
    card["data"]["name"] = name
    source = tmp_path / "in"
    source.mkdir()
    (source / "p.json").write_text(json.dumps(card), encoding="utf-8")

    added = runner.invoke(app, ["persona", "add", str(source)])
    assert added.exit_code == 0, added.output
    assert "created" in added.output
    assigned = runner.invoke(
        app,
        ["persona", "assign", name, "--chat", str(chat_ids[0]), "--set", "nickname=Sam",
         "--set", "conversation_style.length=long"],
    )  # fmt: skip
    assert assigned.exit_code == 0, assigned.output
    unset = runner.invoke(app, ["persona", "assign", name, "--chat", str(chat_ids[0]), "--unset", "nickname"])
    assert '"conversation_style": {"length": "long"}' in unset.output
    assert "Sam" not in unset.output
    exported = runner.invoke(app, ["persona", "export", name, "--format", "card"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output) == card
    as_yaml = runner.invoke(app, ["persona", "export", name])
    assert yaml.safe_load(as_yaml.output) == card_to_file(parse_card(card))


def test_cli_add_refuses_the_whole_batch_when_one_file_is_bad(
    tmp_path: Path, persona_name: Callable[[], str]
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    name = persona_name()
    good.write_text(yaml_persona(name), encoding="utf-8")
    bad.write_text(
        "name: Bad\nsystem_prompt: You are Bad, with a typo below.\ngreting: hi\n", encoding="utf-8"
    )

    result = CliRunner().invoke(app, ["persona", "add", str(tmp_path)])
    shown = CliRunner().invoke(app, ["persona", "show", name])

    assert result.exit_code == 2
    assert "greting" in result.output
    assert "nothing was written" in result.output
    assert shown.exit_code == 2
    assert "no persona named" in shown.output


def test_cli_assign_rejects_unknown_customization_keys(
    persona_name: Callable[[], str], chat_ids: list[int]
) -> None:
    result = CliRunner().invoke(
        app, ["persona", "assign", "default", "--chat", str(chat_ids[0]), "--set", "nick=Sam"]
    )

    assert result.exit_code == 2
    assert "allowed: name, nickname" in result.output
