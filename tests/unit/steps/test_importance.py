from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgstream.steps.importance import importance

TRIVIAL = ["ok", "lol", "hi", "thanks", "haha", "yes", "👍"]
QUESTIONS = ["what is the capital of France?", "how do I sort a list in python?", "can you tell me a joke?"]
NEUTRAL = ["the weather is nice today", "that movie was long", "we watched a film"]
PREFERENCES = ["I love sushi", "I hate rainy mornings", "my favourite band is Muse"]
PERSONAL = [
    "My name is Ana and I live in Porto",
    "I'm allergic to peanuts",
    "my dog Biscuit is 3 years old",
    "Меня зовут Саша, я живу в Казани",
]
REMEMBER = [
    "Remember that my daughter Mia starts school on 5 September",
    "please remember my wife's birthday is March 3",
]


def mean(texts: list[str]) -> float:
    return sum(importance(t) for t in texts) / len(texts)


def test_categories_rank_in_the_expected_order() -> None:
    ranked = [
        mean(TRIVIAL),
        mean(QUESTIONS),
        mean(NEUTRAL),
        mean(PREFERENCES),
        mean(PERSONAL),
        mean(REMEMBER),
    ]
    assert ranked == sorted(ranked)
    assert ranked[0] < ranked[-1]


@pytest.mark.parametrize("text", TRIVIAL)
def test_trivial_messages_are_barely_worth_keeping(text: str) -> None:
    assert importance(text) < 0.1


@pytest.mark.parametrize("text", PERSONAL + REMEMBER)
def test_personal_facts_are_important(text: str) -> None:
    assert importance(text) >= 0.5


def test_a_question_about_the_user_is_not_damped() -> None:
    assert importance("my name is Ana, can you remember it?") >= 0.5
    assert importance("what is Kafka?") < importance("Kafka is what I use at work all day")


def test_dates_numbers_and_length_add_a_little() -> None:
    assert importance("I love tea") < importance("I love tea, since 2019, every morning at 7")
    short = "we went out"
    assert importance(short) < importance(short + " and walked along the river for hours, talking about life")


def test_curly_apostrophes_count() -> None:
    assert importance("I’m allergic to cats") == importance("I'm allergic to cats")


def test_the_reply_can_nudge_but_not_dominate() -> None:
    base = importance("the weather is nice")
    nudged = importance("the weather is nice", "I'll remember you like sunny days")
    assert base < nudged < 0.5


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=2000), st.text(max_size=200))
def test_score_is_always_within_0_and_1(user_text: str, reply: str) -> None:
    assert 0.0 <= importance(user_text, reply) <= 1.0
