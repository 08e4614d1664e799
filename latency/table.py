"""One schema for every latency table, whether imported, profiled or predicted.

A device table is a CSV with one row per architecture — ``index`` (the space's table index, where it
has one), ``arch`` (canonical string), ``latency_ms`` and optional spread columns — and a
``meta.json`` beside it (device, runtime, provider, batch, threads, versions, date, precision).
Any CSV with ``index`` and ``latency_ms`` columns reads as a device table.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Architecture, Space, TableError

__all__ = [
    "DeviceTable",
    "TABLE_COLUMNS",
    "SPREAD_COLUMNS",
    "RESOURCE_COLUMNS",
    "atomic_write_bytes",
    "atomic_write_text",
    "qualified_device_name",
    "read_device_table",
]

SPREAD_COLUMNS = ("p10_ms", "p90_ms", "iqr_ms", "cv", "n_runs", "rounds", "round_spread")
#: memory and sizes of each architecture (hwnas.latency.resources), where a profile measured them
RESOURCE_COLUMNS = ("memory_mb", "onnx_bytes", "weight_bytes")
TABLE_COLUMNS = ("index", "arch", "latency_ms", *SPREAD_COLUMNS, *RESOURCE_COLUMNS)
SCHEMA = "hwnas.device-table/1"


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (no file is created between)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically: see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: all or nothing.

    The file gets the mode a plain ``open`` would give it (0666 less the umask; ``mkstemp``'s 0600
    would hide results from the other users of a shared machine). On any failure (a full disk,
    an interrupt) the temporary file is removed and ``path`` is left as it was.

    Raises:
        OSError: the folder cannot be created or written (``path`` unchanged).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
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

    @property
    def setup(self) -> dict[str, Any]:
        """What the latencies were measured with, from the metadata: ``runtime``,
        ``numeric_precision``, ``batch`` and ``threads`` (``None`` where the table does not say,
        as in an imported CSV). The same CPU at INT8 and at FP32 is two devices."""
        rt = self.meta.get("runtime")
        rt = rt if isinstance(rt, dict) else {"runtime": rt} if isinstance(rt, str) else {}
        name = rt.get("runtime")
        precision = self.meta.get("numeric_precision")
        if precision is None and name is not None:
            # profiles written before the key existed: only the INT8 runtimes were not FP32
            precision = "int8" if str(name).endswith("-int8") else "fp32"
        return {"runtime": name, "numeric_precision": precision,
                "batch": _int_or_none(rt.get("batch")),
                "threads": _int_or_none(rt.get("intra_op_threads"))}

    @property
    def qualified_name(self) -> str:
        """The device's name with its setup: see :func:`qualified_device_name`."""
        s = self.setup
        return qualified_device_name(self.device, s["runtime"], s["batch"], s["threads"])

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


def qualified_device_name(device: str, runtime: str | None, batch: int | None = 1,
                          threads: int | None = 1) -> str:
    """``DEVICE@RUNTIME``, with ``-bBATCH`` and ``-tTHREADS`` where they are not 1.

    The name a user gives a profiled device when several profiles share a device name (the
    precision is in the runtime's name: ``ort-cpu-int8``). A table that does not say its runtime
    keeps its plain name.

    Example:
        >>> qualified_device_name("mycpu", "ort-cpu-int8", batch=8, threads=1)
        'mycpu@ort-cpu-int8-b8'
    """
    if not runtime:
        return device
    name = f"{device}@{runtime}"
    if batch not in (None, 1):
        name += f"-b{batch}"
    if threads not in (None, 1):
        name += f"-t{threads}"
    return name


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not math.isfinite(o) else float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_device_table(path: str | Path, space: Space | None = None,
                      archs: Sequence[Architecture] | None = None) -> DeviceTable:
    """Read a device table: a CSV (or a folder holding ``latency_ms.csv``) and its ``meta.json``.

    Args:
        path: the CSV or its folder.
        space: the space the table's architectures belong to. Given, the rows are read by
            :func:`hwnas.search.tables.read_values`, the rules every other reader of such files
            follows (indices inside the table, ``arch`` strings that parse, no repeats, latency
            finite and > 0); without it only the columns and values are checked.
        archs: the architecture of every table index (for index-only files and range checks).

    Raises:
        TableError: missing file, not UTF-8, no ``index``/``arch`` or no ``latency_ms`` column,
            or a row that breaks the rules (with the row or the count).
        NotInTableError: with ``archs``, an index outside the table.
    """
    from hwnas.search.tables.values import read_csv_file

    frame, path = read_csv_file(path, "device table")
    if "latency_ms" not in frame.columns or not ({"index", "arch"} & set(frame.columns)):
        raise TableError(f"device table {path} needs an 'index' (or 'arch') column and a "
                         f"'latency_ms' column; it has {', '.join(map(str, frame.columns))}")
    if space is not None:
        from hwnas.search.tables import read_values

        values = read_values(path, space, ["latency_ms"], archs, what="device table")
        frame["latency_ms"] = values.values
        if values.indices is not None:
            frame["index"] = values.indices
        if "arch" in frame.columns:  # canonical strings, as lookups format them
            frame["arch"] = [space.format(a) for a in values.archs]
    else:
        lat = pd.to_numeric(frame["latency_ms"], errors="coerce")
        bad = int((~np.isfinite(lat) | (lat <= 0)).sum())
        if bad:
            raise TableError(f"device table {path}: {bad} latencies are missing, non-finite or "
                             "not positive")
        if "index" in frame.columns:
            idx = pd.to_numeric(frame["index"], errors="coerce")
            if idx.isna().any() or (idx < 0).any() or (idx != idx.round()).any():
                raise TableError(f"device table {path}: the index column must hold integers "
                                 ">= 0")
            if idx.duplicated().any():
                raise TableError(f"device table {path}: {int(idx.duplicated().sum())} indices "
                                 "repeat")
            frame["index"] = idx.astype(np.int64)
        frame["latency_ms"] = lat.astype(np.float64)
    meta: dict[str, Any] = {}
    meta_path = path.with_name("meta.json")
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TableError(f"cannot read {meta_path}: {e}") from None
        if not isinstance(meta, dict):
            raise TableError(f"{meta_path}: expected a JSON object")
    meta.setdefault("device", path.parent.name if path.name == "latency_ms.csv" else path.stem)
    return DeviceTable(frame, meta, str(path))
