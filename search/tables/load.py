"""The public benchmark tables: load, validate, query.

One :class:`BenchmarkTables` per space joins the architecture list (row = index) with its accuracy
columns (NB201: CIFAR-10/100 and ImageNet16-120 accuracies) and its latency columns (one per
measured device). Queries are vectorised over index arrays. Loading validates row counts, index
contiguity, missing values and non-positive latencies; problems are reported (``issues`` and a
:class:`TableWarning`), never silently dropped.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NotInTableError, TableError, UnknownNameError
from ..spaces import Architecture, Space, get_space
from .files import GENE_PREFIX, bundled_dir, read_frame, table_root

__all__ = ["BenchmarkTables", "TableWarning", "load_tables", "parse_architectures",
           "reference_indices",
           "EXPECTED_ROWS", "SOURCES"]

#: rows of each space's public table (../shared/data/README.md)
EXPECTED_ROWS = {"nb201": 15625, "fbnet": 5000, "ofa": 5000}
SOURCES = {
    "nb201": "HW-NAS-Bench, HELP",
    "fbnet": "HW-NAS-Bench, HELP",
    "ofa": "HELP",
}


class TableWarning(UserWarning):
    """A public table loaded, but with values worth knowing about (NaN, non-positive latency...)."""


@dataclass
class BenchmarkTables:
    """A space's public tables, indexed by architecture index (the row of its architecture list).

    Attributes:
        space: the search space.
        archs: architecture of every index.
        accuracy: one float column per task (percent), index = architecture index.
        latency: one float column per device (milliseconds), index = architecture index.
        issues: validation findings, one sentence each.
    """

    space: Space
    archs: list[Architecture]
    accuracy: pd.DataFrame
    latency: pd.DataFrame
    source_dir: Path
    issues: list[str] = field(default_factory=list)
    #: where the tables came from: ``bundled``, ``--data DIR`` or ``HWNAS_DATA DIR``
    origin: str = "bundled"

    def __post_init__(self) -> None:
        self._index: dict[Architecture, int] = {}
        for i, a in enumerate(self.archs):
            self._index.setdefault(a, i)
        self._acc = {c: self.accuracy[c].to_numpy(np.float64) for c in self.accuracy.columns}
        self._lat = {c: self.latency[c].to_numpy(np.float64) for c in self.latency.columns}

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def tasks(self) -> list[str]:
        """Accuracy columns (empty for spaces without public accuracies)."""
        return list(self.accuracy.columns)

    @property
    def devices(self) -> list[str]:
        """Latency columns: the public devices of this space."""
        return list(self.latency.columns)

    # ------------------------------------------------------------------ lookups
    def index_of(self, arch: Architecture) -> int:
        """Index of ``arch`` in the table.

        Raises:
            NotInTableError: the architecture is valid but the (sampled) table does not hold it.
        """
        try:
            return self._index[arch]
        except KeyError:
            raise NotInTableError(
                f"{self.space.name}: {arch} is a valid architecture but not one of the "
                f"{len(self)} in the public {self.space.name} table"
            ) from None

    def arch_at(self, index: int) -> Architecture:
        """Architecture at ``index``; raises :class:`NotInTableError` when out of range."""
        self._check_indices(np.asarray([index]))
        return self.archs[int(index)]

    def _check_indices(self, idx: np.ndarray) -> np.ndarray:
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][0]
            raise NotInTableError(
                f"{self.space.name}: index {bad} out of range; valid: 0..{len(self) - 1}"
            )
        return idx

    def check_task(self, task: str) -> str:
        if task not in self._acc:
            if not self._acc:
                raise UnknownNameError(
                    f"{self.space.name} task (this space has no public accuracies)", task, []
                )
            raise UnknownNameError(f"{self.space.name} task", task, self._acc)
        return task

    def check_device(self, device: str) -> str:
        if device not in self._lat:
            raise UnknownNameError(f"{self.space.name} device", device, self._lat)
        return device

    def get_accuracy(self, task: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Accuracies (percent) of ``task`` at ``indices``, vectorised; NaN where not measured."""
        task = self.check_task(task)
        return self._acc[task][self._whole_indices(indices)]

    def get_latency(self, device: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Latencies (ms) on ``device`` at ``indices``, vectorised."""
        device = self.check_device(device)
        return self._lat[device][self._whole_indices(indices)]

    def _whole_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """``indices`` as table rows: whole numbers in range (1.7 is refused, not truncated)."""
        raw = np.asarray(indices)
        if raw.dtype.kind not in "iu":
            try:
                as_float = raw.astype(np.float64)
            except (TypeError, ValueError):
                raise NotInTableError(f"{self.space.name}: indices must be whole numbers, got "
                                      f"{indices!r:.60}") from None
            if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
                raise NotInTableError(f"{self.space.name}: indices must be whole numbers, got "
                                      f"{indices!r:.60}")
        return self._check_indices(raw.astype(np.int64))

    def row(self, index: int) -> dict[str, dict[str, float]]:
        """All accuracies and latencies of one index (NaN values left out)."""
        self._check_indices(np.asarray([index]))
        acc = {t: float(v[index]) for t, v in self._acc.items() if np.isfinite(v[index])}
        lat = {d: float(v[index]) for d, v in self._lat.items() if np.isfinite(v[index])}
        return {"accuracy": acc, "latency_ms": lat}


# ---------------------------------------------------------------------- loading
def load_tables(space: str, data_dir: str | os.PathLike[str] | None = None) -> BenchmarkTables:
    """Load and validate a space's public tables (cached per space and folder).

    Args:
        space: ``nb201``, ``fbnet`` or ``ofa``.
        data_dir: a folder of your own tables (``--data``); default ``HWNAS_DATA``, else the
            copy bundled with the package. A folder without this space's sub-folder falls back
            to the bundled copy.

    Raises:
        UnknownNameError: an unknown space.
        DataNotFoundError: ``data_dir`` or ``HWNAS_DATA`` names no table folder.
        TableError: a missing, unreadable or inconsistent file (says which and why).

    Example:
        >>> t = load_tables("nb201")
        >>> t.get_latency("pixel2", [0, 1]).tolist()
        [9.0, 17.0]
    """
    if space not in EXPECTED_ROWS:
        raise UnknownNameError("space", space, EXPECTED_ROWS)
    root, origin = table_root(space, data_dir)
    tables = _load(space, str(root.resolve()), origin)
    for issue in tables.issues:
        warnings.warn(f"{space} tables: {issue}", TableWarning, stacklevel=2)
    return tables


def reference_indices(space: str, data_dir: str | os.PathLike[str] | None = None) -> list[int]:
    """HELP's hardware-embedding reference set of ``space`` (10 architecture indices), from the
    same folder as the space's tables.

    Raises:
        TableError: the reference file is missing, malformed, or lacks this space.
    """
    root, _ = table_root(space, data_dir)
    path = root / "help_reference_architectures.json"
    if not path.is_file():  # a folder of one's own tables without reference sets: HELP's
        path = bundled_dir() / "help_reference_architectures.json"
    try:
        refs = json.loads(path.read_text(encoding="utf-8"))
        values = refs[space]
        if not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise TypeError
    except FileNotFoundError:
        raise TableError(f"missing reference set {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TableError(f"cannot read {path}: {type(e).__name__}") from None
    except (KeyError, TypeError):
        raise TableError(f"{path}: needs a list of non-negative integer indices for "
                         f"{space!r}") from None
    return list(values)


@cache
def _load(space_name: str, root: str, origin: str) -> BenchmarkTables:
    folder = Path(root) / space_name
    space = get_space(space_name)
    issues: list[str] = []
    arch_table, path = read_frame(folder, "architectures")
    archs = parse_architectures(space_name, arch_table, path)
    arch_table = arch_table.drop(columns=[c for c in arch_table.columns
                                          if str(c).startswith(GENE_PREFIX)])
    if space_name == "ofa":
        arch_table = arch_table[["index"]]
    _check_index(arch_table["index"], path)
    expected = EXPECTED_ROWS[space_name]
    if len(archs) != expected:
        if space_name == "nb201":
            raise TableError(f"{path}: {len(archs)} architectures, the space has {expected}")
        issues.append(f"{len(archs)} architectures where the public table has {expected}")
    distinct = len(set(archs))
    if distinct != len(archs):
        issues.append(f"{len(archs) - distinct} rows repeat an earlier architecture")

    accuracy = arch_table.drop(columns=["index", "arch"], errors="ignore")
    accuracy = accuracy.select_dtypes("number").astype(np.float64)
    if space_name != "nb201":
        accuracy = accuracy.iloc[:, :0]
    _report_nan(accuracy, "accuracy", issues)

    latency, lat_path = read_frame(folder, "latency_ms")
    _require(latency, ["index"], lat_path)
    _check_index(latency["index"], lat_path)
    if len(latency) != len(archs):
        raise TableError(
            f"{lat_path}: {len(latency)} rows, the architecture table has {len(archs)}"
        )
    latency = latency.drop(columns=["index"])
    non_numeric = [c for c in latency.columns if not pd.api.types.is_numeric_dtype(latency[c])]
    if non_numeric:
        raise TableError(f"{lat_path}: non-numeric latency column(s) {', '.join(non_numeric)}")
    latency = latency.astype(np.float64)
    _report_nan(latency, "latency", issues)
    for col in latency.columns:
        bad = int((latency[col] <= 0).sum())
        if bad:
            issues.append(f"device {col}: {bad} non-positive latencies (kept as measured)")
    return BenchmarkTables(space, archs, accuracy.reset_index(drop=True),
                           latency.reset_index(drop=True), Path(root), issues, origin)


def parse_architectures(space_name: str, table: pd.DataFrame, path: Path) -> list[Architecture]:
    """The architecture of every row of an architecture table: from its gene columns where the
    table has them (the bundled copy: checked in bulk), else from the public form (NB201 cell
    strings, FBNet block columns, OFA kernel/expansion/depth/resolution lists).

    Raises:
        TableError: a missing column or a row that is no architecture of the space (says which).
    """
    space = get_space(space_name)
    gene_cols = [c for c in table.columns if str(c).startswith(GENE_PREFIX)]
    if gene_cols:
        if len(gene_cols) != len(space.genes):
            raise TableError(f"{path}: {len(gene_cols)} gene columns, the {space_name} space has "
                             f"{len(space.genes)}")
        genes = table[gene_cols].to_numpy(np.int64)
        bad = (genes < 0) | (genes >= np.asarray(space.n_choices)[None, :])
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise TableError(f"{path}: row {row}: a gene out of range")
        if type(space).active is Space.active:
            return [Architecture(space_name, tuple(g)) for g in genes.tolist()]
        return _parse_rows(path, genes.tolist(), space.from_genes)
    if space_name == "ofa":
        _require(table, ["index", "ks", "e", "d", "r"], path)
        rows = [{"ks": list(map(int, k)), "e": list(map(int, e)), "d": list(map(int, d)),
                 "r": int(r)} for k, e, d, r in zip(table["ks"], table["e"], table["d"],
                                                    table["r"], strict=True)]
        return _parse_rows(path, rows, space.from_ofa_dict)
    if space_name == "nb201":
        _require(table, ["index", "arch"], path)
        return _parse_rows(path, table["arch"].tolist(), space.parse)
    layers = [f"layer{i:02d}" for i in range(len(space.genes))]
    _require(table, ["index", *layers], path)
    return _parse_rows(path, table[layers].astype(str).values.tolist(), space.from_blocks)


def _require(table: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}")


def _parse_rows(path: Path, rows: list, parse) -> list[Architecture]:
    archs = []
    for n, row in enumerate(rows):
        try:
            archs.append(parse(row))
        except Exception as e:  # any malformed row makes the table unusable: say which
            raise TableError(f"{path}: row {n}: {e}") from None
    return archs


def _check_index(index: pd.Series, path: Path) -> None:
    values = pd.to_numeric(index, errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any() or not np.array_equal(values, np.arange(len(values))):
        raise TableError(f"{path}: the index column must run 0..{len(values) - 1} in order")


def _report_nan(table: pd.DataFrame, what: str, issues: list[str]) -> None:
    for col, n in table.isna().sum().items():
        if n:
            issues.append(f"{what} {col}: {int(n)} missing values (kept as NaN)")
