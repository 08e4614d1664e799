"""The surrogate-guided Pareto search on synthetic problems made from the genes alone."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import (
    Architecture,
    HwnasError,
    create_strategy,
    get_space,
    pareto_mask,
    run_search,
)
from hwnas.search.strategies.surrogate import (
    BayesianRidgeEnsemble,
    SurrogateParetoSearch,
    dead_cells,
    front_membership,
    gaps,
    graph_features,
)


def two_objectives(archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f1 = sum of the genes, f2 = -(genes equal to 3): the front trades 0s for 3s."""
    G = np.array([a.genes for a in archs], dtype=float)
    F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1)])
    return F, F, np.zeros(len(archs))


def hypervolume(F: np.ndarray, ref: tuple[float, float]) -> float:
    F = np.unique(F[pareto_mask(F)], axis=0)
    area, height = 0.0, ref[1]
    for f1, f2 in F[np.argsort(F[:, 0])]:
        area += (ref[0] - f1) * max(0.0, height - f2)
        height = min(height, f2)
    return area


def test_registry_builds_it():
    assert type(create_strategy("surrogate", get_space("nb201"), 2, seed=0)) is \
        SurrogateParetoSearch


@pytest.mark.parametrize("batch", [1, 3])
def test_same_seed_same_record(batch):
    space = get_space("nb201")

    def run(seed: int):
        return run_search(SurrogateParetoSearch(space, 2, seed=seed, initial=10), two_objectives,
                          30, batch=batch)

    runs = [run(7), run(7)]
    assert [r.arch for r in runs[0].records] == [r.arch for r in runs[1].records]
    assert [r.arch for r in run(8).records] != [r.arch for r in runs[0].records]


@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa"])
def test_asks_are_valid_and_new(space_name):
    space = get_space(space_name)
    s = SurrogateParetoSearch(space, 2, seed=0, initial=8, candidates=60)
    seen: set[Architecture] = set()
    for n in (1, 7, 1, 7, 7, 1):
        archs = s.ask(n)
        assert len(archs) == n and len(set(archs)) == n and not seen & set(archs)
        for a in archs:
            assert a.space == space.name and space.from_genes(a.genes) == a
        seen.update(archs)
        s.tell(archs, two_objectives(archs)[1])


def test_asks_before_tells_repeated_and_unasked_tells():
    space = get_space("nb201")
    s = SurrogateParetoSearch(space, 2, seed=3, initial=5)
    told = space.sample_batch(30, np.random.default_rng(0))
    s.tell(told, two_objectives(told)[1], np.r_[np.zeros(25), np.ones(5)])
    archs = s.ask(4) + s.ask(4)
    assert len(set(archs)) == 8 and not set(archs) & set(told)
    s.tell(archs[::-1], two_objectives(archs[::-1])[1])
    s.tell(archs[:2], two_objectives(archs[:2])[1])  # the loop re-tells cached architectures
    assert len(s.archive_) == 38 and len(s.ask(3)) == 3


def test_beats_random_on_the_synthetic_front():
    space = get_space("nb201")
    hv = {name: [hypervolume(np.stack([r.F for r in run_search(
        create_strategy(name, space, 2, seed=s, **kw), two_objectives, 40, batch=2).records]),
        (24.0, 0.0)) for s in range(3)]
        for name, kw in (("surrogate", {"initial": 10}), ("random", {}))}
    assert min(hv["surrogate"]) > max(hv["random"]), hv
    assert np.median(hv["surrogate"]) > 1.25 * np.median(hv["random"]), hv


@pytest.mark.parametrize("m", [1, 3])
def test_other_numbers_of_objectives(m):
    space = get_space("nb201")

    def evaluate(archs):
        G = np.array([a.genes for a in archs], dtype=float)
        F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1), (G == 1).sum(axis=1)])[:, :m]
        return F, F, np.zeros(len(archs))

    result = run_search(SurrogateParetoSearch(space, m, seed=0, initial=8), evaluate, 24, batch=4)
    assert len({r.arch for r in result.records}) == 24


def test_gaps_against_hand_computed():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    mu = np.array([[0.5, 0.5], [2.0, 2.0], [-1.0, 3.0], [1.0, 1.0]])
    g = gaps(mu, np.ones_like(mu), front)
    # beyond the front by 0.5 / dominated by 1 / beyond by 1 in f1 / on the front's corner
    assert np.allclose(g, [-0.5, 1.0, -1.0, 0.0])
    assert np.allclose(gaps(mu, np.full_like(mu, 2.0), front), g / 2)


def test_ridge_ensemble_learns_an_additive_function_and_is_uncertain():
    space = get_space("nb201")
    archs = space.sample_batch(300, np.random.default_rng(0))
    X = space.encode_batch(archs)
    y = np.array([[sum(a.genes)] for a in archs], dtype=float)
    m = BayesianRidgeEnsemble(seed=0).fit(X[:200], y[:200])
    mu, sd = m.predict(X[200:])
    assert np.corrcoef(mu[:, 0], y[200:, 0])[0, 1] > 0.99 and (sd > 0).all()


def test_graph_features_ignore_dead_operations():
    space = get_space("nb201")
    # node 3 only reads node 2 through a conv; node 1's edges are dead when nothing reads node 1
    a = space.parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    b = space.parse("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    X = graph_features(space, [a, b, space.sample(0)])
    assert X is not None and np.array_equal(X[0], X[1]) and not np.array_equal(X[0], X[2])


def test_rejects_unknown_transform():
    with pytest.raises(HwnasError, match="rank"):
        SurrogateParetoSearch(get_space("nb201"), 2, transform="log")


def test_dead_cells_are_the_cells_without_a_live_path():
    space = get_space("nb201")
    live = space.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    # node 1 is computed but nothing live leaves it; node 3 reads only dead nodes
    dead = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    empty = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert dead_cells(space, [live, dead, empty]).tolist() == [False, True, True]
    # of NAS-Bench-201's 15,625 cells, those with no live path: every graph feature is zero
    archs = [space.sample(np.random.default_rng(i)) for i in range(300)]
    X = graph_features(space, archs)
    assert np.array_equal(dead_cells(space, archs), X.sum(axis=1) == 0)


@pytest.mark.parametrize("dead", ["off", "flag", "split"])
def test_dead_cell_handling_runs_and_widens_the_design(dead):
    space = get_space("nb201")
    s = SurrogateParetoSearch(space, 2, seed=0, initial=10, dead=dead)
    result = run_search(s, two_objectives, 25)
    assert len(result.records) == 25
    width = {"off": 0, "flag": 1, "split": 1 + int(space.n_choices.sum())}[dead]
    base = SurrogateParetoSearch(space, 2, seed=0, dead="off")
    base._enumerate()
    assert s._X_all.shape[1] - base._X_all.shape[1] == width


def test_rejects_unknown_dead_handling():
    with pytest.raises(HwnasError, match="flag"):
        SurrogateParetoSearch(get_space("nb201"), 2, dead="drop")


def test_front_membership_is_the_front_when_certain_and_spreads_when_not():
    rng = np.random.default_rng(0)
    mu = rng.random((200, 2))
    front = pareto_mask(mu)
    p = front_membership(mu, np.full_like(mu, 1e-9), np.zeros(200, dtype=bool), 8, rng)
    assert np.array_equal(p == 1.0, front) and np.array_equal(p == 0.0, ~front)
    # an observed (fixed) point that dominates everything leaves nothing else on the front
    mu[0] = -1.0
    fixed = np.zeros(200, dtype=bool)
    fixed[0] = True
    p = front_membership(mu, np.full_like(mu, 0.05), fixed, 16, rng)
    assert p[0] == 1.0 and p[1:].max() == 0.0
    # uncertain rows near the front are members in some worlds, far-behind ones in none
    p = front_membership(mu[1:], np.full_like(mu[1:], 0.05), fixed[1:], 64, rng)
    assert 0 < p[front[1:]].mean() < 1 and p[(mu[1:] > 0.9).all(axis=1)].max() == 0.0


def test_membership_acquisition_runs_and_rejects_unknown_names():
    space = get_space("nb201")
    s = SurrogateParetoSearch(space, 2, seed=0, initial=10, acquisition="membership", worlds=8)
    assert len(run_search(s, two_objectives, 25).records) == 25
    with pytest.raises(HwnasError, match="membership"):
        SurrogateParetoSearch(space, 2, acquisition="ehvi")
