"""The public measured tables of each space (NAS-Bench-201, FBNet, once-for-all; ~25 devices),
shipped inside the package as compact Parquet and overridable with a folder of your own.

>>> from hwnas.search.tables import load_tables
>>> load_tables("nb201").get_accuracy("cifar10_test_200ep", [1]).tolist()
[93.66]

Only :mod:`.files` is imported eagerly: ``import hwnas.search`` must not pay for pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

from .files import ENV_VAR, bundled_dir, override_dir, read_frame, table_root

__all__ = [
    "ENV_VAR",
    "EXPECTED_ROWS",
    "SOURCES",
    "VALUE_RANGES",
    "BenchmarkTables",
    "TableWarning",
    "ValueTable",
    "bundled_dir",
    "load_tables",
    "override_dir",
    "read_frame",
    "read_values",
    "reference_indices",
    "table_root",
]

_LAZY = {
    "EXPECTED_ROWS": ".load", "SOURCES": ".load", "BenchmarkTables": ".load",
    "TableWarning": ".load", "load_tables": ".load", "reference_indices": ".load",
    "VALUE_RANGES": ".values", "ValueTable": ".values", "read_values": ".values",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
