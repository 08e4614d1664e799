"""Regularized evolution, NSGA-II and Pareto local search on synthetic problems made from the genes.

The problem: f1 = sum of the genes, f2 = -(genes equal to 3) (on NB201, 3 is ``nor_conv_3x3``):
the front trades zeros for threes. No public data is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import (
    Architecture,
    Gene,
    Graph,
    HwnasError,
    Space,
    create_strategy,
    get_space,
    pareto_mask,
    run_search,
)
from hwnas.search.strategies.evolution import RegularizedEvolution
from hwnas.search.strategies.local import ParetoLocalSearch
from hwnas.search.strategies.nsga2 import NSGA2, constrained_rank

NAMES = ("evolution", "nsga2", "local")
SMALL = {"evolution": {"population": 10, "sample_size": 3}, "nsga2": {"population": 10},
         "local": {}}


def two_objectives(archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    G = np.array([a.genes for a in archs], dtype=float)
    F = np.column_stack([G.sum(axis=1), -(G == 3).sum(axis=1)])
    return F, F, np.zeros(len(archs))


def hypervolume(F: np.ndarray, ref: tuple[float, float]) -> float:
    """Area dominated by the rows of ``F`` (two minimised objectives) and bounded by ``ref``."""
    F = np.unique(F[pareto_mask(F)], axis=0)
    area, height = 0.0, ref[1]
    for f1, f2 in F[np.argsort(F[:, 0])]:
        area += (ref[0] - f1) * max(0.0, height - f2)
        height = min(height, f2)
    return area


def make(name: str, space: Space, seed: int, **kw) -> object:
    return create_strategy(name, space, 2, seed=seed, **{**SMALL[name], **kw})


def test_registry_builds_these_classes():
    space = get_space("nb201")
    for name, cls in zip(NAMES, (RegularizedEvolution, NSGA2, ParetoLocalSearch), strict=True):
        assert type(create_strategy(name, space, 2, seed=0)) is cls


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 7])
def test_same_seed_same_record(name, batch):
    space = get_space("nb201")
    runs = [run_search(make(name, space, 7), two_objectives, 60, batch=batch) for _ in range(2)]
    assert [r.arch for r in runs[0].records] == [r.arch for r in runs[1].records]
    assert len(runs[0].records) == 60
    other = run_search(make(name, space, 8), two_objectives, 60, batch=batch)
    assert [r.arch for r in other.records] != [r.arch for r in runs[0].records]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa"])
def test_asks_are_valid_and_new(name, space_name):
    space = get_space(space_name)
    s = make(name, space, 0)
    seen: set[Architecture] = set()
    for n in (1, 7, 1, 7, 7, 7, 1):
        archs = s.ask(n)
        assert len(archs) == n
        for a in archs:
            assert a.space == space.name and space.from_genes(a.genes) == a
        assert len(set(archs)) == n and not seen & set(archs)  # no duplicates while avoidable
        seen.update(archs)
        s.tell(archs, two_objectives(archs)[1])


@pytest.mark.parametrize("name", NAMES)
def test_asks_before_tells_and_repeated_tells(name):
    """Several asks with no tell in between, then tells in another order, twice."""
    space = get_space("nb201")
    s = make(name, space, 3)
    archs = s.ask(7) + s.ask(7) + s.ask(1)
    assert len(set(archs)) == 15
    told = archs[::-1]
    s.tell(told, two_objectives(told)[1])
    s.tell(told[:4], two_objectives(told[:4])[1])  # the loop re-tells cached architectures
    assert len(s.archive_) == 15 and len(s.ask(3)) == 3


@pytest.mark.parametrize("name", NAMES)
def test_unasked_tells_are_accepted(name):
    space = get_space("nb201")
    s = make(name, space, 1)
    told = space.sample_batch(30, np.random.default_rng(0))
    s.tell(told, two_objectives(told)[1], np.r_[np.zeros(25), np.ones(5)])
    archs = s.ask(5)
    assert len(archs) == 5 and not set(archs) & set(told)


def feasible_worst(space: Space, n: int) -> tuple[list[Architecture], np.ndarray, np.ndarray]:
    """``n`` architectures whose only feasible one has the worst objectives of all."""
    archs = list(dict.fromkeys(space.sample_batch(3 * n, np.random.default_rng(5))))[:n]
    F = np.column_stack([np.arange(n), np.arange(n)]).astype(float)[::-1]  # archs[0] worst
    v = np.r_[0.0, np.linspace(0.1, 1.0, n - 1)]
    return archs, F, v


def test_nsga2_survival_keeps_feasible_first():
    space = get_space("nb201")
    archs, F, v = feasible_worst(space, 12)
    s = NSGA2(space, 2, seed=0, population=4)
    s.tell(archs, F, v)
    s.ask(1)  # breeds: survival over everything told
    # the feasible one, then the least-violating infeasible ones, whatever their objectives
    assert s.population_ == archs[:4]


def test_evolution_tournament_prefers_feasible():
    space = get_space("nb201")
    archs, F, v = feasible_worst(space, 10)
    s = RegularizedEvolution(space, 2, seed=0, population=10, sample_size=10)
    s.tell(archs, F, v)
    for child in s.ask(5):  # the whole population is in every tournament: the feasible one wins
        assert sum(x != y for x, y in zip(child.genes, archs[0].genes, strict=True)) == 1


def test_local_search_front_is_feasible_first():
    space = get_space("nb201")
    archs, F, v = feasible_worst(space, 10)
    s = ParetoLocalSearch(space, 2, seed=0, init_samples=0)
    s.tell(archs, F, v)
    assert s.front_ == [archs[0]]
    neighbours = set(space.neighbours(archs[0]))
    assert set(s.ask(4)) <= neighbours
    only_infeasible = ParetoLocalSearch(space, 2, seed=0)
    only_infeasible.tell(archs[1:], F[1:], v[1:])
    assert only_infeasible.front_ == [archs[1]]  # least violation wins when none is feasible


def test_constrained_rank_matches_constrained_domination():
    F = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [0.5, 2.0], [3.0, 3.0]])
    v = np.array([0.5, 0.0, 0.0, 0.0, 0.2])
    # feasible rows 1..3 are mutually non-dominated; infeasible ones follow by violation
    assert constrained_rank(F, v).tolist() == [2, 0, 0, 0, 1]
    assert constrained_rank(F, np.zeros(5)).tolist() == [0, 1, 1, 1, 2]


@pytest.mark.parametrize("name", NAMES)
def test_front_beats_random_search(name):
    space = get_space("nb201")
    ref = (25.0, 1.0)

    def median_hv(strategy_name: str, **kw) -> float:
        runs = [run_search(create_strategy(strategy_name, space, 2, seed=s, **kw),
                           two_objectives, 120) for s in range(5)]
        return float(np.median([hypervolume(np.stack([r.F for r in run.records]), ref)
                                for run in runs]))

    kw = {"population": 20, "sample_size": 5} if name == "evolution" else {}
    assert median_hv(name, **kw) > median_hv("random")


class Tiny(Space):
    """Four architectures: enough to exhaust."""

    name, kind = "tiny", "chain"

    def __init__(self) -> None:
        self.genes = (Gene("a", (0, 1)), Gene("b", (0, 1)))

    def format(self, arch: Architecture) -> str:
        return "".join(map(str, arch.genes))

    def parse(self, text: str) -> Architecture:
        return self.from_genes(int(c) for c in text)

    def graph(self, arch: Architecture) -> Graph:
        return Graph(("in", "out"), np.array([[0, 1], [0, 0]]))

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        return (1, 1, 1)

    def build(self, arch: Architecture, num_classes: int | None = None) -> None:
        return None


@pytest.mark.parametrize("name", NAMES)
def test_exhausted_space_ends_the_search(name):
    s = make(name, Tiny(), 0, **({"population": 2} if name != "local" else {}))
    result = run_search(s, two_objectives, 10, max_asks=30)
    assert len(result.records) == 4


@pytest.mark.parametrize(("cls", "kw"), [(RegularizedEvolution, {"selection": "weighted"}),
                                         (ParetoLocalSearch, {"pick": "best"}),
                                         (ParetoLocalSearch, {"visit": 0})])
def test_bad_hyper_parameters_raise(cls, kw):
    with pytest.raises(HwnasError):
        cls(get_space("nb201"), 2, seed=0, **kw)


def test_hyper_parameters_are_stored_unchanged():
    s = RegularizedEvolution(get_space("nb201"), 2, seed=0, population=30, sample_size=4,
                             selection="tchebycheff")
    assert (s.population, s.sample_size, s.selection) == (30, 4, "tchebycheff")
    g = NSGA2(get_space("nb201"), 2, seed=0, population=8, crossover_prob=0.5, mutation_prob=0.7)
    assert (g.population, g.crossover_prob, g.mutation_prob) == (8, 0.5, 0.7)
    p = ParetoLocalSearch(get_space("nb201"), 2, seed=0, visit=None, abandon=False)
    assert (p.visit, p.abandon, p.pick, p.max_gap) == (None, False, "crowding", np.inf)
