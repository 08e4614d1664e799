"""Quality indicators of a found front against the true one.

Small callables in the style of pymoo's ``Indicator``: reference data in ``__init__``, the front in
``__call__``, validation and normalisation in one base. Objectives are minimised and normalised by
the true front's ideal and nadir points; the hypervolume reference point is the nadir plus 10% of
the range (1.1 after normalisation), the convention of EvoXBench (Lu et al., "Neural Architecture
Search as Multiobjective Optimization Benchmarks", 2022) on NAS-Bench-201.

- hypervolume: exact, by a sweep in 2-D and by slicing along the third objective in 3-D;
- IGD+: Ishibuchi et al., "Modified Distance Calculation in Generational Distance and Inverted
  Generational Distance", EMO 2015;
- front recall: the fraction of the true Pareto set found;
- constrained regret: best true accuracy under a constraint minus the best one found.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable

import numpy as np

from hwnas.search import HwnasError, pareto_mask

__all__ = [
    "Indicator",
    "Hypervolume",
    "HypervolumeRatio",
    "IGDPlus",
    "FrontRecall",
    "constrained_regret",
    "hypervolume",
]


def _hv2d(F: np.ndarray, ref: np.ndarray) -> float:
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    F = F[pareto_mask(F)]
    F = F[np.argsort(F[:, 0])]
    widths = np.diff(np.append(F[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - F[:, 1])))


def hypervolume(F: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume dominated by the rows of ``F`` (minimised) and bounded by ``ref``."""
    F = np.asarray(F, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if F.ndim != 2 or F.shape[1] != len(ref):
        raise HwnasError(f"hypervolume: points {F.shape} do not match reference {ref.shape}")
    if F.shape[1] == 1:
        return float(max(0.0, ref[0] - F[:, 0].min())) if len(F) else 0.0
    if F.shape[1] == 2:
        return _hv2d(F, ref)
    if F.shape[1] == 3:
        F = F[np.all(F < ref, axis=1)]
        if len(F) == 0:
            return 0.0
        F = F[pareto_mask(F)]
        F = F[np.argsort(F[:, 2])]
        zs = np.append(F[:, 2], ref[2])
        total = 0.0
        for i in range(len(F)):  # slab between consecutive z values: 2-D area of points so far
            depth = zs[i + 1] - zs[i]
            if depth > 0:
                total += depth * _hv2d(F[: i + 1, :2], ref[:2])
        return float(total)
    raise HwnasError(f"exact hypervolume is implemented for 1-3 objectives, got {F.shape[1]}")


class Indicator(ABC):
    """Normalises by the true front's ideal and nadir; ``__call__`` validates the front."""

    def __init__(self, true_front: np.ndarray):
        pf = np.asarray(true_front, dtype=np.float64)
        if pf.ndim != 2 or len(pf) == 0 or not np.isfinite(pf).all():
            raise HwnasError("the true front must be a non-empty finite (n, m) array")
        self.ideal, self.nadir = pf.min(axis=0), pf.max(axis=0)
        self.scale = np.where(self.nadir > self.ideal, self.nadir - self.ideal, 1.0)
        self.true_front = self.normalise(pf)

    def normalise(self, F: np.ndarray) -> np.ndarray:
        return (np.asarray(F, dtype=np.float64) - self.ideal) / self.scale

    def __call__(self, F: np.ndarray) -> float:
        F = np.asarray(F, dtype=np.float64).reshape(-1, len(self.ideal))
        F = F[np.isfinite(F).all(axis=1)]
        return self._do(self.normalise(F))

    @abstractmethod
    def _do(self, F: np.ndarray) -> float: ...


class Hypervolume(Indicator):
    """Hypervolume of the normalised front with reference point 1.1 in every objective."""

    ref_offset = 0.1

    def _do(self, F: np.ndarray) -> float:
        return hypervolume(F, np.full(F.shape[1], 1.0 + self.ref_offset))


class HypervolumeRatio(Hypervolume):
    """Hypervolume of the found front over that of the true front (1.0: the true front)."""

    def __init__(self, true_front: np.ndarray):
        super().__init__(true_front)
        self.best = super()._do(self.true_front)

    def _do(self, F: np.ndarray) -> float:
        return super()._do(F) / self.best if self.best > 0 else float("nan")


class IGDPlus(Indicator):
    """Mean over true-front points of the dominance-aware distance to the nearest found point."""

    def _do(self, F: np.ndarray) -> float:
        if len(F) == 0:
            return float("inf")
        d = np.maximum(F[None, :, :] - self.true_front[:, None, :], 0.0)
        return float(np.sqrt((d**2).sum(axis=2)).min(axis=1).mean())


class FrontRecall:
    """Fraction of the true Pareto set (architectures or indices) among those found."""

    def __init__(self, true_set: Iterable[Hashable]):
        self.true_set = frozenset(true_set)
        if not self.true_set:
            raise HwnasError("the true Pareto set is empty")

    def __call__(self, found: Iterable[Hashable]) -> float:
        return len(self.true_set & set(found)) / len(self.true_set)


def constrained_regret(best_true: float, found_values: np.ndarray,
                       feasible: np.ndarray) -> float:
    """``best_true`` minus the best found value among feasible ones (maximisation; inf if none)."""
    v = np.asarray(found_values, dtype=np.float64)[np.asarray(feasible, dtype=bool)]
    v = v[np.isfinite(v)]
    return float(best_true - v.max()) if len(v) else float("inf")
