"""Empirical attainment surfaces of two-objective runs (Fonseca & Fleming 1996).

A run *attains* a point z when one of its points weakly dominates z. Over n runs of a stochastic
optimiser, the k/n-attainment surface bounds the region attained by at least k of them: the
1/n-surface is the best any run reached, the n/n-surface what every run reached, and the median
surface is the optimiser's typical result (C. M. Fonseca and P. J. Fleming, "On the performance
assessment and comparison of stochastic multiobjective optimizers", PPSN IV, LNCS 1141, 1996).

For two minimised objectives the surfaces are exact and cheap: a run's attained region above a
threshold t on the first objective is bounded by the lowest second objective among its points
with f1 <= t, a step function that only changes at the runs' own f1 values. Sorting those n
step values at each of the pooled f1 values and taking the k-th smallest gives the k/n-surface
there, so every surface costs O(N n) for N pooled points (no sweep-line data structure needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import ReportError

__all__ = ["QUARTILES", "attainment_level", "attainment_surfaces"]

#: the surfaces a report draws: best quarter, median and worst quarter of the runs
QUARTILES = (0.25, 0.5, 0.75)


def attainment_level(fraction: float, n_runs: int) -> int:
    """How many of ``n_runs`` runs must attain a point for it to be inside the ``fraction``
    surface: ``ceil(fraction * n_runs)``, at least 1 (the median of 3 runs is 2 of 3)."""
    if not 0 < fraction <= 1:
        raise ReportError(f"attainment fraction {fraction}: valid is 0 < fraction <= 1")
    # a tolerance, so 0.5 * 4 is 2 and not 3 after a rounding error upwards
    return max(1, math.ceil(fraction * n_runs - 1e-9))


def attainment_surfaces(fronts: Sequence[np.ndarray],
                        fractions: Sequence[float] = QUARTILES) -> dict[float, np.ndarray]:
    """The empirical attainment surfaces of two-objective runs (all objectives minimised).

    Args:
        fronts: per run, an ``(n_i, 2)`` array of its points (feasible ones; dominated points
            are harmless, non-finite rows are dropped; a run may be empty).
        fractions: which surfaces, as fractions of the runs (see :func:`attainment_level`).

    Returns:
        fraction -> ``(m, 2)`` vertices of the surface's staircase, sorted by the first
        objective ascending (the second strictly descending); empty where fewer runs than the
        level found anything. Joining the vertices right-then-down draws the surface.

    Raises:
        ReportError: no runs, or points that are not two objectives.

    Example:
        >>> s = attainment_surfaces([np.array([[1., 3.], [3., 1.]]), np.array([[2., 2.]])])
        >>> s[0.5].tolist(), s[0.75].tolist()  # 1 of 2 runs, 2 of 2 runs
        ([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], [[2.0, 3.0], [3.0, 2.0]])
    """
    if not fronts:
        raise ReportError("attainment surfaces need at least one run")
    runs = []
    for f in fronts:
        f = np.asarray(f, dtype=np.float64)
        if f.size and (f.ndim != 2 or f.shape[1] != 2):
            raise ReportError(f"attainment surfaces take two objectives; got points of shape "
                              f"{f.shape}")
        f = f.reshape(-1, 2)
        runs.append(f[np.isfinite(f).all(axis=1)])
    pooled = [r[:, 0] for r in runs if len(r)]
    if not pooled:
        return {p: np.empty((0, 2)) for p in fractions}
    xs = np.unique(np.concatenate(pooled))
    # best[i, j]: run i's lowest f2 among its points with f1 <= xs[j] (inf: nothing there yet)
    best = np.full((len(runs), len(xs)), np.inf)
    for i, r in enumerate(runs):
        if not len(r):
            continue
        order = np.argsort(r[:, 0], kind="stable")
        f1, low = r[order, 0], np.minimum.accumulate(r[order, 1])
        pos = np.searchsorted(f1, xs, side="right") - 1
        best[i] = np.where(pos >= 0, low[np.maximum(pos, 0)], np.inf)
    ranked = np.sort(best, axis=0)
    out = {}
    for p in fractions:
        y = ranked[attainment_level(p, len(runs)) - 1]
        # a vertex where the surface steps down; the flat stretches between add nothing
        prev = np.concatenate([[np.inf], y[:-1]])
        keep = np.isfinite(y) & (y < prev)
        out[p] = np.column_stack([xs[keep], y[keep]])
    return out
