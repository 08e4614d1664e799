"""Benchmarks, tables, runs, reports and the ``hwnas`` command line: ``hwnas.bench``."""

from hwnas.search.tables.load import EXPECTED_ROWS, BenchmarkTables, TableWarning, load_tables

from .cache import StatsCache, default_cache_path

__all__ = [
    "EXPECTED_ROWS",
    "BenchmarkTables",
    "StatsCache",
    "TableWarning",
    "default_cache_path",
    "load_tables",
]
