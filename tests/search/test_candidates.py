"""Candidates for spaces too large to list: TableSpace, CandidateGenerator, and the surrogate on
FBNet and OFA (with and without their bundled tables)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import Architecture, get_space, pareto_mask, run_search
from hwnas.search.strategies.candidates import (
    CandidateGenerator,
    TableSpace,
    list_architectures,
)
from hwnas.search.strategies.surrogate import SurrogateParetoSearch
from hwnas.search.tables.load import load_tables


@pytest.fixture(scope="module")
def fbnet_tables():
    return load_tables("fbnet")


@pytest.fixture(scope="module")
def fbnet_table_space(fbnet_tables):
    return TableSpace(fbnet_tables.space, fbnet_tables.archs)


@pytest.fixture(scope="module")
def layer_costs():
    from hwnas.meta.encoders import fbnet_layer_costs

    return fbnet_layer_costs()


def macs_and_params(costs: np.ndarray):
    """FBNet's real per-layer costs: MACs (minimised) x parameters (maximised), any chain."""

    def evaluate(archs: list[Architecture]):
        G = np.array([a.genes for a in archs])
        total = costs[np.arange(len(costs)), G].sum(axis=1) / 1e6
        F = np.column_stack([total[:, 0], -total[:, 1]])
        return F, F, np.zeros(len(archs))

    return evaluate


def test_list_architectures_lists_products_and_tables(fbnet_table_space):
    nb = list_architectures(get_space("nb201"))
    assert len(nb) == 15625 and len(set(nb)) == 15625
    assert list_architectures(fbnet_table_space) == list(fbnet_table_space.archs)
    assert list_architectures(get_space("fbnet")) is None
    assert list_architectures(fbnet_table_space, max_size=100) is None


def test_table_space_operators_land_on_rows(fbnet_table_space):
    space, rng = fbnet_table_space, np.random.default_rng(0)
    assert len(space) == 5000 and space.enumerable and space.size == 5000
    for _ in range(30):
        a, b = space.sample(rng), space.sample(rng)
        m = space.mutate(a, rng)
        assert a in space and m in space and m != a
        assert space.crossover(a, b, rng) in space
        assert space.parse(space.format(a)) == a and space.from_genes(a.genes) == a
        assert space.index(a) == space.archs.index(a)


def test_table_space_maps_a_genotype_to_the_row_sharing_most_genes(fbnet_table_space):
    space = fbnet_table_space
    genes = get_space("fbnet").sample(np.random.default_rng(3)).genes
    assert Architecture("fbnet", genes) not in space
    row = space.from_genes(genes)
    matches = (np.array([a.genes for a in space.archs]) == np.array(genes)).sum(axis=1)
    assert int(matches[space.index(row)]) == int(matches.max())
    assert space.index(row) == int(np.flatnonzero(matches == matches.max())[0])  # first of ties


def test_table_space_neighbours_are_the_closest_other_rows(fbnet_table_space):
    space = fbnet_table_space
    a = space.archs[7]
    nbrs = space.neighbours(a)
    assert len(nbrs) == 20 and a not in nbrs and nbrs == space.neighbours(a)
    shared = [sum(x == y for x, y in zip(a.genes, b.genes, strict=True)) for b in nbrs]
    others = np.array([a.genes for a in space.archs]) == np.array(a.genes)
    best = np.sort(np.delete(others.sum(axis=1), 7))[::-1][:20]
    assert shared == sorted(shared, reverse=True) and shared == best.tolist()


def test_generator_proposes_new_distinct_candidates_around_the_front(layer_costs):
    space = get_space("fbnet")
    evaluate = macs_and_params(layer_costs)
    archs = space.sample_batch(40, np.random.default_rng(1))
    F, _, v = evaluate(archs)
    seen = set(archs)
    gen = CandidateGenerator(space, 300)
    out = gen(archs, F, v, np.random.default_rng(5), lambda a: a not in seen)
    assert 0 < len(out) <= 300 and len(set(out)) == len(out) and not seen & set(out)
    assert out == gen(archs, F, v, np.random.default_rng(5), lambda a: a not in seen)
    front = [archs[i] for i in np.flatnonzero(pareto_mask(F))]
    near = set().union(*(space.neighbours(p) for p in front))
    assert len(near & set(out)) >= 150  # half the candidates: one edit from a front member


def test_generator_lists_only_the_neighbourhoods_it_uses():
    # a front of 60 members (anti-correlated objectives) and 176 neighbours each: the local share
    # (50 of 100) is full after the first member, so one or two neighbourhoods are listed, not 60
    space = get_space("fbnet")
    archs = space.sample_batch(60, np.random.default_rng(2))
    F = np.column_stack([np.arange(60.0), -np.arange(60.0)])
    calls = []

    class Counting(type(space)):
        def neighbours(self, arch):
            calls.append(arch)
            return super().neighbours(arch)

    counted = Counting()
    out = CandidateGenerator(counted, 100)(archs, F, np.zeros(60), np.random.default_rng(0),
                                           lambda a: a not in set(archs))
    assert len(out) == 100 and len(calls) <= 2


def test_generator_rejects_bad_shares():
    with pytest.raises(Exception, match="shares"):
        CandidateGenerator(get_space("fbnet"), 10, local=0.9, mutations=0.2)


def _front_hv(F: np.ndarray, ref: np.ndarray) -> float:
    F = np.unique(F[pareto_mask(F)], axis=0)
    F = F[np.argsort(F[:, 0])]
    area, height = 0.0, ref[1]
    for f1, f2 in F:
        area += (ref[0] - f1) * max(0.0, height - f2)
        height = min(height, f2)
    return area


def test_surrogate_on_fbnet_without_a_table_beats_random(layer_costs):
    space, evaluate = get_space("fbnet"), macs_and_params(layer_costs)

    def run(strategy):
        result = run_search(strategy, evaluate, budget=60)
        return np.stack([r.F for r in result.records])

    F = run(SurrogateParetoSearch(space, 2, seed=0, initial=20, candidates=200))
    assert len(F) == 60 and np.array_equal(
        F, run(SurrogateParetoSearch(space, 2, seed=0, initial=20, candidates=200)))
    from hwnas.search.strategies.base import RandomSearch

    R = run(RandomSearch(space, 2, seed=0))
    ref = np.maximum(F.max(axis=0), R.max(axis=0)) + 1
    assert _front_hv(F, ref) > _front_hv(R, ref)


@pytest.mark.parametrize("how", ["pool", "table_space"])
def test_surrogate_on_the_fbnet_table_asks_rows_only(fbnet_tables, how):
    archs = list(fbnet_tables.archs)
    lat = dict(zip(archs, fbnet_tables.get_latency("fpga", np.arange(len(archs))), strict=True))

    def evaluate(batch):
        F = np.array([[lat.get(a, np.nan), -float(np.sum(a.genes))] for a in batch])
        return F, F, np.zeros(len(batch))

    def run():
        if how == "pool":
            s = SurrogateParetoSearch(fbnet_tables.space, 2, seed=1, initial=10, pool=archs)
        else:
            s = SurrogateParetoSearch(TableSpace(fbnet_tables.space, archs), 2, seed=1,
                                      initial=10)
        return run_search(s, evaluate, budget=40)

    result = run()
    assert result.skipped == 0 and len(result.records) == 40
    assert all(r.arch in lat for r in result.records)
    assert [r.arch for r in result.records] == [r.arch for r in run().records]


def test_surrogate_on_ofa_with_and_without_its_table():
    tables = load_tables("ofa")
    space, archs = tables.space, list(tables.archs)
    dev = tables.devices[0]
    lat = dict(zip(archs, tables.get_latency(dev, np.arange(len(archs))), strict=True))

    def on_table(batch):
        F = np.array([[lat.get(a, np.nan), -float(space.encode(a).sum())] for a in batch])
        return F, F, np.zeros(len(batch))

    table = run_search(SurrogateParetoSearch(space, 2, seed=0, initial=10, pool=archs),
                       on_table, budget=30)
    assert table.skipped == 0 and all(r.arch in lat for r in table.records)

    def anywhere(batch):  # made from the genes: active layers x their kernel and expansion
        E = space.encode_batch(batch)
        F = np.column_stack([E @ np.arange(E.shape[1]) % 7, -E.sum(axis=1)]).astype(float)
        return F, F, np.zeros(len(batch))

    free = run_search(SurrogateParetoSearch(space, 2, seed=0, initial=10, candidates=200),
                      anywhere, budget=30)
    assert len({r.arch for r in free.records}) == 30


def test_study_problem_is_latency_against_compute(fbnet_tables):
    from hwnas.bench.studies.search_fbnet import fbnet_problem, parse_strategy

    p = fbnet_problem(fbnet_tables, "fpga")
    assert p.directions == ("min", "max") and len(p) == 5000 and 10 < len(p.front) < 200
    assert isinstance(p.space, TableSpace)
    assert parse_strategy('surrogate@transform="raw",local_bonus=0') == (
        "surrogate", {"transform": "raw", "local_bonus": 0})
