"""The whole-FBNet-space study: its exact front, latency fit and scorer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwnas.bench import load_tables, minimize
from hwnas.bench.studies.search_fbnet_space import (
    ValueFrontScorer,
    additive_front,
    fit_layer_latency,
    space_problem,
)
from hwnas.search import HwnasError, pareto_mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_additive_front_is_the_brute_force_front(seed: int) -> None:
    rng = np.random.default_rng(seed)
    layers, k = 4, 5
    a = rng.uniform(0, 1, (layers, k))
    # a second objective partly opposed to the first, with ties, as per-layer costs have
    b = np.round(10 * (-a + rng.uniform(0, 0.6, (layers, k))))  # whole numbers: exact sums
    combos = np.array(list(itertools.product(range(k), repeat=layers)))
    F = np.column_stack([a[np.arange(layers), combos].sum(1), b[np.arange(layers), combos].sum(1)])
    brute = np.unique(np.round(F[pareto_mask(F)], 9), axis=0)
    front, genes = additive_front([a, b])
    assert np.allclose(np.unique(np.round(front, 9), axis=0), brute)
    # every genotype returned reaches its point
    rows = np.arange(layers)
    again = np.column_stack([a[rows, genes].sum(1), b[rows, genes].sum(1)])
    assert np.allclose(again, front)
    assert np.all(np.diff(front[:, 0]) > 0) and np.all(np.diff(front[:, 1]) < 0)


def test_additive_front_refuses_mismatched_costs() -> None:
    with pytest.raises(HwnasError, match="two"):
        additive_front([np.zeros((3, 4)), np.zeros((3, 5))])


def test_layer_latency_fit_recovers_an_additive_table() -> None:
    rng = np.random.default_rng(0)
    table = rng.uniform(0.1, 2.0, (6, 4))
    genes = rng.integers(0, 4, (300, 6))
    y = 1.5 + table[np.arange(6), genes].sum(1)
    fitted, fit = fit_layer_latency(genes, y, 4)
    other = rng.integers(0, 4, (50, 6))  # networks the fit never saw
    assert np.allclose(fitted[np.arange(6), other].sum(1), 1.5 + table[np.arange(6), other].sum(1))
    assert fit["max_rel_error"] < 1e-9 and fit["spearman"] == pytest.approx(1.0)


def test_whole_space_front_is_exact_and_scored_by_value() -> None:
    tables = load_tables("fbnet")
    problem, record = space_problem(tables, "fpga")
    assert problem.max_evaluations() is None  # the whole space: no table caps the budget
    assert record["fit"]["max_rel_error"] < 1e-4  # fpga's table is a sum of layer costs
    front, genes = additive_front([record["latency_table"], -record["flops_table"]])
    _, F, _ = problem.evaluate([problem.space.from_genes(g) for g in genes])
    assert np.allclose(F, front)
    # no network dominates a point of the exact front: random ones, nor the one-edit
    # neighbours of front members (the networks nearest to it)
    rng = np.random.default_rng(0)
    samples = problem.space.sample_batch(1000, rng)
    for i in rng.choice(len(genes), 15, replace=False):
        samples += problem.space.neighbours(problem.space.from_genes(genes[i]))
    _, S, _ = problem.evaluate(samples)
    dominated = (np.all(S[:, None] <= front[None] + 1e-9, axis=2)
                 & np.any(S[:, None] < front[None] - 1e-9, axis=2))
    assert not dominated.any()
    scorer = ValueFrontScorer(front)
    whole = scorer(front)
    assert whole["recall"] == 1.0 and whole["hv_ratio"] == pytest.approx(1.0)
    assert whole["on_front"] == len(front)
    found = scorer(S[:1000])
    assert found["on_front"] == 0 and found["hv_ratio"] < 1.0 and found["igd_plus"] > 0


def test_auto_searches_the_whole_space_with_the_surrogate() -> None:
    problem, _ = space_problem(load_tables("fbnet"), "raspi4")
    result = minimize(problem, "auto", budget=30, seed=0)
    assert result.config["strategy_choice"]["rule"] == "any-space"
    assert len(result.records) == 30
