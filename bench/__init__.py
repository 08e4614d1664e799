"""Benchmarks, tables, runs, reports and the ``hwnas`` command line: ``hwnas.bench``.

The scriptable core::

    from hwnas.bench import Problem, minimize
    problem = Problem.from_names("nb201", ["accuracy", "latency"], task="cifar10_test_200ep",
                                 device="pixel2")
    result = minimize(problem, budget=100, seed=0)
    print(result.front)
"""

from __future__ import annotations

from hwnas.search.lazy import lazy_exports

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

# name -> defining submodule, imported on first access (PEP 562): `import hwnas.X` stays
# light, so the device agent imports no torch (tests/latency/test_agent_server.py)
_EXPORTS = {
    "hwnas.search": (
        "Constraint",
        "Objective",
        "Strategy",
        "list_strategies",
        "register_strategy",
    ),
    "hwnas.search.tables.load": (
        "EXPECTED_ROWS",
        "BenchmarkTables",
        "TableWarning",
        "load_tables",
    ),
    ".cache": ("StatsCache", "default_cache_path"),
    ".core": (
        "Problem",
        "ReferenceFront",
        "Result",
        "SearchWarning",
        "minimize",
        "read_run",
        "true_front",
        "write_run",
    ),
    ".sources": ("create_source", "list_sources", "register_source"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
