"""Benchmarks, tables, runs, reports and the ``hwnas`` command line: ``hwnas.bench``.

The scriptable core::

    from hwnas.bench import Problem, minimize
    problem = Problem.from_names("nb201", ["accuracy", "latency"], task="cifar10_test_200ep",
                                 device="pixel2")
    result = minimize(problem, budget=100, seed=0)
    print(result.front)
"""

from hwnas.search import Constraint, Objective, Strategy, list_strategies, register_strategy
from hwnas.search.tables.load import EXPECTED_ROWS, BenchmarkTables, TableWarning, load_tables

from .cache import StatsCache, default_cache_path
from .core import (
    Problem,
    ReferenceFront,
    Result,
    SearchWarning,
    minimize,
    read_run,
    true_front,
    write_run,
)
from .sources import create_source, list_sources, register_source

__all__ = [
    "EXPECTED_ROWS",
    "BenchmarkTables",
    "Constraint",
    "Objective",
    "Problem",
    "ReferenceFront",
    "Result",
    "SearchWarning",
    "StatsCache",
    "Strategy",
    "TableWarning",
    "create_source",
    "default_cache_path",
    "list_sources",
    "list_strategies",
    "load_tables",
    "minimize",
    "read_run",
    "register_source",
    "register_strategy",
    "true_front",
    "write_run",
]
