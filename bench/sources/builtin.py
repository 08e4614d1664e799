"""The metric sources hwnas ships, registered by name with typed options.

- ``accuracy:table``: a task column of the space's public tables (%), :class:`TableAccuracyOptions`
- ``accuracy:predicted``: a CSV of ``arch`` and ``accuracy`` (%), :class:`FileOptions`
- ``accuracy:live``: validation accuracy of training now (%), :class:`LiveAccuracyOptions`
- ``latency``: any ``--device`` form (ms), dispatched to the next four, :class:`DeviceOptions`
- ``latency:table``: a device column of the public tables (ms), :class:`DeviceOptions`
- ``latency:file``: a device table (CSV, folder, profiled name), :class:`FileOptions`
- ``latency:lut``: an operator lookup table's predictions (ms), :class:`FileOptions`
- ``latency:live``: measured now on a runtime (ms), :class:`LiveLatencyOptions`
- ``params``, ``flops``: of the built network, cached on disk, :class:`ModelStatOptions`
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import (
    Architecture,
    HwnasError,
    MetricSource,
    NotInTableError,
    Space,
    UnknownNameError,
)
from hwnas.search.tables.load import BenchmarkTables, load_tables

from ..cache import StatsCache
from .registry import register_source

__all__ = [
    "TableAccuracy",
    "ModelStatSource",
    "TableAccuracyOptions",
    "DeviceOptions",
    "FileOptions",
    "LiveLatencyOptions",
    "LiveAccuracyOptions",
    "ModelStatOptions",
    "EARLY_STOP_RULES",
]

#: early-stopping rules of live training, by name
EARLY_STOP_RULES = ("extrapolate", "peers")


def _text(owner: str, field_name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise HwnasError(f"{owner}: {field_name} must be a non-empty string, got {value!r}")


def _tables_or_load(tables: BenchmarkTables | None, space: Space) -> BenchmarkTables:
    return tables if tables is not None else load_tables(space.name)


class TableAccuracy(MetricSource):
    """Accuracy (percent) of a task column of the public tables; NaN outside the table."""

    unit = "%"

    def __init__(self, tables: BenchmarkTables, task: str):
        super().__init__()
        self.tables, self.task = tables, tables.check_task(task)
        self.name = f"accuracy:{task}"
        self.coverage = len(tables)

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


@dataclass(frozen=True)
class TableAccuracyOptions:
    """``task``: a column of the space's public tables (default: CIFAR-10 200-epoch test accuracy
    where the tables have it, else their first task); ``tables``: already loaded tables (default:
    load the space's)."""

    task: str | None = None
    tables: BenchmarkTables | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.task is not None:
            _text("accuracy:table", "task", self.task)
        if self.tables is not None and not isinstance(self.tables, BenchmarkTables):
            raise HwnasError(f"accuracy:table: tables must be BenchmarkTables, got "
                             f"{type(self.tables).__name__}")


@dataclass(frozen=True)
class DeviceOptions:
    """``device``: a public device name, a device-table path, a profiled device's name,
    ``lut:PATH`` or ``live:RUNTIME`` (``latency``), or a public device name (``latency:table``);
    ``tables``: already loaded public tables."""

    device: str
    tables: BenchmarkTables | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _text("latency", "device", self.device)
        if self.tables is not None and not isinstance(self.tables, BenchmarkTables):
            raise HwnasError(f"latency: tables must be BenchmarkTables, got "
                             f"{type(self.tables).__name__}")


@dataclass(frozen=True)
class FileOptions:
    """``path``: the table's file or folder (or a profiled device's / lookup table's name)."""

    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", str(self.path) if isinstance(self.path, Path)
                           else self.path)
        _text("file source", "path", self.path)


@dataclass(frozen=True)
class LiveLatencyOptions:
    """``runtime``: a registered runtime (``ort-cpu``...); ``out``: where measurements are kept
    (default ``results/devices/live-RUNTIME-SPACE``)."""

    runtime: str
    out: str | None = None

    def __post_init__(self) -> None:
        _text("latency:live", "runtime", self.runtime)


@dataclass(frozen=True)
class ModelStatOptions:
    """``cache``: the on-disk statistics cache (default :class:`~hwnas.bench.StatsCache`)."""

    cache: StatsCache | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LiveAccuracyOptions:
    """Accuracy by training each architecture now (:class:`hwnas.bench.live.accuracy.LiveAccuracy`).

    Attributes:
        dataset: a registered dataset (``digits``...).
        train: :class:`~hwnas.bench.live.training.TrainRecipe` fields.
        split_seed: seed of the train/validation split.
        early_stop: k of an early-stopping rule, or ``None``.
        early_stop_rule: ``extrapolate`` or ``peers``.
        inherit: start from a trained one-edit neighbour's weights.
        executor, workers, ray_address: how trainings run (serial, process pool, Ray).
    """

    dataset: str
    train: Mapping[str, Any] = field(default_factory=dict)
    split_seed: int = 0
    early_stop: int | None = None
    early_stop_rule: str = "extrapolate"
    inherit: bool = False
    executor: str = "serial"
    workers: int = 2
    ray_address: str | None = None

    def __post_init__(self) -> None:
        _text("accuracy:live", "dataset", self.dataset)
        if self.early_stop_rule not in EARLY_STOP_RULES:
            raise UnknownNameError("early-stopping rule", self.early_stop_rule, EARLY_STOP_RULES)
        for name in ("split_seed", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise HwnasError(f"accuracy:live: {name} must be a non-negative integer, "
                                 f"got {value!r}")
        if self.early_stop is not None and (isinstance(self.early_stop, bool)
                                            or not isinstance(self.early_stop, int)
                                            or self.early_stop < 0):
            raise HwnasError(f"accuracy:live: early_stop must be a non-negative integer, got "
                             f"{self.early_stop!r}")

    @classmethod
    def from_dicts(cls, dataset: str | None, train: Mapping[str, Any] | None,
                   live: Mapping[str, Any] | None) -> LiveAccuracyOptions:
        """From :class:`~hwnas.bench.problem.SearchConfig`'s ``train`` (recipe fields and
        ``split_seed``) and ``live`` (the other fields) mappings.

        Raises:
            HwnasError: no dataset, an unknown ``live`` key (listing the valid ones).
        """
        if dataset is None:
            raise HwnasError("accuracy by training (evaluate=train) needs a dataset (--dataset)")
        train = dict(train or {})
        split_seed = train.pop("split_seed", 0)
        live = dict(live or {})
        valid = ("early_stop", "early_stop_rule", "inherit", "executor", "workers", "ray_address")
        unknown = set(live) - set(valid)
        if unknown:
            raise HwnasError(f"live training options {sorted(unknown)}; valid: "
                             f"{', '.join(valid)}")
        if live.get("early_stop_rule") is None:
            live.pop("early_stop_rule", None)
        if live.get("early_stop") is not None:
            live["early_stop"] = int(live["early_stop"])
        if "workers" in live:
            live["workers"] = int(live["workers"])
        live["inherit"] = bool(live.get("inherit", False))
        return cls(dataset, train, split_seed=split_seed, **live)


def _table_accuracy(space: Space, o: TableAccuracyOptions) -> MetricSource:
    tables = _tables_or_load(o.tables, space)
    task = o.task
    if task is None:
        if not tables.tasks:
            raise HwnasError(f"the {space.name} tables have no accuracy column")
        task = "cifar10_test_200ep" if "cifar10_test_200ep" in tables.tasks else tables.tasks[0]
    return TableAccuracy(tables, task)


def _predicted_accuracy(space: Space, o: FileOptions) -> MetricSource:
    from hwnas.meta import PredictedAccuracy

    return PredictedAccuracy.from_csv(o.path, space, name=f"accuracy:{o.path}")


def _live_accuracy(space: Space, o: LiveAccuracyOptions) -> MetricSource:
    from ..live.accuracy import LiveAccuracy
    from ..live.datasets import get_dataset
    from ..live.training import EarlyStopping, PeerStopping, TrainRecipe

    try:
        recipe = TrainRecipe(**dict(o.train))
    except TypeError as e:  # an unknown recipe field
        raise HwnasError(f"training recipe: {e}") from None
    rule = {"extrapolate": EarlyStopping, "peers": PeerStopping}[o.early_stop_rule]
    return LiveAccuracy(space, get_dataset(o.dataset, seed=o.split_seed), recipe,
                        early_stopping=rule(k=o.early_stop) if o.early_stop else None,
                        inherit=o.inherit, executor=o.executor, workers=o.workers,
                        ray_address=o.ray_address)


def _device(space: Space, o: DeviceOptions) -> MetricSource:
    from ..devices import resolve_device

    return resolve_device(o.device, space.name, o.tables)


def _table_latency(space: Space, o: DeviceOptions) -> MetricSource:
    from ..devices import TableLatency

    return TableLatency(_tables_or_load(o.tables, space), o.device)


def _file_latency(space: Space, o: FileOptions) -> MetricSource:
    from ..devices import device_table_source

    return device_table_source(o.path, space.name, None)


def _lut_latency(space: Space, o: FileOptions) -> MetricSource:
    from ..devices import lut_source

    return lut_source(o.path, space.name)


def _live_latency(space: Space, o: LiveLatencyOptions) -> MetricSource:
    from ..devices import live_source

    return live_source(o.runtime, space.name, None, o.out)


def _stat(stat: str):  # noqa: ANN202  (a factory of factories)
    def factory(space: Space, o: ModelStatOptions) -> MetricSource:
        return ModelStatSource(space, stat, o.cache)
    return factory


for _name, _factory, _options, _doc in (
    ("accuracy:table", _table_accuracy, TableAccuracyOptions,
     "a task column of the public tables (%)"),
    ("accuracy:predicted", _predicted_accuracy, FileOptions,
     "a CSV of arch and accuracy, e.g. from hwnas accuracy adapt (%)"),
    ("accuracy:live", _live_accuracy, LiveAccuracyOptions,
     "validation accuracy of training each network now (%)"),
    ("latency", _device, DeviceOptions,
     "any --device: public name, table path, profiled name, lut:PATH, live:RUNTIME (ms)"),
    ("latency:table", _table_latency, DeviceOptions, "a device column of the public tables (ms)"),
    ("latency:file", _file_latency, FileOptions,
     "a device table: CSV, folder or profiled device name (ms)"),
    ("latency:lut", _lut_latency, FileOptions, "an operator lookup table's predictions (ms)"),
    ("latency:live", _live_latency, LiveLatencyOptions, "measured now on a runtime (ms)"),
    ("params", _stat("params"), ModelStatOptions, "trainable parameters of the built network"),
    ("flops", _stat("flops"), ModelStatOptions, "multiply-accumulates of the built network (M)"),
):
    register_source(_name, _factory, _options, _doc)
