"""Pareto utilities on minimisation problems: domination, non-dominated sorting, crowding.

Everything here minimises every column of ``F`` (an ``(n, m)`` array); objectives to maximise are
negated once, where they are declared (:mod:`hwnas.search.objectives`). Non-dominated sorting and
crowding distance follow NSGA-II (Deb et al., "A fast and elitist multiobjective genetic algorithm:
NSGA-II", IEEE TEVC 2002); constrained domination is its constraint-handling rule.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "dominates",
    "domination_matrix",
    "non_dominated_sort",
    "pareto_mask",
    "crowding_distance",
    "constrained_ranks",
]


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere (minimisation)."""
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.all(a <= b) and np.any(a < b))


def domination_matrix(F: np.ndarray) -> np.ndarray:
    """``D[i, j]`` is True when row ``i`` dominates row ``j``."""
    F = np.asarray(F, dtype=np.float64)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    return le & lt


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows (duplicates of a non-dominated row are kept)."""
    F = np.asarray(F, dtype=np.float64)
    if len(F) == 0:
        return np.zeros(0, dtype=bool)
    if F.shape[1] == 2:  # O(n log n): sweep by f1, keep rows that lower the best f2 so far
        order = np.lexsort((F[:, 1], F[:, 0]))
        f1, f2 = F[order, 0], F[order, 1]
        keep = np.zeros(len(F), dtype=bool)
        best, i = np.inf, 0
        while i < len(F):
            j = i
            while j < len(F) and f1[j] == f1[i]:
                j += 1
            if f2[i] < best:  # f2 is sorted within a tie on f1: its minimum is f2[i]
                keep[i:j] = f2[i:j] == f2[i]
                best = f2[i]
            i = j
        mask = np.zeros(len(F), dtype=bool)
        mask[order] = keep
        return mask
    return ~domination_matrix(F).any(axis=0)


def non_dominated_sort(F: np.ndarray) -> np.ndarray:
    """Front rank of every row (0 = non-dominated), NSGA-II's fast non-dominated sort."""
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    ranks = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return ranks
    D = domination_matrix(F)
    dominated_by = D.sum(axis=0)
    front = np.flatnonzero(dominated_by == 0)
    rank = 0
    while front.size:
        ranks[front] = rank
        dominated_by = dominated_by - D[front].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        front = np.flatnonzero(dominated_by == 0)
        rank += 1
    return ranks


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (boundary rows get infinity)."""
    F = np.asarray(F, dtype=np.float64)
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return dist


def constrained_ranks(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Front ranks under constrained domination: feasible rows first (sorted by Pareto rank),
    then infeasible rows by increasing total violation."""
    F = np.asarray(F, dtype=np.float64)
    if violation is None:
        return non_dominated_sort(F)
    v = np.asarray(violation, dtype=np.float64)
    feasible = v <= 0
    ranks = np.empty(len(F), dtype=np.int64)
    ranks[feasible] = non_dominated_sort(F[feasible])
    top = ranks[feasible].max() + 1 if feasible.any() else 0
    infeasible = np.flatnonzero(~feasible)
    order = np.argsort(v[infeasible], kind="stable")
    ranks[infeasible[order]] = top + np.arange(len(infeasible))
    return ranks
