"""Scoring search runs at budget checkpoints against a problem's reference front.

A thin layer over :mod:`hwnas.bench.core` for problems stated as records (a compare config's
problems, a ``run.json``). The reference front is the *true* front where it can be computed
(:func:`hwnas.bench.core.true_front`: every architecture of an enumerable space such as
NAS-Bench-201's 15,625, or of the public table for fbnet and ofa, evaluated with the run's own
objectives and constraints). Where it cannot (a ``live:`` device, accuracy by training, no
tables), it is the non-dominated set of everything the compared runs evaluated, labelled
``union``: recall is then relative to the best known front, as in NAS papers without ground truth.

Indicators (normalised by the reference front's ideal and nadir, reference point nadir + 10% of
the range, the convention of EvoXBench on NAS-Bench-201): hypervolume ratio, IGD+, front recall,
and the regret of the best feasible accuracy (the best feasible accuracy of the reference set
minus the best the run found); see :func:`hwnas.bench.core.score_frame`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Constraint, HwnasError, get_space

from .core import (
    Problem,
    ReferenceFront,
    named_objectives,
    read_run,
    score_frame,
    signs_of,
    true_front,
)
from .core.reference import reference_from_frame

__all__ = ["ReferenceFront", "reference_front", "score_run", "score_compare", "read_run",
           "load_references"]


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
    from hwnas.search.tables.load import load_tables

    names = list(problem["objectives"])
    device = problem.get("device")
    space = get_space(problem["space"])
    try:
        tables = load_tables(problem["space"], data_dir)
    except HwnasError:
        tables = None
    # measured now (live latency, or accuracy by training): no enumerable truth to compare with
    live = (bool(device) and str(device).startswith("live:")) or \
        problem.get("evaluate") == "train"
    if not live and (tables is not None or space.enumerable):
        objectives = named_objectives(problem["space"], names, tables, problem.get("task"),
                                      device)
        return true_front(Problem(space, objectives, list(problem.get("constraints") or []),
                                  tables))
    if not runs:
        raise HwnasError("no reference front: the problem cannot be enumerated and no run "
                         "has evaluations")
    frame = pd.concat([r[["arch", *names]] for r in runs]).drop_duplicates("arch")
    frame = frame.reset_index(drop=True)
    feasible = _violation(frame, problem.get("constraints", []), names) <= 0
    return reference_from_frame(frame, names, signs_of(names), feasible, "union")


def score_run(evaluations: pd.DataFrame, problem: dict[str, Any], ref: ReferenceFront,
              budgets: Sequence[int]) -> list[dict[str, Any]]:
    """Indicators of the first ``b`` evaluations of a run, for every ``b`` in ``budgets``."""
    names = list(problem["objectives"])
    return score_frame(evaluations, signs_of(names), ref, budgets, names)


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
        F = ref.F * signs_of(problem["objectives"])
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
        F = part[names].to_numpy(dtype=np.float64) * signs_of(names)
        problem = {k: p.get(k) for k in ("space", "task", "device", "objectives", "constraints")}
        refs[pname] = (problem, ReferenceFront(F, part["arch"].tolist(),
                                               float(p["best_feasible_accuracy"]),
                                               p["reference"], int(p["candidates"])))
    return refs
