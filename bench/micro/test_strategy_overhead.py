"""Strategy overhead (pytest-benchmark): ``python -m pytest bench/micro/test_strategy_overhead.py
--benchmark-only``. Not part of the test suite.

Each benchmark is one search of 1000 unique evaluations on NB201 with a synthetic evaluator that
costs next to nothing, through :func:`run_search`: so the time is the strategy's ask and tell plus
the loop's bookkeeping. The evaluator gives two conflicting objectives with few ties, like measured
tables (a seeded random cost per edge operation, and a made-up "accuracy" that rewards the same
operations plus seeded noise per architecture); a problem with massive ties (the unit tests' gene
counts) makes evolution ask mostly for architectures already evaluated, and then the space's
mutation dominates the time. The per-evaluation overhead is the time
divided by 1000 (also stored as ``extra_info["ms_per_evaluation"]``).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import Architecture, create_strategy, get_space, run_search

BUDGET = 1000


_RNG = np.random.default_rng(0)
_COST = _RNG.uniform(0.0, 1.0, (6, 5))  # latency-like cost of each operation on each edge
_NOISE = _RNG.normal(0.0, 0.3, 5**6)  # per-architecture noise of the accuracy-like objective
_PLACE = 5 ** np.arange(6)


def two_objectives(archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    G = np.array([a.genes for a in archs])
    cost = _COST[np.arange(6), G].sum(axis=1)
    error = -np.sqrt(cost) + _NOISE[G @ _PLACE]
    F = np.column_stack([error, cost])
    return F, F, np.zeros(len(archs))


@pytest.mark.parametrize("name", ["random", "evolution", "nsga2", "local", "surrogate"])
def test_search_1000(benchmark, name):
    """One seeded search of 1000 unique evaluations (batch 1)."""
    space = get_space("nb201")

    def search():
        return run_search(create_strategy(name, space, 2, seed=0), two_objectives, BUDGET)

    result = benchmark.pedantic(search, rounds=3, iterations=1, warmup_rounds=0)
    assert len(result.records) == BUDGET
    benchmark.extra_info["ms_per_evaluation"] = benchmark.stats.stats.median * 1e3 / BUDGET
