"""Devices by name: public table columns, profiled tables, table paths and ``live:RUNTIME``.

Every command that takes ``--device`` resolves it here into a latency metric source.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.latency import (
    DeviceTableLatency,
    LiveLatency,
    get_runtime,
    list_runtimes,
    read_device_table,
)
from hwnas.latency.table import qualified_device_name
from hwnas.search import (
    Architecture,
    DataNotFoundError,
    HwnasError,
    MetricSource,
    NotInTableError,
    UnknownNameError,
    get_space,
)
from hwnas.search.tables.load import BenchmarkTables

__all__ = ["TableLatency", "ProfiledDevice", "AmbiguousDeviceError", "results_dir",
           "find_profiled", "profiled_path", "profile_folder", "resolve_device",
           "device_table_source", "lut_source", "live_source"]


class AmbiguousDeviceError(HwnasError):
    """A bare device name that several profiles share (other runtimes, batch or threads)."""


def results_dir() -> Path:
    """Where outputs go: ``$HWNAS_RESULTS``, else ``results/`` in the working directory."""
    return Path(os.environ.get("HWNAS_RESULTS") or "results")


class TableLatency(MetricSource):
    """Latency (ms) of a device column of a space's public tables; NaN outside the table."""

    unit = "ms"

    def __init__(self, tables: BenchmarkTables, device: str):
        super().__init__()
        self.tables, self.device = tables, tables.check_device(device)
        self.name = f"latency:{device}"
        self.coverage = len(tables)

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        idx = np.array([self._index(a) for a in archs], dtype=np.int64)
        out = np.full(len(archs), np.nan)
        ok = idx >= 0
        out[ok] = self.tables.get_latency(self.device, idx[ok])
        return out

    def _index(self, arch: Architecture) -> int:
        try:
            return self.tables.index_of(arch)
        except NotInTableError:
            return -1


@dataclass(frozen=True)
class ProfiledDevice:
    """A profiled device table found under ``results/devices``.

    ``device`` is the name it was profiled under; ``name`` adds the runtime, batch and threads
    (:func:`hwnas.latency.table.qualified_device_name`, e.g. ``mycpu@ort-cpu-int8``): the same
    CPU at INT8 and at FP32 is two devices. ``--device`` takes either; the bare name only while
    one profile of the space has it.
    """

    space: str
    device: str
    path: Path
    rows: int
    median_ms: float
    name: str = ""
    runtime: str | None = None
    numeric_precision: str | None = None
    batch: int | None = None
    threads: int | None = None

    def describe(self) -> str:
        """``name (int8, batch 1, 1 thread)``."""
        bits = [self.numeric_precision or "precision unknown"]
        if self.batch is not None:
            bits.append(f"batch {self.batch}")
        if self.threads is not None:
            bits.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        return f"{self.name} ({', '.join(bits)})"


def find_profiled(root: Path | None = None) -> list[ProfiledDevice]:
    """Profiled device tables under ``root/devices/*/`` (with their ``meta.json``)."""
    root = (root or results_dir()) / "devices"
    found = []
    for meta_path in sorted(root.glob("*/meta.json")):
        csv = meta_path.with_name("latency_ms.csv")
        try:
            meta = json.loads(meta_path.read_text())
            table = read_device_table(csv)
            setup = table.setup
        except Exception:  # a half-written or foreign folder is not a device: skip it
            continue
        lat = table.frame["latency_ms"]
        device = str(meta.get("device", csv.parent.name))
        found.append(ProfiledDevice(
            str(meta.get("space", "?")), device, csv, len(lat),
            float(lat.median()) if len(lat) else np.nan,
            qualified_device_name(device, setup["runtime"], setup["batch"], setup["threads"]),
            setup["runtime"], setup["numeric_precision"], setup["batch"], setup["threads"]))
    return found


def profile_folder(name: str, runtime: str, batch: int = 1, threads: int = 1) -> Path:
    """The default folder of ``hwnas profile``: ``results/devices/NAME`` for the default setup
    (ort-cpu, batch 1, one thread: where profiles have always gone, so they still resume),
    else ``results/devices/NAME@RUNTIME[-bBATCH][-tTHREADS]``, so that profiling the same machine
    with another runtime or precision makes a second device instead of refusing to resume."""
    if (runtime, batch, threads) == ("ort-cpu", 1, 1):
        return results_dir() / "devices" / name
    return results_dir() / "devices" / qualified_device_name(name, runtime, batch, threads)


def profiled_path(spec: str, space_name: str) -> Path | None:
    """The table of the profiled device ``spec`` names for ``space_name``: a qualified name
    (``mycpu@ort-cpu-int8``), or a bare device name that one profile alone has; ``None`` if
    no profile has it.

    Raises:
        AmbiguousDeviceError: several profiles answer to ``spec``; lists their qualified names
            (or folders, when even those are shared).
    """
    mine = [p for p in find_profiled() if p.space == space_name]
    for key in ("name", "device"):
        hits = [p for p in mine if getattr(p, key) == spec]
        if len(hits) == 1:
            return hits[0].path
        if len(hits) > 1:
            names = sorted({p.name for p in hits})
            if len(names) == len(hits):
                raise AmbiguousDeviceError(
                    f"device {spec!r} names {len(hits)} {space_name} profiles: "
                    f"{'; '.join(p.describe() for p in sorted(hits, key=lambda p: p.name))}; "
                    "give one of these names")
            raise AmbiguousDeviceError(
                f"device {spec!r} names {len(hits)} {space_name} profiles with the same setup, "
                f"in {', '.join(str(p.path.parent) for p in hits)}; give the folder")
    return None


def _index_of(tables: BenchmarkTables | None):  # noqa: ANN202
    def index_of(a: Architecture) -> int | None:
        if tables is None:
            return None
        try:
            return tables.index_of(a)
        except NotInTableError:
            return None
    return index_of


def resolve_device(spec: str, space_name: str, tables: BenchmarkTables | None) -> MetricSource:
    """A latency source for ``--device``: a public device name, a device-table path (CSV or
    folder), a profiled device's name under ``results/devices``, ``lut:PATH`` (an operator lookup
    table's predictions), or ``live:RUNTIME``.

    Raises:
        UnknownNameError: none of those; lists the public devices and the other forms.
    """
    get_space(space_name)  # an unknown space fails here, listing the valid ones
    if tables is not None and spec in tables.devices:
        return TableLatency(tables, spec)
    if spec.startswith("lut:") or (Path(spec) / "lut.json").is_file():
        return lut_source(spec.removeprefix("lut:"), space_name)
    if spec.startswith("live:"):
        return live_source(spec.removeprefix("live:"), space_name, tables)
    return device_table_source(spec, space_name, tables)


def live_source(runtime: str, space_name: str, tables: BenchmarkTables | None,
                out: str | os.PathLike[str] | None = None) -> MetricSource:
    """Latency measured now on ``runtime``, kept under ``out`` (default
    ``results/devices/live-RUNTIME-SPACE``)."""
    if runtime not in list_runtimes():
        raise UnknownNameError("live runtime", runtime, list_runtimes())
    out = out or results_dir() / "devices" / f"live-{runtime}-{space_name}"
    return LiveLatency(get_space(space_name), get_runtime(runtime), out,
                       index_of=_index_of(tables))


def device_table_source(spec: str, space_name: str,
                        tables: BenchmarkTables | None) -> MetricSource:
    """A device table: a CSV, a device folder or a profiled device's name for this space.

    Raises:
        UnknownNameError: none of those (with the public devices when ``tables`` are given).
    """
    path = Path(spec)
    if not path.exists():
        path = profiled_path(spec, space_name) or path
    if path.exists():
        return DeviceTableLatency(read_device_table(path), get_space(space_name),
                                  _index_of(tables))
    if path.suffix.lower() in (".csv", ".parquet") or "/" in spec or os.sep in spec:
        # written as a path: "unknown device, valid: <names>" would not say what is wrong
        raise DataNotFoundError(f"device table {spec!r} not found; valid: an existing CSV, a "
                                "device folder (hwnas profile --out), or a device name")
    if tables is None:
        raise DataNotFoundError(
            f"device {spec!r} is not a table path or live:RUNTIME, and public device names need "
            "the public tables (--data or HWNAS_DATA)")
    profiled = sorted({p.name for p in find_profiled() if p.space == space_name})
    raise UnknownNameError(
        f"{space_name} device", spec, tables.devices,
        also=(f"a profiled device ({', '.join(profiled)}), " if profiled else "")
        + f"or a device-table path, lut:PATH of an operator lookup table, or live:RUNTIME "
          f"({', '.join(list_runtimes())})")


def lut_source(spec: str, space_name: str) -> MetricSource:
    """An operator lookup table's predictions: ``spec`` is its folder or its name under
    ``results/luts``."""
    from hwnas.latency.lut import LUTError, LUTLatency, OperatorLUT

    path = Path(spec)
    if not (path / "lut.json").is_file() and (results_dir() / "luts" / spec / "lut.json").is_file():
        path = results_dir() / "luts" / spec
    if not (path / "lut.json").is_file():
        found = sorted(p.parent.name for p in (results_dir() / "luts").glob("*/lut.json"))
        raise LUTError(f"no operator lookup table at {spec!r} (a folder with lut.json); built "
                       f"ones: {', '.join(found) or 'none'} (hwnas profile --lut)")
    lut = OperatorLUT.load(path)
    if lut.space_name != space_name:
        raise LUTError(f"the lookup table at {path} is for space {lut.space_name!r}, "
                       f"not {space_name!r}")
    return LUTLatency(lut)
