"""The ridge-forest blend of the surrogate search, and the search run with it."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.bench.indicators import hypervolume
from hwnas.search import HwnasError, create_strategy, get_space, run_search
from hwnas.search.strategies.blend import RidgeForestBlend
from hwnas.search.strategies.surrogate import SurrogateParetoSearch


def two_objectives(archs):
    """f1 = sum of the genes, f2 = -(genes equal to 3)."""
    G = np.array([a.genes for a in archs], dtype=float)
    F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1)])
    return F, F, np.zeros(len(archs))


def test_forest_learns_an_interaction_the_ridge_cannot():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, size=(300, 8)).astype(float)
    additive = X @ rng.uniform(1, 2, 8) + rng.normal(0, 0.05, 300)
    interacting = 5.0 * np.logical_xor(X[:, 0], X[:, 1]) + rng.normal(0, 0.05, 300)
    Y = np.column_stack([additive, interacting])
    blend = RidgeForestBlend(outputs=(1,), trees=32, seed=0).fit(X, Y)
    assert list(blend.forests_) == [1]
    Xt = rng.integers(0, 2, size=(200, 8)).astype(float)
    truth = 5.0 * np.logical_xor(Xt[:, 0], Xt[:, 1])
    mu, sd = blend.predict(Xt)
    ridge_mu, _ = blend.ridge_.predict(Xt)
    assert mu.shape == sd.shape == (200, 2) and (sd > 0).all()
    # the equal mixture's spread: each model's own variance, halved, plus their half-disagreement
    _, ridge_sd = blend.ridge_.predict(Xt)
    trees = np.stack([t.predict(Xt.astype(np.float32)) for t in blend.forests_[1].estimators_], 1)
    var_f = trees.var(axis=1) + (blend.floor * blend.ridge_.y_scale_[1]) ** 2
    expected = np.sqrt((ridge_sd[:, 1] ** 2 + var_f) / 2
                       + ((ridge_mu[:, 1] - trees.mean(axis=1)) / 2) ** 2)
    np.testing.assert_allclose(sd[:, 1], expected, rtol=1e-5)
    np.testing.assert_array_equal(mu[:, 0], ridge_mu[:, 0])  # no forest: the ridge alone
    # the ridge alone cannot express xor; half of it and half the forest do much better
    assert np.abs(mu[:, 1] - truth).mean() < 0.6 * np.abs(ridge_mu[:, 1] - truth).mean()


def test_search_with_the_forest_is_seeded_and_beats_random():
    space = get_space("nb201")

    def run(strategy):
        return np.stack([r.F for r in run_search(strategy, two_objectives, 40, batch=2).records])

    forest = [run(SurrogateParetoSearch(space, 2, seed=s, initial=10, forest=(0,)))
              for s in range(2)]
    np.testing.assert_array_equal(
        forest[0], run(SurrogateParetoSearch(space, 2, seed=0, initial=10, forest=(0,))))
    rand = [run(create_strategy("random", space, 2, seed=s)) for s in range(2)]
    assert min(hypervolume(F, np.array([24.0, 0.0])) for F in forest) > \
        max(hypervolume(F, np.array([24.0, 0.0])) for F in rand)


@pytest.mark.parametrize("forest", [(2,), (-1,), ("accuracy",)])
def test_rejects_a_forest_on_an_objective_it_does_not_have(forest):
    with pytest.raises(HwnasError, match="forest"):
        SurrogateParetoSearch(get_space("nb201"), 2, forest=forest)
