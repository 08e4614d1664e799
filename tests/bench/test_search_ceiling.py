"""The search-ceiling policies (hwnas.bench.studies.search_ceiling) on small made data."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

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


def test_greedy_with_exact_latency_predictions_is_the_greedy():
    acc, lat, _ = _problem()
    np.testing.assert_array_equal(ceiling.greedy_search(acc, acc, lat, 100),
                                  ceiling.greedy_search(acc, acc, lat, 100, lat_pred=lat))


def test_learned_latency_membership_with_tiny_spread_finds_the_front_first():
    acc, lat, front = _problem()
    order = ceiling.membership_order(acc, 0.01, lat, draws=50, lat_sd=1e-9)
    assert set(order[:len(front)].tolist()) == set(front.tolist())


def test_blurred_latency_finds_less_of_the_front():
    acc, lat, front = _problem()
    rng = np.random.default_rng(2)
    blurred = np.log(lat) + rng.normal(0, 0.3, len(lat))
    k = 2 * len(front)
    exact = np.isin(front, ceiling.greedy_search(acc, acc, lat, k)).mean()
    learned = np.isin(front, ceiling.greedy_search(acc, acc, np.log(lat), k,
                                                   lat_pred=blurred)).mean()
    sampled = np.isin(front, ceiling.membership_order(acc, 0.1, blurred, draws=100,
                                                      lat_sd=0.3)[:k]).mean()
    assert exact == 1.0 and learned < exact and sampled < exact


def test_latency_out_of_fold_ranks_an_additive_latency_almost_exactly():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 2, (300, 8)).astype(float)
    log_lat = np.log(1 + X @ rng.uniform(0.5, 2.0, 8)) + rng.normal(0, 0.01, 300)
    preds = ceiling.latency_out_of_fold(X, log_lat)
    assert set(preds) == {"ridge", "boosted trees"}
    for pred in preds.values():
        assert pred.shape == log_lat.shape and spearmanr(pred, log_lat)[0] > 0.95
