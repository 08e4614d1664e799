"""Search problems over the public tables: objectives by name, one search run, its records.

``hwnas search`` builds its objectives here: ``accuracy`` (a task column of the space's public
table, or with ``evaluate="train"`` the validation accuracy of training the network now on a
dataset, see :mod:`hwnas.bench.live.accuracy`; maximised), ``latency`` (any ``--device``: public
name, device-table path, profiled name or ``live:RUNTIME``; minimised), ``params`` and ``flops``
(computed from the built network, cached on disk; minimised). A run writes ``evaluations.csv`` (one
row per unique evaluation, in order), ``front.csv`` (its feasible non-dominated rows) and
``run.json`` (configuration, seed, versions, timings), each atomically.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.latency import atomic_write_text, describe_environment
from hwnas.search import (
    Architecture,
    Constraint,
    HwnasError,
    MetricSource,
    NotInTableError,
    Objective,
    Space,
    UnknownNameError,
    create_strategy,
    evaluate_objectives,
    get_space,
    pareto_mask,
    run_search,
)
from hwnas.search.strategies.prior import PriorFeatures
from hwnas.search.tables.load import BenchmarkTables

from .cache import StatsCache
from .devices import resolve_device

__all__ = ["TableAccuracy", "ModelStatSource", "SearchConfig", "build_objectives", "build_prior",
           "is_accuracy_file", "PRIOR_STRATEGIES",
           "OBJECTIVES", "EVALUATE", "run_problem"]

OBJECTIVES = ("accuracy", "latency", "params", "flops")
EVALUATE = ("table", "train")
#: strategies whose model takes prior features (``--prior``)
PRIOR_STRATEGIES = ("surrogate",)


class TableAccuracy(MetricSource):
    """Accuracy (percent) of a task column of the public tables; NaN outside the table."""

    unit = "%"

    def __init__(self, tables: BenchmarkTables, task: str):
        super().__init__()
        self.tables, self.task = tables, tables.check_task(task)
        self.name = f"accuracy:{task}"

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        out = np.full(len(archs), np.nan)
        for i, a in enumerate(archs):
            with contextlib.suppress(NotInTableError):  # outside the table: NaN, skipped
                out[i] = self.tables.get_accuracy(self.task, [self.tables.index_of(a)])[0]
        return out


class ModelStatSource(MetricSource):
    """Trainable parameters or MACs (millions) of the built network, cached on disk."""

    def __init__(self, space: Space, stat: str, cache: StatsCache | None = None):
        super().__init__()
        if stat not in ("params", "flops"):
            raise HwnasError(f"unknown model statistic {stat!r}; valid: params, flops")
        self.space, self.stat, self.cache = space, stat, cache or StatsCache()
        self.name = stat
        self.unit = "parameters" if stat == "params" else "M multiply-accumulates"

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        stats = self.cache.get_many(self.space, archs)
        return np.array([s.params if self.stat == "params" else s.flops_m for s in stats],
                        dtype=np.float64)


def build_objectives(space_name: str, names: Sequence[str], tables: BenchmarkTables | None,
                     task: str | None, device: str | None, evaluate: str = "table",
                     dataset: str | None = None,
                     train: dict[str, Any] | None = None,
                     live: dict[str, Any] | None = None) -> list[Objective]:
    """Objectives by name (``accuracy``, ``latency``, ``params``, ``flops``).

    Args:
        evaluate: where accuracy comes from: ``table`` (the public tables' ``task`` column) or
            ``train`` (:class:`hwnas.bench.live.accuracy.LiveAccuracy`: train each architecture on
            ``dataset`` with a :class:`hwnas.bench.live.training.TrainRecipe` of ``train``'s
            fields).
        live: how live training runs: ``early_stop`` (k of an early-stopping rule, or absent),
            ``early_stop_rule`` (``extrapolate``: :class:`~hwnas.bench.live.training.EarlyStopping`,
            ``peers``: :class:`~hwnas.bench.live.training.PeerStopping`), ``inherit`` (start
            from a trained one-edit neighbour's weights), ``executor`` and ``workers`` (see
            :class:`~hwnas.bench.live.accuracy.LiveAccuracy`).

    Raises:
        UnknownNameError: an unknown objective, task or device.
        HwnasError: an objective without what it needs (accuracy without tables, latency
            without a device), or an objective named twice.
    """
    if len(set(names)) != len(names) or not names:
        raise HwnasError(f"objectives must be distinct and at least one, got {list(names)}")
    if evaluate not in EVALUATE:
        raise UnknownNameError("accuracy evaluation", evaluate, EVALUATE)
    space = get_space(space_name)
    out = []
    for name in names:
        if name not in OBJECTIVES:
            raise UnknownNameError("objective", name, OBJECTIVES)
        if name == "accuracy" and evaluate == "train":
            out.append(Objective("accuracy", _live_accuracy(space, dataset, train, live),
                                 "max"))
        elif name == "accuracy" and is_accuracy_file(task):
            # a predicted table (hwnas accuracy adapt) or any CSV of arch and accuracy
            from hwnas.meta import PredictedAccuracy

            out.append(Objective("accuracy", PredictedAccuracy.from_csv(task, space,
                                                                        name=f"accuracy:{task}"),
                                 "max"))
        elif name == "accuracy":
            if tables is None or task is None:
                raise HwnasError("the accuracy objective needs the public tables and --task")
            out.append(Objective("accuracy", TableAccuracy(tables, task), "max"))
        elif name == "latency":
            if device is None:
                raise HwnasError("the latency objective needs --device")
            out.append(Objective("latency", resolve_device(device, space_name, tables), "min"))
        else:
            out.append(Objective(name, ModelStatSource(space, name), "min"))
    return out


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
    from .devices import find_profiled

    path = Path(spec)
    if path.is_dir() and (path / "latency_ms.csv").is_file():
        return path / "latency_ms.csv"
    if spec.endswith(".csv") or path.is_file():
        return path
    return next((p.path for p in find_profiled()
                 if p.device == spec and p.space == space_name), None)


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


def is_accuracy_file(task: str | None) -> bool:
    """Whether ``task`` names an accuracy table on disk (a CSV) rather than a public column."""
    return task is not None and (task.endswith(".csv") or Path(task).is_file())


def _live_accuracy(space: Space, dataset: str | None, train: dict[str, Any] | None,
                   live: dict[str, Any] | None = None) -> MetricSource:
    from .live.accuracy import LiveAccuracy
    from .live.datasets import get_dataset
    from .live.training import EarlyStopping, PeerStopping, TrainRecipe

    if dataset is None:
        raise HwnasError("accuracy by training (evaluate=train) needs a dataset (--dataset)")
    options = dict(train or {})
    seed = options.pop("split_seed", 0)
    try:
        recipe = TrainRecipe(**options)
    except TypeError as e:  # an unknown recipe field
        raise HwnasError(f"training recipe: {e}") from None
    live = dict(live or {})
    unknown = set(live) - {"early_stop", "early_stop_rule", "inherit", "executor", "workers",
                           "ray_address"}
    if unknown:
        raise HwnasError(f"live training options {sorted(unknown)}; valid: early_stop, "
                         "early_stop_rule, inherit, executor, workers, ray_address")
    k = live.get("early_stop")
    rules = {"extrapolate": EarlyStopping, "peers": PeerStopping}
    rule = live.get("early_stop_rule") or "extrapolate"
    if rule not in rules:
        raise UnknownNameError("early-stopping rule", rule, tuple(rules))
    return LiveAccuracy(space, get_dataset(dataset, seed=seed), recipe,
                        early_stopping=rules[rule](k=int(k)) if k else None,
                        inherit=bool(live.get("inherit", False)),
                        executor=live.get("executor", "serial"),
                        workers=int(live.get("workers", 2)),
                        ray_address=live.get("ray_address"))


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


def run_problem(config: SearchConfig, tables: BenchmarkTables | None, out: str | Path,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run one search and write its three files into ``out``; returns the run record.

    Raises:
        HwnasError: bad configuration (unknown names, budget < 1, a constraint that does not
            parse), before anything is evaluated or written.
    """
    if config.budget < 1:
        raise HwnasError(f"budget must be >= 1, got {config.budget}")
    space = get_space(config.space)
    objectives = build_objectives(config.space, config.objectives, tables, config.task,
                                  config.device, config.evaluate, config.dataset, config.train,
                                  config.live)
    names = [o.name for o in objectives]
    constraints = [Constraint.parse(c, names) for c in config.constraints]
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
    strategy = create_strategy(config.strategy, space, len(objectives), seed=config.seed,
                               **options)
    t0 = time.perf_counter()
    try:
        result = run_search(strategy, lambda archs: evaluate_objectives(objectives, archs,
                                                                        constraints),
                            config.budget, batch=config.batch, progress=progress)
    finally:
        for o in objectives:  # live training may hold a process pool or a Ray runtime
            if hasattr(o.source, "close") and o.source.name.startswith("accuracy:live"):
                o.source.close()
    seconds = time.perf_counter() - t0

    def index_of(a: Architecture) -> int | None:
        try:
            return tables.index_of(a) if tables is not None else None
        except NotInTableError:
            return None

    rows = pd.DataFrame({
        "step": [r.step for r in result.records],
        "index": pd.array([index_of(r.arch) for r in result.records], dtype="Int64"),
        "arch": [space.format(r.arch) for r in result.records],
        **{n: [float(r.values[k]) for r in result.records] for k, n in enumerate(names)},
        "violation": [r.violation for r in result.records],
    })
    if len(rows):
        F = np.stack([r.F for r in result.records])
        feasible = rows["violation"].to_numpy() <= 0
        mask = np.zeros(len(rows), dtype=bool)
        mask[feasible] = pareto_mask(F[feasible]) if feasible.any() else []
        front = rows[mask]
    else:
        front = rows
    record = {
        "config": asdict(config),
        "objectives": [{"name": o.name, "source": o.source.name, "unit": o.source.unit,
                        "direction": o.direction, "seconds": o.source.cost_s}
                       for o in objectives],
        "constraints": [str(c) for c in constraints],
        "evaluations": len(rows), "skipped": result.skipped, "asks": result.asks,
        "front_size": int(len(front)),
        # the share of evaluated architectures the prior knew: near 0, it could not help
        **({"prior_coverage": options["prior"].coverage([r.arch for r in result.records])}
           if "prior" in options else {}),
        **{k: v for o in objectives if o.source.name.startswith("accuracy:live")
           for k, v in (("training", o.source.summary()),)},
        "seconds": seconds,
        "environment": describe_environment(),
    }
    out = Path(out)
    atomic_write_text(out / "evaluations.csv", rows.to_csv(index=False))
    atomic_write_text(out / "front.csv", front.to_csv(index=False))
    atomic_write_text(out / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    return record
