"""The memory score: a product in which recency and importance can only discount relevance."""

from __future__ import annotations

import pytest

from tgstream.state.memories import Ranking

WEEK = 7 * 86400.0


def test_a_fresh_important_memory_scores_its_relevance() -> None:
    assert Ranking(half_life_s=WEEK).score(0.8, 0.0, 1.0) == pytest.approx(0.8)


def test_one_half_life_halves_the_recency_term() -> None:
    ranking = Ranking(half_life_s=WEEK, recency_floor=0.0, importance_floor=1.0)
    assert ranking.score(1.0, WEEK, 0.0) == pytest.approx(0.5)
    assert ranking.score(1.0, 2 * WEEK, 0.0) == pytest.approx(0.25)


def test_floors_bound_the_discount() -> None:
    ranking = Ranking(half_life_s=WEEK, recency_floor=0.5, importance_floor=0.5)
    ancient_trivial = ranking.score(0.9, 1000 * WEEK, 0.0)
    assert ancient_trivial == pytest.approx(0.9 * 0.5 * 0.5, rel=1e-3)
    assert ancient_trivial <= 0.9


def test_recency_and_importance_never_lift_an_irrelevant_memory() -> None:
    ranking = Ranking()
    assert ranking.score(0.1, 0.0, 1.0) <= 0.1
    assert ranking.score(-0.2, 0.0, 1.0) < 0


def test_future_timestamps_count_as_fresh() -> None:
    assert Ranking().score(0.5, -60.0, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"half_life_s": 0}, {"scan_limit": 0}, {"recency_floor": 1.5}, {"importance_floor": -0.1}],
)
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Ranking(**kwargs)  # type: ignore[arg-type]
