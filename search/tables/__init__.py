"""The public measured tables of each space (NAS-Bench-201, FBNet, once-for-all; ~25 devices),
shipped inside the package as compact Parquet and overridable with a folder of your own.

>>> from hwnas.search.tables import load_tables
>>> load_tables("nb201").get_accuracy("cifar10_test_200ep", [1]).tolist()
[93.66]
"""

from .files import ENV_VAR, bundled_dir, override_dir, read_frame, table_root
from .load import (
    EXPECTED_ROWS,
    SOURCES,
    BenchmarkTables,
    TableWarning,
    load_tables,
    reference_indices,
)
from .values import VALUE_RANGES, ValueTable, read_values

__all__ = [
    "ENV_VAR",
    "VALUE_RANGES",
    "ValueTable",
    "EXPECTED_ROWS",
    "SOURCES",
    "BenchmarkTables",
    "TableWarning",
    "bundled_dir",
    "load_tables",
    "override_dir",
    "read_frame",
    "read_values",
    "reference_indices",
    "table_root",
]
