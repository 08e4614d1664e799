"""Reading ``hwnas compare`` folders and ``hwnas search`` run folders into problems.

A compare folder brings its own problems and reference fronts (``compare.json`` and the stored
references); loose run folders are grouped by their setup (space, objectives, task, device,
constraints and, for live-trained accuracy, dataset and recipe) and scored against the true front
where it can be computed, else the non-dominated union of the group's runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hwnas.search import HwnasError

from ..scoring import ReferenceFront, load_references, read_run, reference_front
from .errors import ReportError

__all__ = ["ProblemRuns", "Run", "collect"]

#: (strategy, seed, evaluations in the order they were made)
Run = tuple[str, int, pd.DataFrame]


@dataclass
class ProblemRuns:
    """The runs of one problem, as a report groups them: the problem's setup (as recorded), the
    front they are scored against, and each run's evaluations. Scoring itself is the core's
    (:mod:`hwnas.bench.core` through :mod:`hwnas.bench.scoring`); this holds no problem logic."""

    name: str
    spec: dict[str, Any]
    reference: ReferenceFront
    runs: list[Run]
    budgets: list[int]
    # live-trained runs (hwnas search --evaluate train): (strategy, seed, run.json "training")
    training: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


def _problem_key(config: dict[str, Any]) -> tuple:
    # live-trained accuracy is its own problem: another dataset or recipe is another objective
    live = (config.get("dataset"), json.dumps(config.get("train") or {}, sort_keys=True)) \
        if config.get("evaluate") == "train" else None
    return (config["space"], tuple(config["objectives"]), config.get("task"),
            config.get("device"), tuple(config.get("constraints") or ()), live)


def _compare_problems(path: Path, problems: dict[str, ProblemRuns]) -> None:
    """Add a compare folder's problems (a name already taken is prefixed with the folder's)."""
    try:
        manifest = json.loads((path / "compare.json").read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
            raise ValueError("compare.json is not the manifest hwnas compare writes (an object "
                             "with its config)")
        cfg = manifest["config"]
        refs = load_references(path)
    except (ValueError, KeyError, TypeError, HwnasError) as e:
        raise ReportError(f"{path}: a corrupt compare folder: {e}") from None
    for pname, (spec, ref) in refs.items():
        runs = []
        for label in cfg["strategies"]:
            for seed in cfg["seeds"]:
                folder = path / "runs" / pname / label / str(seed)
                # a run still going (or failed) has no run.json yet: it is left out
                if (folder / "run.json").is_file():
                    runs.append((label, int(seed), read_run(folder)[1]))
        name = pname if pname not in problems else f"{path.name}/{pname}"
        problems[name] = ProblemRuns(name, spec, ref, runs, list(cfg["budgets"]))


def _loose_problem(key: tuple, runs: list[Run], training: list[tuple[str, int, dict[str, Any]]],
                   data_dir: str | None, taken: dict[str, ProblemRuns]) -> ProblemRuns:
    """The problem of a group of run folders with one setup, named by that setup."""
    space, objectives, task, device, constraints, live = key
    spec = {"space": space, "objectives": list(objectives), "task": task, "device": device,
            "constraints": list(constraints), **({"evaluate": "train"} if live else {})}
    ref = reference_front(spec, data_dir, [ev for _, _, ev in runs])
    tag = None
    if live:
        epochs = json.loads(live[1]).get("epochs")
        tag = f"{live[0]}-{epochs}ep" if epochs else live[0]
    base = name = "-".join(str(x) for x in (space, tag, device or task) if x)
    k = 1
    while name in taken:
        k += 1
        name = f"{base} ({k})"
    # single runs have no checkpoints of their own: each run's length is one
    budgets = sorted({len(ev) for _, _, ev in runs})
    return ProblemRuns(name, spec, ref, runs, budgets, training)


def collect(inputs: Sequence[str | os.PathLike[str]], data_dir: str | None = None
            ) -> list[ProblemRuns]:
    """Problems with their runs from compare folders and single run folders.

    Args:
        inputs: compare folders (with ``compare.json``) and run folders (with ``run.json``).
        data_dir: the public tables' folder, for the reference fronts of run folders.

    Raises:
        ReportError: a folder that is neither (one line, naming it), or no finished run at all.
    """
    problems: dict[str, ProblemRuns] = {}
    loose: dict[tuple, list[Run]] = {}
    trained: dict[tuple, list[tuple[str, int, dict[str, Any]]]] = {}
    for path in map(Path, inputs):
        if not path.is_dir():
            raise ReportError(f"{path}: not a folder (give compare folders or run folders)")
        if (path / "compare.json").is_file():
            _compare_problems(path, problems)
        elif (path / "run.json").is_file():
            try:
                record, ev = read_run(path)
            except HwnasError as e:
                raise ReportError(str(e)) from None
            c = record["config"]
            loose.setdefault(_problem_key(c), []).append((c["strategy"], int(c["seed"]), ev))
            if isinstance(record.get("training"), dict):
                trained.setdefault(_problem_key(c), []).append(
                    (c["strategy"], int(c["seed"]), {**record["training"],
                                                     "dataset": c.get("dataset")}))
        else:
            raise ReportError(f"{path}: neither a compare folder (compare.json) nor a search run "
                              "(run.json)")
    for key, runs in loose.items():
        problem = _loose_problem(key, runs, trained.get(key, []), data_dir, problems)
        problems[problem.name] = problem
    if not problems:
        raise ReportError("no finished runs in the given folders")
    return list(problems.values())
