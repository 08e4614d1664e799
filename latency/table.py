"""One schema for every latency table, whether imported, profiled or predicted.

A device table is a CSV with one row per architecture — ``index`` (the space's table index, where it
has one), ``arch`` (canonical string), ``latency_ms`` and optional spread columns — and a
``meta.json`` beside it (device, runtime, provider, batch, threads, versions, date, precision).
Any CSV with ``index`` and ``latency_ms`` columns reads as a device table.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import TableError

__all__ = [
    "DeviceTable",
    "TABLE_COLUMNS",
    "SPREAD_COLUMNS",
    "atomic_write_text",
    "read_device_table",
]

SPREAD_COLUMNS = ("p10_ms", "p90_ms", "iqr_ms", "cv", "n_runs", "rounds", "round_spread")
TABLE_COLUMNS = ("index", "arch", "latency_ms", *SPREAD_COLUMNS)
SCHEMA = "hwnas.device-table/1"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class DeviceTable:
    """Latencies of one device for architectures of one space.

    Attributes:
        frame: rows in :data:`TABLE_COLUMNS` order (spread columns where known).
        meta: device, space, runtime, protocol, environment, precision...
        source: where it came from (``public``, a path).
    """

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        cols = [c for c in TABLE_COLUMNS if c in self.frame.columns]
        self.frame = self.frame[cols].reset_index(drop=True)
        lat = self.frame["latency_ms"].to_numpy(np.float64)
        if not np.isfinite(lat).all() or (lat <= 0).any():
            raise TableError(f"{self.source or 'device table'}: latencies must be finite and "
                             "positive")

    @property
    def device(self) -> str:
        return str(self.meta.get("device", Path(self.source).parent.name if self.source else ""))

    def latency_by_index(self) -> dict[int, float]:
        if "index" not in self.frame:
            return {}
        f = self.frame.dropna(subset=["index"])
        return dict(zip(f["index"].astype(int), f["latency_ms"].astype(float), strict=True))

    def latency_by_arch(self) -> dict[str, float]:
        if "arch" not in self.frame:
            return {}
        return dict(zip(self.frame["arch"], self.frame["latency_ms"].astype(float), strict=True))

    def write(self, directory: str | Path) -> Path:
        """Write ``latency_ms.csv`` and ``meta.json`` atomically; returns the CSV's path."""
        directory = Path(directory)
        meta = {"schema": SCHEMA, **self.meta}
        atomic_write_text(directory / "latency_ms.csv", self.frame.to_csv(index=False))
        atomic_write_text(directory / "meta.json",
                          json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n")
        return directory / "latency_ms.csv"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not math.isfinite(o) else float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_device_table(path: str | Path) -> DeviceTable:
    """Read a device table: a CSV (or a folder holding ``latency_ms.csv``) and its ``meta.json``.

    Raises:
        TableError: missing file, no ``index``/``arch`` or no ``latency_ms`` column, or latencies
            that are missing, non-finite or not positive (with the count).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "latency_ms.csv"
    if not path.is_file():
        raise TableError(f"device table {path} not found")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise TableError(f"cannot read device table {path}: {str(e).splitlines()[0]}") from None
    if "latency_ms" not in frame.columns or not ({"index", "arch"} & set(frame.columns)):
        raise TableError(f"device table {path} needs an 'index' (or 'arch') column and a "
                         f"'latency_ms' column; it has {', '.join(map(str, frame.columns))}")
    lat = pd.to_numeric(frame["latency_ms"], errors="coerce")
    bad = int((~np.isfinite(lat) | (lat <= 0)).sum())
    if bad:
        raise TableError(f"device table {path}: {bad} latencies are missing, non-finite or not "
                         "positive")
    if "index" in frame.columns:
        idx = pd.to_numeric(frame["index"], errors="coerce")
        if idx.isna().any() or (idx < 0).any() or (idx != idx.round()).any():
            raise TableError(f"device table {path}: the index column must hold integers >= 0")
        if idx.duplicated().any():
            raise TableError(f"device table {path}: {int(idx.duplicated().sum())} indices repeat")
        frame["index"] = idx.astype(np.int64)
    frame["latency_ms"] = lat.astype(np.float64)
    meta: dict[str, Any] = {}
    meta_path = path.with_name("meta.json")
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise TableError(f"cannot read {meta_path}: {e}") from None
    meta.setdefault("device", path.parent.name if path.name == "latency_ms.csv" else path.stem)
    return DeviceTable(frame, meta, str(path))
