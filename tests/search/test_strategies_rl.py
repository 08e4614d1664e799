"""REINFORCE and the predictor-guided search on synthetic problems made from the genes alone."""

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
from hwnas.search.strategies.guided import PredictorGuided, RandomFeatureEnsemble, hypervolume_gain
from hwnas.search.strategies.reinforce import Reinforce

NAMES = ("reinforce", "guided")


def two_objectives(archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f1 = sum of the genes, f2 = -(genes equal to 3): the front trades 0s for 3s."""
    G = np.array([a.genes for a in archs], dtype=float)
    F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1)])
    return F, F, np.zeros(len(archs))


def sum_of_genes(archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    F = np.array([[sum(a.genes)] for a in archs], dtype=float)
    return F, F, np.zeros(len(archs))


def hypervolume(F: np.ndarray, ref: tuple[float, float]) -> float:
    """Area dominated by the rows of ``F`` (two minimised objectives) and bounded by ``ref``."""
    F = np.unique(F[pareto_mask(F)], axis=0)
    area, height = 0.0, ref[1]
    for f1, f2 in F[np.argsort(F[:, 0])]:
        area += (ref[0] - f1) * max(0.0, height - f2)
        height = min(height, f2)
    return area


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_record(name):
    space, kw = get_space("nb201"), {"initial": 10} if name == "guided" else {}

    def run(seed: int):
        return run_search(create_strategy(name, space, 2, seed=seed, **kw), two_objectives, 30,
                          batch=3)

    runs = [run(7), run(7)]
    assert [r.arch for r in runs[0].records] == [r.arch for r in runs[1].records]
    other = run(8)
    assert [r.arch for r in other.records] != [r.arch for r in runs[0].records]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa"])
def test_asks_are_valid_and_new(name, space_name):
    space = get_space(space_name)
    s = create_strategy(name, space, 2, seed=0, **({"initial": 5} if name == "guided" else {}))
    seen: set[Architecture] = set()
    for n in (1, 4, 2, 7, 3):
        archs = s.ask(n)
        assert len(archs) == n
        for a in archs:
            assert a.space == space.name and space.from_genes(a.genes) == a
        assert len(set(archs)) == n and not seen & set(archs)  # nothing archived asked again
        seen.update(archs)
        s.tell(archs, two_objectives(archs)[1])


@pytest.mark.parametrize("name", NAMES)
def test_unasked_tells_are_accepted(name):
    space = get_space("nb201")
    s = create_strategy(name, space, 2, seed=1)
    told = space.sample_batch(30, np.random.default_rng(0))
    s.tell(told, two_objectives(told)[1], np.r_[np.zeros(25), np.ones(5)])
    archs = s.ask(5)
    assert len(archs) == 5 and not set(archs) & set(told)
    if name == "guided":
        assert s.surrogate_ is not None  # 30 tells >= initial: the surrogate is in use


@pytest.mark.parametrize("name", NAMES)
def test_no_repeated_asks_in_the_loop(name):
    strategy = create_strategy(name, get_space("nb201"), 2, seed=3)
    result = run_search(strategy, two_objectives, 48, batch=4)
    assert result.asks == len(result.records) == 48


def test_reinforce_moves_probability_to_better_choices():
    space = get_space("nb201")
    s = Reinforce(space, 1, seed=0)
    assert np.allclose(s.probabilities(), 0.2)
    run_search(s, sum_of_genes, 150)
    p = s.probabilities()
    assert (p[:, 0] > 0.35).all() and (p[:, 0] > p[:, 4]).all()
    assert p[:, 0].mean() > 2 * p[:, 4].mean()


def test_reinforce_updates_only_active_genes():
    space = get_space("ofa")
    genes = np.zeros(len(space.genes), dtype=int)
    a = space.from_genes(genes)  # smallest depths: some layers inactive
    inactive = ~space.active(a.genes)
    assert inactive.any()
    s = Reinforce(space, 1, seed=0, entropy=0.0)
    b = space.sample(np.random.default_rng(1))
    s.tell([b], [[1.0]])
    s.tell([space.sample(np.random.default_rng(2))], [[2.0]])
    before = s.logits_.copy()
    s.tell([a], [[0.0]])  # the best reward so far: a non-zero advantage
    changed = ~np.isclose(s.logits_, before).all(axis=1)
    assert not changed[inactive].any() and changed[~inactive].all()


def test_reinforce_rewards_normalised_and_penalised():
    s = Reinforce(get_space("nb201"), 2, seed=0)
    F = np.array([[0.0, 10.0], [5.0, 0.0], [2.0, 2.0]])
    s.tell(s.ask(3), F)
    r = s.rewards(F, np.zeros(3))
    assert ((r >= -1) & (r <= 0)).all()
    assert s.rewards(F[:1], np.array([0.5]))[0] < r.min()
    with pytest.raises(HwnasError, match="tchebycheff"):
        Reinforce(get_space("nb201"), 2, scalarization="chebyshev")


def test_hypervolume_gain_against_hand_computed():
    rng = np.random.default_rng(0)
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    points = np.array([[0.25, 0.25], [0.6, 0.6], [0.0, 0.0], [3.0, 3.0], [0.5, 0.4]])
    exact = hypervolume_gain(front, points, np.array([2.0, 2.0]), rng)
    assert np.allclose(exact, [0.3125, 0.0, 0.75, 0.0, 0.05])
    mc = hypervolume_gain(np.c_[front, np.zeros(3)], np.c_[points, np.zeros(5)],
                          np.array([2.0, 2.0, 1.0]), rng, samples=40000)
    assert np.allclose(mc, exact, atol=0.03)


def test_ensemble_learns_an_additive_function():
    space = get_space("nb201")
    archs = space.sample_batch(300, np.random.default_rng(0))
    X, y = space.encode_batch(archs), sum_of_genes(archs)[1]
    m = RandomFeatureEnsemble(seed=0).fit(X[:200], y[:200])
    mu, sd = m.predict(X[200:])
    assert np.corrcoef(mu[:, 0], y[200:, 0])[0, 1] > 0.95 and (sd > 0).all()


def test_hypervolume_helper():
    assert hypervolume(np.array([[0.0, 0.0]]), (2.0, 1.0)) == 2.0
    assert hypervolume(np.array([[0.0, -1.0], [1.0, -2.0], [2.0, -1.0]]), (3.0, 0.0)) == 5.0


def test_guided_beats_random_on_the_synthetic_front():
    space = get_space("nb201")  # ref: the worst f1 (6 genes x 4) and f2 (no 3s); at most 84
    hv = {name: [hypervolume(np.stack([r.F for r in run_search(
        create_strategy(name, space, 2, seed=s), two_objectives, 40, batch=2).records]),
        (24.0, 0.0))
        for s in range(3)] for name in ("guided", "random")}
    assert min(hv["guided"]) > 1.3 * max(hv["random"]), hv


def test_guided_front_reaches_the_extremes():
    space = get_space("nb201")
    result = run_search(PredictorGuided(space, 2, seed=0), two_objectives, 80, batch=4)
    F = np.stack([r.F for r in result.records])
    front = F[pareto_mask(F)]
    assert front[:, 0].min() == 0 and front[:, 1].min() <= -4


def test_guided_rejects_unknown_acquisition():
    with pytest.raises(HwnasError, match="lcb"):
        PredictorGuided(get_space("nb201"), 2, acquisition="ei")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("m", [1, 3])
def test_other_numbers_of_objectives(name, m):
    space = get_space("nb201")

    def evaluate(archs):
        G = np.array([a.genes for a in archs], dtype=float)
        F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1), (G == 1).sum(axis=1)])[:, :m]
        return F, F, np.zeros(len(archs))

    kw = {"initial": 8} if name == "guided" else {}
    result = run_search(create_strategy(name, space, m, seed=0, **kw), evaluate, 24, batch=4)
    assert len({r.arch for r in result.records}) == 24
