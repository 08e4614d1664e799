"""The search-ceiling policies (hwnas.bench.studies.search_ceiling) on small made data."""

from __future__ import annotations

import numpy as np

from hwnas.bench.studies import search_ceiling as ceiling


def _problem(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(1, 10, n)
    acc = 60 + 3 * np.log(lat) + rng.normal(0, 1.0, n)  # slower is better, with scatter
    gap = ceiling.front_gaps(acc, lat)
    return acc, lat, np.flatnonzero(gap == 0)


def test_front_gaps_are_zero_exactly_on_the_front():
    acc = np.array([50.0, 60.0, 55.0, 70.0, 65.0])
    lat = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(ceiling.front_gaps(acc, lat), [0, 0, 5, 0, 5])


def test_front_gaps_give_a_latency_tie_to_the_more_accurate():
    acc = np.array([40.0, 50.0, 60.0, 45.0])
    lat = np.array([1.0, 2.0, 2.0, 2.0])  # the slower three tie; only 60 is on the front
    np.testing.assert_allclose(ceiling.front_gaps(acc, lat), [0, 10, 0, 15])


def test_policies_find_the_front_first_when_the_prediction_is_exact():
    acc, lat, front = _problem()
    for order in (ceiling.greedy_search(acc, acc, lat, len(front)),
                  ceiling.membership_order(acc, 0.01, lat, draws=50)[:len(front)]):
        assert set(order.tolist()) == set(front.tolist())


def test_a_worse_prediction_finds_less_of_the_front():
    acc, lat, front = _problem()
    rng = np.random.default_rng(1)
    noisy = acc + rng.normal(0, 3.0, len(acc))
    k = 2 * len(front)
    exact = np.isin(front, ceiling.membership_order(acc, 0.1, lat, draws=100)[:k]).mean()
    blurred = np.isin(front, ceiling.membership_order(noisy, 3.0, lat, draws=100)[:k]).mean()
    assert exact == 1.0 and blurred < exact
