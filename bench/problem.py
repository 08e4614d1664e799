"""``hwnas search`` as a library call: a :class:`SearchConfig` in, a run folder out.

:func:`run_problem` states the configuration as a :class:`hwnas.bench.Problem`
(:meth:`~hwnas.bench.Problem.from_names`: ``accuracy`` a task column of the public tables, a CSV
or live training; ``latency`` any ``--device``; ``params``, ``flops``), runs
:func:`hwnas.bench.minimize` and writes the run folder as one unit
(:func:`hwnas.bench.core.write_run`): ``evaluations.csv`` (one row per unique evaluation, in
order), ``front.csv`` (its feasible non-dominated rows) and ``run.json`` (configuration, seed,
versions, timings, warnings, checksums of the other two), written last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import (
    Architecture,
    HwnasError,
    Objective,
    Space,
    get_space,
)
from hwnas.search.strategies.prior import PriorFeatures
from hwnas.search.tables.load import BenchmarkTables

from .core import (
    EVALUATE,
    OBJECTIVES,
    Problem,
    is_accuracy_file,
    minimize,
    named_objectives,
    write_run,
)
from .sources import ModelStatSource, TableAccuracy

__all__ = ["TableAccuracy", "ModelStatSource", "SearchConfig", "build_objectives", "build_prior",
           "is_accuracy_file", "PRIOR_STRATEGIES", "problem_of",
           "OBJECTIVES", "EVALUATE", "run_problem"]

#: strategies whose model takes prior features (``--prior``)
PRIOR_STRATEGIES = ("surrogate",)


def build_objectives(space_name: str, names: Sequence[str], tables: BenchmarkTables | None,
                     task: str | None, device: str | None, evaluate: str = "table",
                     dataset: str | None = None,
                     train: dict[str, Any] | None = None,
                     live: dict[str, Any] | None = None) -> list[Objective]:
    """Objectives by name; see :func:`hwnas.bench.core.named_objectives`."""
    return named_objectives(space_name, names, tables, task, device, evaluate, dataset, train,
                            live)


def build_prior(space_name: str, specs: Sequence[str], tables: BenchmarkTables | None,
                task: str | None = None, device: str | None = None) -> PriorFeatures:
    """Prior features from ``--prior`` values: public task columns (another task's accuracy),
    public device names (another device's latency, in log) or CSV files with ``index`` or ``arch``
    and ``accuracy`` or ``latency_ms`` (what ``hwnas accuracy adapt`` / ``latency adapt`` write).

    Raises:
        HwnasError: a spec that is none of those, a file without the columns, the objective's own
            column or device (that would leak the answer), a prior named twice.
    """
    space = get_space(space_name)
    if len(set(specs)) != len(specs):
        raise HwnasError(f"--prior names a source twice: {list(specs)}")
    archs = list(tables.archs) if tables is not None else None
    columns: dict[str, dict[Architecture, float]] = {}
    log: list[str] = []
    paths: dict[str, Path | None] = {}  # each spec's table file, looked up once

    def path_of(spec: str) -> Path | None:
        if spec not in paths:
            public = tables is not None and (spec in tables.tasks or spec in tables.devices)
            paths[spec] = None if public else _prior_path(spec, space_name)
        return paths[spec]

    def same(a: str, b: str) -> bool:
        if a == b:
            return True
        pa, pb = path_of(a), path_of(b)
        try:
            return (pa is not None and pb is not None and pa.is_file() and pb.is_file()
                    and pa.samefile(pb))
        except OSError:
            return False

    for spec in specs:
        own = next((what for what, name in (("column", task), ("device", device))
                    if name is not None and same(spec, name)), None)
        if own is not None:
            raise HwnasError(f"--prior {spec}: that is the objective's own {own}; a prior must "
                             "be another task, device or predicted table")
        if tables is not None and spec in tables.tasks:
            values = tables.get_accuracy(spec, np.arange(len(tables)))
        elif tables is not None and spec in tables.devices:
            values = tables.get_latency(spec, np.arange(len(tables)))
            log.append(spec)
        elif (path := path_of(spec)) is not None:
            rows, values, is_latency = _read_prior_csv(str(path), space, archs)
            columns[spec] = dict(zip(rows, values.tolist(), strict=True))
            if is_latency:
                log.append(spec)
            continue
        else:
            valid = (f"a task ({', '.join(tables.tasks)}), a device ({', '.join(tables.devices)})"
                     if tables is not None else "a task or device (needs the public tables)")
            raise HwnasError(f"--prior {spec!r} is not a file; valid: a CSV with arch or index and "
                             f"accuracy or latency_ms, a device folder or profiled device, {valid}")
        assert archs is not None
        columns[spec] = dict(zip(archs, values.tolist(), strict=True))
    union = list(dict.fromkeys(a for c in columns.values() for a in c))
    return PriorFeatures.from_columns(
        union, {n: np.array([c.get(a, np.nan) for a in union]) for n, c in columns.items()},
        log=log)


def _prior_path(spec: str, space_name: str) -> Path | None:
    """The table file a prior names: a CSV, a device folder (its ``latency_ms.csv``) or the name
    of a device profiled for this space under ``results/devices``; ``None`` if none."""
    from .devices import profiled_path

    path = Path(spec)
    if path.is_dir() and (path / "latency_ms.csv").is_file():
        return path / "latency_ms.csv"
    if spec.endswith(".csv") or path.is_file():
        return path
    return profiled_path(spec, space_name)


def _read_prior_csv(path: str, space: Space, archs: list[Architecture] | None
                    ) -> tuple[list[Architecture], np.ndarray, bool]:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise HwnasError(f"cannot read prior {path}: {str(e).splitlines()[0]}") from None
    if frame.empty:
        raise HwnasError(f"prior {path} has no rows")
    value = next((c for c in ("accuracy", "latency_ms") if c in frame.columns), None)
    if value is None or not ({"arch", "index"} & set(frame.columns)):
        raise HwnasError(f"prior {path} needs an arch (or index) column and an accuracy or "
                         f"latency_ms column; it has {', '.join(map(str, frame.columns))}")
    values = pd.to_numeric(frame[value], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise HwnasError(f"prior {path}: {int((~np.isfinite(values)).sum())} values of {value} "
                         "are missing or not numbers")
    if "arch" in frame.columns:
        rows = []
        for n, text in enumerate(frame["arch"]):
            try:
                rows.append(space.parse(str(text)))
            except HwnasError as e:
                raise HwnasError(f"prior {path} row {n + 1}: not a {space.name} "
                                 f"architecture: {e}") from None
    else:
        if archs is None:
            raise HwnasError(f"prior {path} has an index column but no arch column; indices need "
                             "the public tables (--data or HWNAS_DATA)")
        idx = pd.to_numeric(frame["index"], errors="coerce")
        if (idx.isna().any() or (idx < 0).any() or (idx >= len(archs)).any()
                or (idx % 1 != 0).any()):
            raise HwnasError(f"prior {path}: indices must be integers in 0..{len(archs) - 1}")
        rows = [archs[int(i)] for i in idx]
    seen: set[Architecture] = set()
    for n, a in enumerate(rows):
        if a in seen:
            raise HwnasError(f"prior {path} row {n + 1}: {space.format(a)} appears twice")
        seen.add(a)
    return rows, values, value == "latency_ms"


@dataclass
class SearchConfig:
    """One search run, as the command line states it."""

    space: str
    objectives: list[str]
    strategy: str
    budget: int
    seed: int
    task: str | None = None
    device: str | None = None
    constraints: list[str] = field(default_factory=list)
    batch: int = 1
    strategy_options: dict[str, Any] = field(default_factory=dict)
    evaluate: str = "table"  # accuracy from the public tables, or "train" (live training)
    dataset: str | None = None
    train: dict[str, Any] = field(default_factory=dict)  # TrainRecipe fields
    live: dict[str, Any] = field(default_factory=dict)  # early_stop, inherit, executor, workers
    prior: list[str] = field(default_factory=list)  # --prior sources (see build_prior)


def problem_of(config: SearchConfig, tables: BenchmarkTables | None) -> Problem:
    """The :class:`Problem` a search configuration states."""
    objectives = named_objectives(config.space, config.objectives, tables, config.task,
                                  config.device, config.evaluate, config.dataset, config.train,
                                  config.live)
    return Problem(get_space(config.space), objectives, list(config.constraints), tables)


def run_problem(config: SearchConfig, tables: BenchmarkTables | None, out: str | Path,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run one search and write its run folder ``out`` as one unit; returns the run record.

    Raises:
        HwnasError: bad configuration (unknown names, budget < 1, a constraint that does not
            parse), before anything is evaluated or written; a search that could evaluate
            nothing (nothing is written then).
    """
    from hwnas.latency import describe_environment

    if isinstance(config.budget, bool) or not isinstance(config.budget, int) \
            or config.budget < 1:
        raise HwnasError(f"budget must be an integer >= 1, got {config.budget!r}")
    problem = problem_of(config, tables)
    options = dict(config.strategy_options)
    if config.prior:
        if config.strategy not in PRIOR_STRATEGIES:
            raise HwnasError(f"--prior is used by the model of a strategy that has one; strategy "
                             f"{config.strategy!r} has none; valid: {', '.join(PRIOR_STRATEGIES)}")
        # only what is an objective can leak: the task when accuracy is one, the device when
        # latency is one
        options["prior"] = build_prior(
            config.space, config.prior, tables,
            config.task if "accuracy" in config.objectives else None,
            config.device if "latency" in config.objectives else None)
    try:
        result = minimize(problem, config.strategy, config.budget, config.seed,
                          batch=config.batch, strategy_options=options, progress=progress)
    finally:
        problem.close()  # live training may hold a process pool or a Ray runtime
    if not result.records:
        raise HwnasError(f"nothing could be evaluated: all {result.skipped} architectures the "
                         f"strategy proposed lack a value of {' or '.join(problem.names)} "
                         f"(do the sources cover {config.space}?); nothing written")
    rows = result.to_frame()
    front = rows[result.front_mask]
    record = {
        "config": asdict(config),
        "objectives": problem.describe(),
        "constraints": [str(c) for c in problem.constraints],
        "evaluations": len(rows), "skipped": result.skipped, "asks": result.asks,
        "front_size": int(len(front)),
        "budget_used": result.config["budget_used"], "stopped": result.stopped,
        "warnings": list(result.warnings),
        # the share of evaluated architectures the prior knew: near 0, it could not help
        **({"prior_coverage": options["prior"].coverage(result.archs)}
           if "prior" in options else {}),
        **{k: v for o in problem.objectives if o.source.name.startswith("accuracy:live")
           for k, v in (("training", o.source.summary()),)},
        "seconds": result.timings["total_s"],
        "environment": describe_environment(),
    }
    return write_run(out, {"evaluations.csv": rows.to_csv(index=False),
                           "front.csv": front.to_csv(index=False)}, record)
