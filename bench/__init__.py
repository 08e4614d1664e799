"""Benchmarks, tables, runs, reports and the ``hwnas`` command line: ``hwnas.bench``."""

from .cache import StatsCache, default_cache_path
from .tables import EXPECTED_ROWS, BenchmarkTables, TableWarning, load_tables

__all__ = [
    "EXPECTED_ROWS",
    "BenchmarkTables",
    "StatsCache",
    "TableWarning",
    "default_cache_path",
    "load_tables",
]
