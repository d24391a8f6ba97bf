from __future__ import annotations

import random

from tgstream.loadtest.scenario import (
    SESSION_MAX,
    Population,
    RunIds,
    SimUser,
    UpdateFactory,
    run_ids,
    session_script,
)
from tgstream.schemas.events import InboundMessage
from tgstream.schemas.telegram import Update
from tgstream.steps.spam import SpamScorer

IDS = RunIds(update_base=1_000_000, chat_base=500_000_000_000)


def _users(count: int, seed: int = 42) -> list[SimUser]:
    population = Population(seed=seed, ids=IDS)
    return [population.user(i) for i in range(count)]


def test_every_session_starts_with_start_then_a_greeting() -> None:
    for user in _users(50):
        assert user.script[0] == "/start"
        assert not user.script[1].startswith("/")
        assert 2 <= len(user.script) <= SESSION_MAX


def test_a_user_never_repeats_a_message() -> None:
    for user in _users(200):
        assert len(set(user.script)) == len(user.script)


def test_users_are_deterministic_per_seed_and_index() -> None:
    assert _users(5, seed=1) == _users(5, seed=1)
    assert [u.script for u in _users(5, seed=1)] != [u.script for u in _users(5, seed=2)]


def test_chats_are_private_and_distinct() -> None:
    users = _users(100)
    assert len({u.chat_id for u in users}) == 100
    assert all(u.chat_id > 0 for u in users)


def test_texts_vary_in_length_script_and_language() -> None:
    texts = [text for user in _users(300) for text in user.script]
    lengths = [len(t) for t in texts]
    assert min(lengths) <= 10
    assert max(lengths) >= 250
    assert any(not t.isascii() for t in texts)
    assert len({u.language_code for u in _users(300)}) >= 4


def test_scripted_users_are_never_flagged_as_spam() -> None:
    scorer = SpamScorer()
    for user in _users(300):
        history = None
        for turn, text in enumerate(user.script):
            history, verdict = scorer.score(history, text, user_id=user.chat_id, now=turn * 6.0)
            assert not verdict.is_spam, (text, verdict)


def test_updates_parse_as_telegram_updates_with_unique_ids() -> None:
    factory = UpdateFactory(IDS)
    seen = set()
    for user in _users(20):
        for turn in range(len(user.script)):
            raw = factory.message(user, turn, date=1_700_000_000.5)
            update = Update.model_validate(raw)
            inbound = InboundMessage.from_update(update, received_at=1_700_000_001.0)
            assert inbound is not None
            assert inbound.chat_id == user.chat_id
            assert inbound.text == user.script[turn]
            assert inbound.message_id == turn + 1
            seen.add(update.update_id)
    assert len(seen) == sum(len(u.script) for u in _users(20))
    assert min(seen) == IDS.update_base


def test_run_ids_do_not_overlap_between_runs_a_second_apart() -> None:
    rng = random.Random(0)
    earlier, later = run_ids(1_800_000_000.0, rng), run_ids(1_800_000_001.0, rng)
    updates_sent_in_that_second_at_100k_per_s = 100_000
    assert earlier.update_base + updates_sent_in_that_second_at_100k_per_s < later.update_base
    assert later.update_base < 2**53


def test_session_script_honours_length() -> None:
    rng = random.Random(5)
    for length in (2, 4, 10, 24):
        script = session_script(rng, name="Ana", language="es", length=length)
        assert len(script) == length
