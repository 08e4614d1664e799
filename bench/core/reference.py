"""Reference fronts and the scores of a run against one.

The reference front is the *true* front where it can be computed: every architecture of the
public table (or of an enumerable space without one) evaluated with the problem's own objectives
and constraints (:func:`true_front`). Scores (:func:`score_frame`) are the indicators of
:mod:`hwnas.bench.indicators`, normalised by the reference front's ideal and nadir: hypervolume
ratio, IGD+, front recall (by architecture) and the regret of the best feasible accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import HwnasError, pareto_mask

from ..indicators import FrontRecall, HypervolumeRatio, IGDPlus, constrained_regret

__all__ = ["ReferenceFront", "true_front", "score_frame", "feasible_front_mask"]


@dataclass
class ReferenceFront:
    """The front runs are scored against: points (minimised), member architectures, best
    feasible accuracy, and how it was obtained (``true`` or ``union``)."""

    F: np.ndarray
    archs: list[str]
    best_accuracy: float
    kind: str
    candidates: int


def feasible_front_mask(F: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Rows that are feasible, finite and non-dominated among those."""
    F = np.asarray(F, dtype=np.float64)
    ok = np.asarray(feasible, dtype=bool) & np.isfinite(F).all(axis=1)
    mask = np.zeros(len(F), dtype=bool)
    if ok.any():
        mask[np.flatnonzero(ok)[pareto_mask(F[ok])]] = True
    return mask


def reference_from_frame(frame: pd.DataFrame, names: Sequence[str], signs: np.ndarray,
                         feasible: np.ndarray, kind: str) -> ReferenceFront:
    """The feasible front of ``frame`` (``arch`` and one natural-valued column per objective).

    Raises:
        HwnasError: no feasible architecture.
    """
    frame = frame.reset_index(drop=True)
    F = frame[list(names)].to_numpy(dtype=np.float64) * np.asarray(signs)
    mask = feasible_front_mask(F, feasible)
    if not mask.any():
        raise HwnasError(f"no feasible architecture: none of the {len(frame)} architectures of "
                         f"the {'table' if kind == 'true' else 'runs'} meets the constraints, so "
                         "the reference front is empty; relax the constraint")
    best = float("nan")
    if "accuracy" in names:
        acc = frame["accuracy"].to_numpy(dtype=np.float64)[np.asarray(feasible, dtype=bool)]
        best = float(np.nanmax(acc)) if np.isfinite(acc).any() else float("nan")
    return ReferenceFront(F[mask], frame["arch"][mask].tolist(), best, kind, len(frame))


def true_front(problem: Any) -> ReferenceFront:
    """The true front of a :class:`~hwnas.bench.Problem`: every architecture of its public
    table (or of its space, when enumerable and without a table), evaluated.

    Raises:
        HwnasError: a problem that cannot be enumerated, or without a feasible architecture.
    """
    from .problem import Problem

    if not isinstance(problem, Problem):
        raise HwnasError(f"true_front: a Problem is needed (Problem.from_names(...)), got "
                         f"{type(problem).__name__}")
    if problem.tables is not None:
        archs = list(problem.tables.archs)
    elif problem.space.enumerable:
        archs = list(problem.space)
    else:
        raise HwnasError(f"{problem.name}: no true front; the space cannot be enumerated and has "
                         "no table")
    from hwnas.search import evaluate_objectives

    # every source on every architecture (no short cut on missing values): the best feasible
    # accuracy counts architectures another objective lacks, as it always has
    values, _, violation = evaluate_objectives(problem.objectives, archs, problem.constraints)
    frame = pd.DataFrame(values, columns=problem.names)
    frame["arch"] = [problem.space.format(a) for a in archs]
    return reference_from_frame(frame, problem.names, problem.signs, violation <= 0, "true")


def score_frame(evaluations: pd.DataFrame, signs: np.ndarray, ref: ReferenceFront,
                budgets: Sequence[int], names: Sequence[str] | None = None
                ) -> list[dict[str, Any]]:
    """Indicators of the first ``b`` rows of ``evaluations`` (as ``evaluations.csv`` holds them)
    for every ``b`` in ``budgets``.

    Args:
        signs: +1 per minimised objective, -1 per maximised one, in ``names`` order.
        names: the objective columns (default: the columns between ``arch`` and ``violation``).
    """
    if names is None:
        cols = list(evaluations.columns)
        names = cols[cols.index("arch") + 1: cols.index("violation")]
    names = list(names)
    signs = np.asarray(signs, dtype=np.float64)
    hv, igd, recall = HypervolumeRatio(ref.F), IGDPlus(ref.F), FrontRecall(ref.archs)
    rows = []
    for b in sorted(budgets):
        part = evaluations.iloc[:b]
        F = part[names].to_numpy(dtype=np.float64) * signs
        feasible = (part["violation"].to_numpy(dtype=np.float64) <= 0
                    if "violation" in part else np.ones(len(part), dtype=bool))
        front = F[feasible_front_mask(F, feasible)]
        regret = float("nan")
        if "accuracy" in names and np.isfinite(ref.best_accuracy):
            regret = constrained_regret(ref.best_accuracy,
                                        part["accuracy"].to_numpy(dtype=np.float64), feasible)
        rows.append({
            "budget": int(b), "evaluations": int(len(part)),
            "hv_ratio": hv(front) if len(front) else 0.0,
            "igd_plus": igd(front) if len(front) else float("inf"),
            "recall": recall(part["arch"].tolist()),
            "regret": regret, "front_size": int(len(front)),
        })
    return rows
