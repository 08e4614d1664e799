"""What a deploy starts from: a search's evaluations, and which of them to measure.

A search is read from a run folder (``hwnas search`` / :func:`hwnas.bench.core.write_run`, read
with :func:`hwnas.bench.core.read_run`) or from a compare folder (``hwnas compare``: every
finished run of one problem, pooled, each read with the same reader).

The candidates are chosen by NSGA-II's survival rule (Deb et al., "A fast and elitist
multiobjective genetic algorithm: NSGA-II", IEEE TEVC 2002): the feasible evaluations are sorted
into non-dominated layers (constrained domination, so infeasible ones come last), whole layers are
taken in order while they fit in ``top``, and the layer that does not fit is cut to the members
with the largest crowding distance. The front is therefore measured whole when it fits, and the
closest runners-up (the next layers) fill the rest; a front larger than ``top`` is thinned to
its most spread-out members, boundary points first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import HwnasError
from hwnas.search.pareto import constrained_ranks, crowding_distance

from ..core import is_accuracy_file, read_run, signs_of

__all__ = ["DeployError", "SearchOutcome", "read_search", "select_candidates", "accuracy_source",
           "SELECTION_RULE"]

SELECTION_RULE = (
    "NSGA-II survival (Deb et al. 2002): non-dominated layers of the feasible evaluations (the "
    "front is layer 0) taken whole while they fit in --top; the first layer that does not fit is "
    "cut to its members with the largest crowding distance")

_SPACE_TITLES = {"nb201": "NAS-Bench-201", "fbnet": "HW-NAS-Bench FBNet", "ofa": "once-for-all"}
#: a compare problem's folder name (as the compare config checks it): never a path
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COLUMN = re.compile(r"(?P<data>[a-z0-9-]+?)_(?P<split>train|val|valid|test|ori-test|x-valid|"
                     r"x-test)_(?P<epochs>\d+)ep$")


class DeployError(HwnasError):
    """A deploy that cannot go on: its input, its target or its measurements; says which."""


@dataclass
class SearchOutcome:
    """The evaluations of one search problem, pooled over its runs.

    Attributes:
        folder: the run or compare folder.
        kind: ``"run"`` or ``"compare"``.
        problem: the compare problem's name (``None`` for a run folder).
        config: the (first) run's recorded config: space, objectives, task, device, constraints.
        objectives: the run record's objective entries (name, source, unit, direction).
        evaluations: one row per architecture (first evaluation kept), with ``arch``, ``index``,
            the objective columns and ``violation``.
        runs: how many run folders were pooled.
    """

    folder: Path
    kind: str
    problem: str | None
    config: dict[str, Any]
    objectives: list[dict[str, Any]]
    evaluations: pd.DataFrame
    runs: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.config["objectives"])


def _compare_runs(folder: Path, problem: str | None) -> tuple[str, list[Path]]:
    try:
        manifest = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
        problems = list(manifest["config"]["problems"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DeployError(f"{folder}: a corrupt compare folder (compare.json: {e})") from None
    if problem is None:
        if len(problems) != 1:
            raise DeployError(f"{folder} holds {len(problems)} problems; choose one with "
                              f"--problem: valid: {', '.join(problems)}")
        problem = problems[0]
    if problem not in problems or not _SAFE.fullmatch(problem):
        raise DeployError(f"{folder}: no problem {problem!r}; valid: {', '.join(problems)}")
    # the folder names come from the config's checked names, never from a path in a record
    runs = sorted(p.parent for p in (folder / "runs" / problem).glob("*/*/run.json"))
    if not runs:
        raise DeployError(f"{folder}: no finished run of problem {problem!r} (no "
                          f"runs/{problem}/STRATEGY/SEED/run.json); run the compare first")
    return problem, runs


def read_search(folder: str | Path, problem: str | None = None) -> SearchOutcome:
    """The evaluations of a run folder, or of one problem of a compare folder.

    Args:
        folder: a run folder (``run.json``) or a compare folder (``compare.json``).
        problem: a compare folder's problem (needed when it has more than one).

    Raises:
        DeployError: not a folder, neither kind, corrupt, or without any evaluation.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DeployError(f"{folder} is not a folder; valid: a search run folder (run.json) or "
                          "a compare folder (compare.json)")
    if (folder / "compare.json").is_file():
        kind = "compare"
        problem, paths = _compare_runs(folder, problem)
    elif (folder / "run.json").is_file():
        if problem is not None:
            raise DeployError(f"--problem {problem!r} is for compare folders; {folder} is a "
                              "single search run")
        kind, paths = "run", [folder]
    else:
        raise DeployError(f"{folder} is neither a search run folder (run.json) nor a compare "
                          "folder (compare.json); give the folder hwnas search or hwnas compare "
                          "wrote")
    records, frames = [], []
    for path in paths:
        try:
            record, ev = read_run(path)
        except HwnasError as e:
            raise DeployError(str(e)) from None
        records.append(record)
        frames.append(ev)
    config = records[0]["config"]
    names = list(config["objectives"])
    ev = pd.concat(frames, ignore_index=True)
    missing = [c for c in ("arch", *names) if c not in ev.columns]
    if missing:
        raise DeployError(f"{paths[0]}/evaluations.csv lacks the columns {', '.join(missing)} "
                          "its run.json names; run the search again")
    ev = ev.dropna(subset=["arch", *names])  # skipped evaluations carry no values
    if ev.empty:
        raise DeployError(f"{folder} holds no evaluations (every architecture was skipped, or "
                          "the search was stopped before its first); nothing to deploy")
    if "violation" not in ev.columns:
        ev["violation"] = 0.0
    if "index" not in ev.columns:
        ev["index"] = pd.NA
    ev = ev.drop_duplicates("arch", keep="first").reset_index(drop=True)
    outcome = SearchOutcome(folder, kind, problem, config, list(records[0].get("objectives", [])),
                            ev, runs=len(paths))
    if kind == "compare" and any(r["config"]["objectives"] != names for r in records):
        outcome.warnings.append("the pooled runs record different objectives; the first run's "
                                "are used")
    return outcome


def select_candidates(outcome: SearchOutcome, top: int) -> pd.DataFrame:
    """The ``top`` evaluations to measure (see :data:`SELECTION_RULE`), best layer first.

    Returns:
        The chosen rows of ``outcome.evaluations`` with ``layer`` (0: the search's front) and
        ``crowding`` added.

    Raises:
        DeployError: ``top`` < 1.
    """
    if top < 1:
        raise DeployError(f"--top must be >= 1, got {top}")
    ev = outcome.evaluations
    F = ev[outcome.names].to_numpy(dtype=np.float64) * signs_of(outcome.names)
    ranks = constrained_ranks(F, ev["violation"].to_numpy(dtype=np.float64))
    crowd = np.zeros(len(ev))
    chosen: list[int] = []
    for layer in np.unique(ranks):
        members = np.flatnonzero(ranks == layer)
        crowd[members] = crowding_distance(F[members])
        room = top - len(chosen)
        if len(members) > room:
            # stable: ties in crowding keep the search's order
            members = members[np.argsort(-crowd[members], kind="stable")[:room]]
        chosen.extend(sorted(members))
        if len(chosen) >= top:
            break
    out = ev.iloc[chosen].copy()
    out["layer"] = ranks[chosen]
    out["crowding"] = crowd[chosen]
    out = out.reset_index(drop=True)
    out.attrs["front_size"] = int(((ranks == 0) & (ev["violation"].to_numpy() <= 0)).sum())
    return out


def accuracy_source(config: dict[str, Any]) -> str:
    """How the run's accuracy was obtained, in words (``table: NAS-Bench-201 cifar10 test 200
    epochs``, ``trained here: digits, 6 epochs``, ``predicted table: FILE``)."""
    if "accuracy" not in config.get("objectives", []):
        return "not an objective of the search"
    if config.get("evaluate") == "train":
        epochs = (config.get("train") or {}).get("epochs")
        return (f"trained here (hwnas search --evaluate train): {config.get('dataset')}"
                + (f", {epochs} epochs" if epochs else ""))
    task = str(config.get("task") or "")
    if is_accuracy_file(task):
        return f"predicted table: {task}"
    title = _SPACE_TITLES.get(config.get("space", ""), config.get("space", ""))
    m = _COLUMN.match(task)
    if m:
        return f"table: {title} {m['data']} {m['split']} {m['epochs']} epochs"
    return f"table: {title} {task}"
