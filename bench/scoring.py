"""Scoring search runs at budget checkpoints against a problem's reference front.

The reference front is the *true* front where it can be computed: every architecture of an
enumerable space (NAS-Bench-201's 15,625) or of the public table (fbnet, ofa), evaluated with the
run's own objectives and constraints. Where it cannot (a ``live:`` device, no tables), it is the
non-dominated set of everything the compared runs evaluated, and is labelled ``union``: recall
is then relative to the best known front, as in NAS papers without ground truth.

Indicators (normalised by the reference front's ideal and nadir, reference point nadir + 10% of
the range, the convention of EvoXBench on NAS-Bench-201): hypervolume ratio, IGD+, front recall,
and the regret of the best feasible accuracy (the best feasible accuracy of the reference set
minus the best the run found).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Constraint, HwnasError, get_space, pareto_mask

from .indicators import FrontRecall, HypervolumeRatio, IGDPlus

__all__ = ["ReferenceFront", "reference_front", "score_run", "score_compare", "read_run",
           "load_references",
           "SIGNS"]

#: +1 minimised, -1 maximised (objectives are stored in their natural units)
SIGNS = {"accuracy": -1.0, "latency": 1.0, "params": 1.0, "flops": 1.0}


@dataclass
class ReferenceFront:
    """The front runs are scored against: points (minimised), member architectures, best
    feasible accuracy, and how it was obtained (``true`` or ``union``)."""

    F: np.ndarray
    archs: list[str]
    best_accuracy: float
    kind: str
    candidates: int


def _front(F: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    ok = feasible & np.isfinite(F).all(axis=1)
    mask = np.zeros(len(F), dtype=bool)
    if ok.any():
        mask[np.flatnonzero(ok)[pareto_mask(F[ok])]] = True
    return mask


def _violation(values: pd.DataFrame, constraints: Sequence[str], names: list[str]) -> np.ndarray:
    v = np.zeros(len(values))
    for text in constraints:
        c = Constraint.parse(text, names)
        v += c.violation(values[c.objective].to_numpy(dtype=np.float64))
    return v


def reference_front(problem: dict[str, Any], data_dir: str | None,
                    runs: Sequence[pd.DataFrame] = ()) -> ReferenceFront:
    """The true front of a problem where computable, else the union of ``runs``' fronts.

    Args:
        problem: ``space``, ``objectives``, ``task``, ``device``, ``constraints`` and
            optionally ``evaluate`` (``train``: accuracy was measured by training).
        data_dir: the public tables' folder (default ``HWNAS_DATA``).
        runs: evaluations of runs of this problem (for the ``union`` fallback).
    """
    from hwnas.search import evaluate_objectives
    from hwnas.search.tables.load import load_tables

    from .problem import build_objectives

    names = list(problem["objectives"])
    signs = np.array([SIGNS[n] for n in names])
    device = problem.get("device")
    space = get_space(problem["space"])
    try:
        tables = load_tables(problem["space"], data_dir)
    except HwnasError:
        tables = None
    # measured now (live latency, or accuracy by training): no enumerable truth to compare with
    live = (bool(device) and str(device).startswith("live:")) or \
        problem.get("evaluate") == "train"
    archs = None
    if not live:
        # the tables list every architecture they know in their own order (for nb201: the
        # whole space); a space without tables is enumerated directly where it can be
        if tables is not None:
            archs = list(tables.archs)
        elif space.enumerable:
            archs = list(space)
    if archs is not None:
        objectives = build_objectives(problem["space"], names, tables, problem.get("task"),
                                      device)
        values, _, _ = evaluate_objectives(objectives, archs)
        frame = pd.DataFrame(values, columns=names)
        frame["arch"] = [space.format(a) for a in archs]
        kind = "true"
    else:
        if not runs:
            raise HwnasError("no reference front: the problem cannot be enumerated and no run "
                             "has evaluations")
        frame = pd.concat([r[["arch", *names]] for r in runs]).drop_duplicates("arch")
        kind = "union"
    frame = frame.reset_index(drop=True)
    F = frame[names].to_numpy(dtype=np.float64) * signs
    feasible = _violation(frame, problem.get("constraints", []), names) <= 0
    mask = _front(F, feasible)
    if not mask.any():
        raise HwnasError("no feasible architecture: the reference front is empty")
    best = float("nan")
    if "accuracy" in names:
        acc = frame["accuracy"].to_numpy(dtype=np.float64)[feasible]
        best = float(np.nanmax(acc)) if np.isfinite(acc).any() else float("nan")
    return ReferenceFront(F[mask], frame["arch"][mask].tolist(), best, kind, len(frame))


def read_run(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """A finished run's record and evaluations.

    Raises:
        HwnasError: the folder is not a finished ``hwnas search`` run.
    """
    folder = Path(folder)
    try:
        record = json.loads((folder / "run.json").read_text())
        evaluations = pd.read_csv(folder / "evaluations.csv")
        record["config"]["objectives"]  # noqa: B018  (a foreign run.json fails here)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HwnasError(f"{folder} is not a finished hwnas run (run.json + evaluations.csv): "
                         f"{e}") from None
    return record, evaluations


def score_run(evaluations: pd.DataFrame, problem: dict[str, Any], ref: ReferenceFront,
              budgets: Sequence[int]) -> list[dict[str, Any]]:
    """Indicators of the first ``b`` evaluations of a run, for every ``b`` in ``budgets``."""
    names = list(problem["objectives"])
    signs = np.array([SIGNS[n] for n in names])
    hv, igd, recall = HypervolumeRatio(ref.F), IGDPlus(ref.F), FrontRecall(ref.archs)
    rows = []
    for b in sorted(budgets):
        part = evaluations.iloc[:b]
        F = part[names].to_numpy(dtype=np.float64) * signs
        feasible = (part["violation"].to_numpy(dtype=np.float64) <= 0
                    if "violation" in part else np.ones(len(part), dtype=bool))
        front = F[_front(F, feasible)]
        regret = float("nan")
        if "accuracy" in names and np.isfinite(ref.best_accuracy):
            acc = part["accuracy"].to_numpy(dtype=np.float64)[feasible]
            acc = acc[np.isfinite(acc)]
            regret = float(ref.best_accuracy - acc.max()) if len(acc) else float("inf")
        rows.append({
            "budget": int(b), "evaluations": int(len(part)),
            "hv_ratio": hv(front) if len(front) else 0.0,
            "igd_plus": igd(front) if len(front) else float("inf"),
            "recall": recall(part["arch"].tolist()),
            "regret": regret, "front_size": int(len(front)),
        })
    return rows


def score_compare(config: Any, out: str | os.PathLike[str], data_dir: str | None
                  ) -> dict[str, Any]:
    """Write ``out/evaluations.parquet`` and ``out/indicators.parquet`` for a compare folder's
    finished runs, and the reference fronts to ``out/reference_fronts.parquet``."""
    from hwnas.latency import atomic_write_text

    out = Path(out)
    all_evals, all_scores, fronts, info = [], [], [], {}
    for pname, problem in config.problems.items():
        runs = []
        for label in config.strategies:
            for seed in config.seeds:
                folder = out / "runs" / pname / label / str(seed)
                if not (folder / "run.json").is_file():
                    continue
                _, ev = read_run(folder)
                runs.append((label, seed, ev))
        if not runs:
            continue
        ref = reference_front(problem, data_dir, [ev for _, _, ev in runs])
        info[pname] = {"reference": ref.kind, "front_size": len(ref.F),
                       "candidates": ref.candidates, "best_feasible_accuracy": ref.best_accuracy,
                       **problem}
        F = ref.F * np.array([SIGNS[n] for n in problem["objectives"]])
        fronts.append(pd.DataFrame(F, columns=problem["objectives"])
                      .assign(problem=pname, arch=ref.archs))
        for label, seed, ev in runs:
            all_evals.append(ev.assign(problem=pname, strategy=label, seed=seed))
            for row in score_run(ev, problem, ref, config.budgets):
                all_scores.append({"problem": pname, "strategy": label, "seed": seed,
                                   "reference": ref.kind, **row})
    if all_evals:
        _write_parquet(pd.concat(all_evals, ignore_index=True), out / "evaluations.parquet")
        _write_parquet(pd.DataFrame(all_scores), out / "indicators.parquet")
        _write_parquet(pd.concat(fronts, ignore_index=True), out / "reference_fronts.parquet")
    atomic_write_text(out / "problems.json", json.dumps(info, indent=2, default=str) + "\n")
    return info


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def load_references(out: str | os.PathLike[str]) -> dict[str, tuple[dict[str, Any],
                                                                     ReferenceFront]]:
    """The problems and reference fronts :func:`score_compare` wrote into ``out``."""
    out = Path(out)
    try:
        info = json.loads((out / "problems.json").read_text())
        fronts = pd.read_parquet(out / "reference_fronts.parquet")
    except (OSError, ValueError) as e:
        raise HwnasError(f"{out}: no scored compare output (problems.json, "
                         f"reference_fronts.parquet): {e}") from None
    refs = {}
    for pname, p in info.items():
        names = list(p["objectives"])
        part = fronts[fronts["problem"] == pname]
        F = part[names].to_numpy(dtype=np.float64) * np.array([SIGNS[n] for n in names])
        problem = {k: p.get(k) for k in ("space", "task", "device", "objectives", "constraints")}
        refs[pname] = (problem, ReferenceFront(F, part["arch"].tolist(),
                                               float(p["best_feasible_accuracy"]),
                                               p["reference"], int(p["candidates"])))
    return refs
