"""NSGA-II's operators (SBX and polynomial mutation on choice indices), its tournament, its
steady-state generations, and its runs on every space with constraints and three objectives.

Objectives are made from the genes (no public data needed): f1 = sum of the genes, f2 = -(genes
equal to 3), f3 = genes equal to 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import HwnasError, get_space, run_search
from hwnas.search.strategies.nsga2 import NSGA2
from hwnas.search.strategies.operators import (
    polynomial_mutation,
    reset_mutation,
    sbx_integer,
)


def three_objectives(archs):
    G = np.array([a.genes for a in archs], dtype=float)
    F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1), (G == 0).sum(axis=1)])
    violation = np.maximum(0.0, G.sum(axis=1) - 2.5 * G.shape[1])  # too large: infeasible
    return F, F, violation


def test_sbx_keeps_agreeing_genes_and_stays_between_bounds():
    space, rng = get_space("nb201"), np.random.default_rng(0)
    a = space.from_genes([0, 4, 2, 2, 1, 3])
    b = space.from_genes([4, 0, 2, 2, 3, 1])
    for _ in range(200):
        c1, c2 = sbx_integer(space, a, b, rng)
        for c in (c1, c2):
            assert c.genes[2:4] == (2, 2)  # the parents agree there
            assert all(0 <= g <= 4 for g in c.genes)


def test_sbx_children_lie_mostly_near_the_parents():
    # eta 3 (pymoo's cross_sbx gives 0.475 / 0.016 / 0.017 for parents / middle / outside)
    space, rng = get_space("nb201"), np.random.default_rng(1)
    a, b = space.from_genes([1] * 6), space.from_genes([3] * 6)
    genes = np.array([g for _ in range(300) for c in sbx_integer(space, a, b, rng)
                      for g in c.genes])
    assert set(np.unique(genes)) <= {0, 1, 2, 3, 4}
    assert np.isin(genes, [1, 3]).mean() > 0.9
    assert 0.005 < (genes == 2).mean() < 0.05  # SBX does make values between the parents
    assert 0.005 < np.isin(genes, [0, 4]).mean() < 0.1  # and, more rarely, beyond them


def test_polynomial_mutation_mutates_about_one_gene_mostly_by_small_steps():
    space, rng = get_space("nb201"), np.random.default_rng(2)
    a = space.from_genes([2] * 6)
    steps = np.array([np.subtract(polynomial_mutation(space, a, rng).genes, a.genes)
                      for _ in range(2000)])
    changed = (steps != 0).sum(axis=1)
    assert 0.4 < changed.mean() < 1.0  # each gene with p = 1/6, some rounding back to 2
    moved = np.abs(steps[steps != 0])
    assert (moved == 1).mean() > 0.5 and moved.max() <= 2


def test_reset_mutation_always_changes_something():
    space, rng = get_space("nb201"), np.random.default_rng(3)
    a = space.sample(rng)
    assert all(reset_mutation(space, a, rng) != a for _ in range(200))


@pytest.mark.parametrize("space_name", ["fbnet", "ofa"])
def test_operators_give_canonical_architectures(space_name):
    space, rng = get_space(space_name), np.random.default_rng(4)
    for _ in range(50):
        a, b = space.sample(rng), space.sample(rng)
        for c in (*sbx_integer(space, a, b, rng), polynomial_mutation(space, a, rng),
                  reset_mutation(space, a, rng)):
            assert space.from_genes(c.genes) == c


def test_tournament_prefers_feasible_then_dominating():
    space = get_space("nb201")
    s = NSGA2(space, 2, seed=0, population=4)
    s._F = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [1.5, 0.5]])
    s._v = np.array([0.0, 0.0, 0.3, 0.0])
    s._crowd = np.array([0.0, np.inf, np.inf, 1.0])
    assert s._better(0, 1, []) == 0  # 0 dominates 1 despite 1's crowding
    assert s._better(2, 1, []) == 1  # feasible beats infeasible
    assert s._better(0, 3, []) == 3  # mutually non-dominated: the less crowded


def test_steady_state_generations():
    space = get_space("nb201")
    s = NSGA2(space, 2, seed=0, population=10, offspring=3, keep_front=False)
    def two(archs):
        F = three_objectives(archs)[1][:, :2]
        return F, F, np.zeros(len(archs))

    result = run_search(s, two, 10 + 3 * 7)
    assert len(result.records) == 31
    assert s.generation_ == 7 and len(s.population_) == 10
    full = NSGA2(space, 2, seed=0, population=10, offspring=None)
    assert full.offspring == 10


def test_keep_front_keeps_every_non_dominated_survivor():
    space = get_space("nb201")
    archs = list(dict.fromkeys(space.sample_batch(40, np.random.default_rng(6))))[:12]
    F = np.column_stack([np.arange(12), -np.arange(12)]).astype(float)  # all non-dominated
    for keep, size in ((True, 12), (False, 4)):
        s = NSGA2(space, 2, seed=0, population=4, keep_front=keep)
        s.tell(archs, F)
        s.ask(1)
        assert len(s.population_) == size


def test_iterative_pruning_recomputes_crowding_after_each_removal():
    # one front on a line; two of seven must go. Crowding computed once drops the two inner
    # points of the evenly spaced run (1, 2) and keeps the close pair (4.95, 5.05); recomputed
    # after each removal it drops 1, then one of the pair.
    space = get_space("nb201")
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.95, 5.05, 10.0])
    F = np.column_stack([x, -x])
    kept = {}
    for pruning in ("crowding", "iterative"):
        s = NSGA2(space, 2, seed=0, population=5, pruning=pruning, keep_front=False)
        kept[pruning] = sorted(x[s._survivors(F, np.zeros(7))].tolist())
    assert kept["crowding"] == [0.0, 3.0, 4.95, 5.05, 10.0]
    assert kept["iterative"] == [0.0, 2.0, 3.0, 5.05, 10.0]


def test_archive_survival_chooses_from_everything_evaluated():
    space = get_space("nb201")
    archs = list(dict.fromkeys(space.sample_batch(60, np.random.default_rng(8))))[:16]
    F = np.column_stack([np.arange(16), np.arange(16)]).astype(float)  # a chain: rank = row
    s = NSGA2(space, 2, seed=0, population=4, survival="archive")
    s.tell(archs[4:12], F[4:12])
    s.ask(1)
    assert set(s.population_) == set(archs[4:8])
    s.population_ = archs[8:12]  # survivors forgotten: the archive still holds the best
    s.tell(archs[12:], F[12:])
    s._queue.clear()
    s.ask(1)
    assert set(s.population_) == set(archs[4:8])


@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa"])
@pytest.mark.parametrize("options", [{}, {"crossover": "uniform", "mutation": "one"},
                                     {"duplicates": "free", "tournament": "rank"},
                                     {"survival": "archive", "pruning": "iterative"}])
def test_three_objectives_with_constraints_on_every_space(space_name, options):
    space = get_space(space_name)

    def run(seed):
        s = NSGA2(space, 3, seed=seed, **options)
        return s, run_search(s, three_objectives, 120)

    s, result = run(5)
    archs = [r.arch for r in result.records]
    assert len(archs) == 120 == len(set(archs))
    assert all(space.from_genes(a.genes) == a for a in archs)
    assert s.generation_ > 1
    assert archs == [r.arch for r in run(5)[1].records]  # same seed, same search
    if options.get("duplicates") != "free":  # fresh children: never asked twice
        assert result.asks == 120


def test_defaults_beat_random_search_on_the_gene_problem():
    space = get_space("nb201")

    def found(strategy_seed, random_search):
        from hwnas.search.strategies.base import RandomSearch
        s = (RandomSearch(space, 3, seed=strategy_seed) if random_search
             else NSGA2(space, 3, seed=strategy_seed))
        records = run_search(s, three_objectives, 150).records
        # feasible architectures with four or more 3x3 convolutions (random: ~1.7% of draws)
        return sum(r.F[1] <= -4 and r.violation == 0 for r in records)

    assert np.median([found(k, False) for k in range(5)]) > 2 * np.median(
        [found(k, True) for k in range(5)])


@pytest.mark.parametrize("kw", [{"crossover": "blend"}, {"mutation": "gauss"},
                                {"tournament": "best"}, {"selection": "roulette"},
                                {"duplicates": "keep"}, {"population": 1}, {"offspring": 0},
                                {"tries": 0}, {"population": True}, {"survival": "all"},
                                {"pruning": "random"}])
def test_bad_options_raise(kw):
    with pytest.raises(HwnasError):
        NSGA2(get_space("nb201"), 2, seed=0, **kw)
