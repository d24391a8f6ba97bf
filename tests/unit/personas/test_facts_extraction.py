"""Fact extraction: the statements people make, and the ones that must not become facts."""

from __future__ import annotations

import pytest

from tgstream.steps.facts import MAX_VALUE_CHARS, extract_facts


def facts(text: str) -> dict[str, str]:
    return {f.slot: f.text for f in extract_facts(text)}


@pytest.mark.parametrize(
    ("text", "slot", "line"),
    [
        ("my name is mia", "name", "User's name is Mia."),
        ("Call me Sam, everyone does", "name", "User's name is Sam."),
        ("I am 34 years old", "age", "User is 34 years old."),
        ("I just turned 40!", "age", "User is 40 years old."),
        ("I live in St. Louis now.", "location", "User lives in St. Louis."),
        ("I moved to New York City last year", "location", "User lives in New York City."),
        ("I grew up in Rio de Janeiro.", "hometown", "User is originally from Rio de Janeiro."),
        ("I'm originally from Cork", "hometown", "User is originally from Cork."),
        ("I'm a software engineer at Google", "job", "User works as a software engineer."),
        ("I work as an architect", "job", "User works as an architect."),
        ("I work at Google in London", "employer", "User works at Google."),
        ("My dog Biscuit is 3", "pet:dog", "User's dog is called Biscuit."),
        ("I have a cat named Mochi", "pet:cat", "User's cat is called Mochi."),
        ("my dog's name is Ziggy", "pet:dog", "User's dog is called Ziggy."),
        ("my older sister Mia is visiting", "family:sister", "User's sister is called Mia."),
        ("My husband is called Omar.", "family:husband", "User's husband is called Omar."),
        ("I love hiking in the mountains", "likes:hiking", "User likes hiking."),
        ("I don't like olives", "likes:olives", "User dislikes olives."),
        ("I can't stand horror films", "likes:horror films", "User dislikes horror films."),
        ("my favourite band is Radiohead", "favourite:band", "User's favourite band is Radiohead."),
        ("I'm allergic to peanuts and shellfish", "allergy:peanuts", "User is allergic to peanuts."),
        ("I'm vegan", "diet", "User is vegan."),
        ("My birthday is on the 3rd of May", "birthday", "User's birthday is May 3."),
        ("I was born on March 12th", "birthday", "User's birthday is March 12."),
        ("I'm learning Japanese", "learning:japanese", "User is learning Japanese."),
    ],
)
def test_statements_become_one_line_facts(text: str, slot: str, line: str) -> None:
    assert facts(text).get(slot) == line


@pytest.mark.parametrize(
    "text",
    [
        "Do you know where I live?",
        "where do I live?",
        "I'm not from Paris",
        "I no longer live in Berlin",
        "If I lived in Rome I'd be happy",
        "I wish I was a pilot",
        "I'm a bit tired",
        "I'm a huge fan of yours",
        "I'm a mother of two",
        "my sister is sick",
        "my dog is sick",
        "I love you",
        "I like it when you do that",
        "I live in a small flat",
        "I am 300 years old",
        "lol",
        "",
    ],
)
def test_questions_negations_and_lookalikes_are_not_facts(text: str) -> None:
    assert extract_facts(text) == []


def test_several_facts_in_one_message_each_get_their_slot() -> None:
    found = facts("Hi! My name is Ana, I live in Porto. I'm a nurse; my cat Pepper is 2.")

    assert set(found) == {"name", "location", "job", "pet:cat"}


def test_the_last_statement_of_a_slot_in_one_message_wins() -> None:
    found = facts("I live in Lyon. Well, I moved to Berlin last month.")

    assert found == {"location": "User lives in Berlin."}


def test_liking_then_hating_the_same_thing_shares_a_slot() -> None:
    before = extract_facts("I love sushi")
    after = extract_facts("I hate sushi now")

    assert [f.slot for f in before] == [f.slot for f in after] == ["likes:sushi"]
    assert (before[0].value, after[0].value) == ("likes", "dislikes")


def test_curly_apostrophes_and_long_values_are_handled() -> None:
    assert facts("I’m allergic to shellfish") == {"allergy:shellfish": "User is allergic to shellfish."}
    long = extract_facts("I love " + "x" * 200)
    assert all(len(f.value) <= MAX_VALUE_CHARS for f in long)


def test_confidence_is_a_probability() -> None:
    for fact in extract_facts("My name is Ana. I love tea. I'm a nurse. I'm vegan. I live in Porto."):
        assert 0 < fact.confidence <= 1
