"""Lore selection: triggers, case rules, selective and constant entries, recursion, budget, order."""

from __future__ import annotations

from typing import Any

from tgstream.steps.character_book import LoreBook, LoreCache, LoreEntry, apply_lore, select_lore


def entry(content: str, *keys: str, **options: Any) -> LoreEntry:
    return LoreEntry(keys=keys, content=content, **options)


def book(*entries: LoreEntry, **options: Any) -> LoreBook:
    return LoreBook(name="Ada", entries=entries, **options)


def contents(selected: list[LoreEntry]) -> list[str]:
    return [e.content for e in selected]


def test_keys_match_whole_words_case_insensitively_by_default() -> None:
    lore = book(entry("Cats.", "cat"), entry("Tea.", "Tea"))

    assert contents(select_lore(lore, ["I adore my CAT"], token_budget=100)) == ["Cats."]
    assert select_lore(lore, ["concatenate steady"], token_budget=100) == []


def test_keys_with_punctuation_edges_still_match() -> None:
    lore = book(entry("C++ lore.", "C++"), entry("Dotted.", ".NET"))

    assert contents(select_lore(lore, ["I write C++ and .NET"], token_budget=100)) == ["C++ lore.", "Dotted."]


def test_case_sensitive_entries_need_the_exact_case() -> None:
    lore = book(entry("Guild.", "Guild", case_sensitive=True))

    assert select_lore(lore, ["the guild hall"], token_budget=100) == []
    assert contents(select_lore(lore, ["the Guild hall"], token_budget=100)) == ["Guild."]


def test_selective_entries_need_a_primary_and_a_secondary_key() -> None:
    lore = book(entry("Wreck story.", "wreck", secondary_keys=("storm",), selective=True))

    assert select_lore(lore, ["tell me about the wreck"], token_budget=100) == []
    assert contents(select_lore(lore, ["the wreck in that storm"], token_budget=100)) == ["Wreck story."]


def test_constant_entries_always_fire_and_are_kept_longest_under_budget() -> None:
    constant = entry("Always here. " * 3, constant=True, priority=0)
    keyed = entry("Keyed lore. " * 3, "ship", priority=99)
    budget = constant.tokens + keyed.tokens - 1

    assert contents(select_lore(book(constant, keyed), ["no keys"], token_budget=100)) == [constant.content]
    assert contents(select_lore(book(keyed, constant), ["ship"], token_budget=budget)) == [constant.content]


def test_only_the_last_scan_depth_messages_are_scanned() -> None:
    lore = book(entry("Old topic.", "dragon"), scan_depth=2)

    assert select_lore(lore, ["dragon!", "something", "else"], token_budget=100) == []
    assert select_lore(lore, ["x", "dragon!", "else"], token_budget=100) != []


def test_lowest_priority_is_dropped_first_and_output_follows_insertion_order() -> None:
    a = entry("A " * 20, "k", priority=1, insertion_order=1)
    b = entry("B " * 20, "k", priority=5, insertion_order=3)
    c = entry("C " * 20, "k", priority=3, insertion_order=2)
    budget = b.tokens + c.tokens

    assert contents(select_lore(book(a, b, c), ["k"], token_budget=budget)) == [c.content, b.content]
    assert contents(select_lore(book(a, b, c), ["k"], token_budget=10_000)) == [
        a.content,
        c.content,
        b.content,
    ]


def test_a_smaller_book_budget_wins_over_the_callers() -> None:
    big = entry("x " * 50, "k")

    assert select_lore(book(big, token_budget=10), ["k"], token_budget=1000) == []
    assert select_lore(book(big), ["k"], token_budget=0) == []


def test_recursive_scanning_follows_mentions_in_activated_entries_boundedly() -> None:
    chain = [entry(f"Link {i} mentions key{i + 1}.", f"key{i}") for i in range(6)]

    flat = select_lore(book(*chain), ["key0"], token_budget=1000)
    deep = select_lore(book(*chain, recursive=True), ["key0"], token_budget=1000)

    assert contents(flat) == ["Link 0 mentions key1."]
    assert len(deep) == 3


def test_from_card_reads_the_stored_card_and_tolerates_garbage() -> None:
    card = {
        "data": {
            "name": "Ada",
            "character_book": {
                "entries": [
                    {"keys": ["clock"], "content": "{{char}} owns 40 clocks."},
                    {"keys": ["off"], "content": "disabled", "enabled": False},
                ]
            },
        }
    }

    lore = LoreBook.from_card(card)

    assert lore is not None
    assert contents(list(lore.entries)) == ["Ada owns 40 clocks."]
    assert LoreBook.from_card(None) is None
    assert LoreBook.from_card({"data": {"character_book": {"entries": "nope"}}}) is None
    assert LoreBook.from_card({"data": {"name": "x"}}) is None


def test_apply_lore_places_before_char_entries_ahead_of_the_prompt() -> None:
    before = entry("World: an island.", constant=True, position="before_char")
    after = entry("The cat is ginger.", "cat")

    text = apply_lore("You are Ada.", [before, after])

    assert text.index("World: an island.") < text.index("You are Ada.") < text.index("The cat is ginger.")
    assert apply_lore("You are Ada.", []) == "You are Ada."


def test_lore_cache_parses_once_per_version_and_is_bounded() -> None:
    card = {"data": {"name": "Ada", "character_book": {"entries": [{"keys": ["k"], "content": "c"}]}}}
    cache = LoreCache(max_personas=2)

    first = cache.get("p1", 1, card)
    assert cache.get("p1", 1, {}) is first
    assert cache.get("p1", 2, None) is None
    cache.get("p2", 1, card)
    assert cache.get("p1", 1, None) is None  # evicted, re-read from the (now empty) card
