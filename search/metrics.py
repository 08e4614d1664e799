"""The metric-source contract: "give me this metric for these architectures".

A search never knows whether a number was looked up in a public table, measured a second ago or
predicted; every source answers the same call. Sources return NaN for an architecture they cannot
answer (outside a sampled table, a failed measurement), and the caller decides what to do.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .spaces.space import Architecture

__all__ = ["MetricSource"]


class MetricSource(ABC):
    """A named metric with a unit, and the seconds spent computing it so far (``cost_s``).

    Subclasses implement :meth:`_evaluate`; :meth:`evaluate` adds the bookkeeping.

    Attributes:
        coverage: how many architectures the source can answer at most (a table's rows), or
            ``None`` when unbounded; a search caps its budget at the smallest coverage.
    """

    name: str
    unit: str
    coverage: int | None = None

    def __init__(self) -> None:
        self.cost_s = 0.0
        self.calls = 0

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Values for ``archs`` as a float array of the same length (NaN: not available)."""
        t0 = time.perf_counter()
        out = np.asarray(self._evaluate(list(archs)), dtype=np.float64)
        self.cost_s += time.perf_counter() - t0
        self.calls += len(archs)
        if out.shape != (len(archs),):
            raise ValueError(f"{self.name}: {out.shape} values for {len(archs)} architectures")
        return out

    @abstractmethod
    def _evaluate(self, archs: list[Architecture]) -> np.ndarray: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, unit={self.unit!r})"
