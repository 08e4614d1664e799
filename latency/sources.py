"""Latency metric sources over device tables and live measurement.

``DeviceTableLatency`` answers from a device table (profiled or predicted, any CSV with ``index``
or ``arch`` and ``latency_ms``); ``LiveLatency`` measures on this machine as a search asks, through
the same protocol and resumable store as ``hwnas profile``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwnas.search import Architecture, MetricSource, Space

from .profile import Profiler, Target
from .protocol import MeasurementProtocol
from .runtime import Runtime
from .table import DeviceTable

__all__ = ["DeviceTableLatency", "LiveLatency"]

IndexOf = Callable[[Architecture], "int | None"]


class DeviceTableLatency(MetricSource):
    """Latency (ms) looked up in a device table, by canonical string or else by index.

    Args:
        table: the device table.
        space: the space its architectures belong to.
        index_of: maps an architecture to its table index (None when it has none); needed only
            for tables without an ``arch`` column.
    """

    unit = "ms"

    def __init__(self, table: DeviceTable, space: Space, index_of: IndexOf | None = None):
        super().__init__()
        self.table, self.space, self.index_of = table, space, index_of
        self.name = f"latency:{table.device}"
        self._by_arch = table.latency_by_arch()
        self._by_index = table.latency_by_index()

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        out = np.full(len(archs), np.nan)
        for i, a in enumerate(archs):
            v = self._by_arch.get(self.space.format(a))
            if v is None and self.index_of is not None and self._by_index:
                idx = self.index_of(a)
                v = None if idx is None else self._by_index.get(idx)
            if v is not None:
                out[i] = v
        return out


class LiveLatency(MetricSource):
    """Latency measured now, on this machine, for the architectures asked about.

    Measurements persist in ``out_dir`` (the profile store), so an architecture is measured once
    across calls and runs; NaN for one that fails to export or run.
    """

    unit = "ms"

    def __init__(self, space: Space, runtime: Runtime, out_dir: str | Path,
                 protocol: MeasurementProtocol | None = None, index_of: IndexOf | None = None):
        super().__init__()
        self.space, self.runtime = space, runtime
        self.index_of = index_of
        self.name = f"latency:live:{runtime.name}"
        self.profiler = Profiler(space, runtime, protocol or MeasurementProtocol(), out_dir,
                                 f"live:{runtime.name}")

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        targets = [Target(a, self.index_of(a) if self.index_of else None) for a in archs]
        table = self.profiler.run(list({t.arch: t for t in targets}.values()))
        found = table.latency_by_arch()
        return np.array([found.get(self.space.format(a), np.nan) for a in archs], dtype=float)
