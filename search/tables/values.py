"""The one reader of "a CSV with an ``index`` or ``arch`` column and a value column".

Device tables (``latency_ms``), measured shots, trained shots (``accuracy``), predicted tables and
priors all have this shape; they are all read by :func:`read_values`, with one set of rules, so a
file that one command accepts no other command refuses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArchitectureError, NotInTableError, TableError
from ..spaces import Architecture, Space

__all__ = ["ValueTable", "read_csv_file", "read_values", "VALUE_RANGES"]

#: valid values of each known column (inclusive low, inclusive high; low excluded for latency)
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "latency_ms": (0.0, math.inf),   # > 0
    "accuracy": (0.0, 100.0),        # percent
}


@dataclass(frozen=True)
class ValueTable:
    """One value per architecture, read from a file.

    Attributes:
        archs: the architectures, in file order (no repeats).
        values: the values (float64), aligned with ``archs``.
        column: the value column read.
        path: the file read.
        indices: the table indices of ``archs`` where the file gave them (else ``None``).
    """

    archs: list[Architecture]
    values: np.ndarray
    column: str
    path: Path
    indices: np.ndarray | None = None

    def as_dict(self) -> dict[Architecture, float]:
        return dict(zip(self.archs, self.values.tolist(), strict=True))


def read_csv_file(path: str | os.PathLike[str], what: str = "table") -> tuple[Any, Path]:
    """A UTF-8 CSV (or a folder's ``latency_ms.csv``) as a DataFrame, and the path read.

    Raises:
        TableError: no such file, not UTF-8, or not parseable as CSV (one line naming it).
    """
    import pandas as pd  # here, so that importing hwnas.search stays light

    path = Path(path)
    if path.is_dir():
        path = path / "latency_ms.csv"
    if not path.is_file():
        raise TableError(f"{what} {path} not found")
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError:
        raise TableError(f"{what} {path} is not UTF-8 text; expected a CSV") from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TableError(f"cannot read {what} {path}: {first}") from None
    return frame, path


def read_values(path: str | os.PathLike[str], space: Space, columns: Sequence[str],
                archs: Sequence[Architecture] | None = None, what: str = "table") -> ValueTable:
    """Read a CSV of ``index`` (or ``arch``) and the first of ``columns`` it has.

    Args:
        path: the CSV, or a folder holding ``latency_ms.csv``.
        space: the space whose architectures the file names.
        columns: value columns accepted, in order of preference (``latency_ms``, ``accuracy``).
        archs: the architecture of every table index (needed for a file with ``index`` only).
        what: how messages name the file (``device table``, ``shots file``, ``prior``).

    Rules (the same for every caller): the file must be UTF-8 CSV with at least one row; indices
    are integers in the table's range; ``arch`` strings parse in ``space``; when both are given
    they must agree; no architecture twice; every value finite and in its column's range
    (latency > 0 ms, accuracy 0..100 %).

    Raises:
        TableError: the first rule broken, naming the file, the row and what is valid.
        NotInTableError: an index outside the table.
    """
    import pandas as pd  # here, so that importing hwnas.search stays light

    frame, path = read_csv_file(path, what)
    column = next((c for c in columns if c in frame.columns), None)
    if column is None or not ({"index", "arch"} & set(frame.columns)):
        want = " or ".join(repr(c) for c in columns)
        raise TableError(f"{what} {path} needs an 'index' (or 'arch') column and a {want} column; "
                         f"it has {', '.join(map(str, frame.columns)) or 'none'}")
    if frame.empty:
        raise TableError(f"{what} {path} has no rows")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    low, high = VALUE_RANGES.get(column, (-math.inf, math.inf))
    bad = ~np.isfinite(values) | (values > high) | (
        (values <= low) if column == "latency_ms" else (values < low))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        valid = "> 0 ms" if column == "latency_ms" else f"{low:g}..{high:g}"
        shown = _shown(frame[column].iloc[row])
        raise TableError(f"{what} {path} row {row + 1}: {column} {shown} is "
                         f"not valid ({int(bad.sum())} such rows); valid: finite, {valid}")
    indices = None
    if "index" in frame.columns:
        idx = pd.to_numeric(frame["index"], errors="coerce").to_numpy(np.float64)
        wrong = np.isnan(idx) | (idx != np.round(idx)) | (idx < 0)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise TableError(f"{what} {path} row {row + 1}: index {frame['index'].iloc[row]!r} is "
                             "not an integer >= 0")
        if archs is not None:
            # compared as floats, before the cast: an index past int64 would wrap around
            outside = np.flatnonzero(idx >= len(archs))
            if outside.size:
                raise NotInTableError(f"{what} {path}: index {frame['index'].iloc[outside[0]]} "
                                      f"outside the {space.name} table (valid: "
                                      f"0..{len(archs) - 1})")
        elif (idx >= 2**62).any():
            row = int(np.flatnonzero(idx >= 2**62)[0])
            raise TableError(f"{what} {path} row {row + 1}: index {frame['index'].iloc[row]} is "
                             "too large")
        indices = idx.astype(np.int64)
    rows: list[Architecture] = []
    if "arch" in frame.columns:
        for n, text in enumerate(frame["arch"].astype(str)):
            try:
                a = space.parse(text)
            except ArchitectureError as e:
                raise TableError(f"{what} {path} row {n + 1}: not a {space.name} architecture: "
                                 f"{e}") from None
            if indices is not None and archs is not None and archs[indices[n]] != a:
                raise TableError(f"{what} {path} row {n + 1}: index {indices[n]} is "
                                 f"{archs[indices[n]]}, not {text}")
            rows.append(a)
    elif archs is None:
        raise TableError(f"{what} {path} has an index column but no arch column; indices need "
                         f"the {space.name} tables")
    else:
        rows = [archs[i] for i in indices]
    seen: set[Architecture] = set()
    for n, a in enumerate(rows):
        if a in seen:
            raise TableError(f"{what} {path} row {n + 1}: {a} appears twice")
        seen.add(a)
    return ValueTable(rows, values, column, path, indices)


def _shown(value: object) -> str:
    """A cell as the user wrote it: numpy scalars as plain numbers, text quoted."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)
