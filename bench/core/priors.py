"""Prior knowledge for a search: named prior sources, the default set, and the leak check.

A prior is what a search may know of every architecture before it evaluates any: another task's
accuracy column, another device's latency (public or profiled), or a CSV such as a predicted
table (:class:`hwnas.search.strategies.PriorFeatures` turns them into surrogate features).

What a search must not be handed is its own answer. :func:`build_prior` refuses the objective's
own task column or device, and a *copy* of it: a column whose values equal the objective's own
(to 1e-6 relative) on every architecture both have, under whatever name or path.

:func:`default_prior` is what ``auto`` gets when nothing is named (``--no-prior`` turns it off):

- when accuracy is an objective, every public task column of *another dataset*: a task is the
  dataset, so with CIFAR-10 200-epoch test accuracy as the objective, CIFAR-10 at 12 epochs or on
  the validation split is not given (it is nearly the answer), CIFAR-100 and ImageNet16-120 are;
  with accuracy from a CSV (a predicted table of a new task) every public task is another one;
- when latency is an objective, every other public device and every device profiled for the space
  (``results/devices``); another batch size of the same hardware is another device;
- a prior of a metric that is not an objective is not given (it could only add noise), nor one
  for an objective whose source does not say what it reads (a user's own metric source).

Copies among them are left out, and every column left out is recorded with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Architecture, HwnasError, Space, get_space
from hwnas.search.strategies.prior import PriorFeatures
from hwnas.search.tables.load import BenchmarkTables

__all__ = ["build_prior", "dataset_of", "default_prior", "default_prior_specs"]

#: relative tolerance under which a prior column counts as a copy of the objective's values
COPY_RTOL = 1e-6

Column = dict[Architecture, float]


def dataset_of(task: str) -> str:
    """The dataset a public task column belongs to: ``cifar10_val_12ep`` -> ``cifar10``."""
    return task.split("_", 1)[0]


def _prior_path(spec: str, space_name: str) -> Path | None:
    """The table file a prior names: a CSV, a device folder (its ``latency_ms.csv``) or the name
    of a device profiled for this space under ``results/devices``; ``None`` if none."""
    from ..devices import profiled_path

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


class _Sources:
    """Reads named prior sources of one space, each table file looked up once."""

    def __init__(self, space_name: str, tables: BenchmarkTables | None):
        self.space_name, self.tables = space_name, tables
        self.space = get_space(space_name)
        self.archs = list(tables.archs) if tables is not None else None
        self._paths: dict[str, Path | None] = {}
        self._read: dict[str, tuple[Column, bool] | None] = {}

    def public(self, spec: str) -> bool:
        return self.tables is not None and (spec in self.tables.tasks
                                            or spec in self.tables.devices)

    def path_of(self, spec: str) -> Path | None:
        if spec not in self._paths:
            self._paths[spec] = None if self.public(spec) else _prior_path(spec, self.space_name)
        return self._paths[spec]

    def same(self, a: str, b: str) -> bool:
        if a == b:
            return True
        pa, pb = self.path_of(a), self.path_of(b)
        try:
            return (pa is not None and pb is not None and pa.is_file() and pb.is_file()
                    and pa.samefile(pb))
        except OSError:
            return False

    def read(self, spec: str) -> tuple[Column, bool] | None:
        """``(values by architecture, is latency)``, or ``None`` if ``spec`` names nothing."""
        if spec not in self._read:
            self._read[spec] = self._read_now(spec)
        return self._read[spec]

    def _read_now(self, spec: str) -> tuple[Column, bool] | None:
        t = self.tables
        if t is not None and spec in t.tasks:
            values = t.get_accuracy(spec, np.arange(len(t)))
        elif t is not None and spec in t.devices:
            values = t.get_latency(spec, np.arange(len(t)))
        elif (path := self.path_of(spec)) is not None:
            rows, got, is_latency = _read_prior_csv(str(path), self.space, self.archs)
            return dict(zip(rows, got.tolist(), strict=True)), is_latency
        else:
            return None
        assert self.archs is not None
        return dict(zip(self.archs, values.tolist(), strict=True)), spec in t.devices

    def own(self, task: str | None, device: str | None) -> dict[str, Column]:
        """The objective's own values, where they can be read without evaluating anything (a
        public column or device, a table file); live and lookup-table latencies cannot."""
        out = {}
        for what, name in (("column", task), ("device", device)):
            got = self.read(name) if name is not None else None
            if got is not None:
                out[f"{what} {name}"] = got[0]
        return out


def _is_copy(column: Column, own: Column) -> int:
    """How many architectures ``column`` shares with ``own`` when it equals it on all of them
    (a copy); 0 otherwise."""
    common = [a for a in column if a in own]
    if len(common) < 2:
        return 0
    for part in (common[:64], common):  # most columns differ within the first few
        x = np.array([column[a] for a in part])
        y = np.array([own[a] for a in part])
        if not np.allclose(x, y, rtol=COPY_RTOL, atol=0.0):
            return 0
    return len(common)


def _build(space_name: str, specs: Sequence[str], tables: BenchmarkTables | None,
           task: str | None, device: str | None, strict: bool
           ) -> tuple[PriorFeatures | None, dict[str, str]]:
    """The prior features of ``specs`` and, when not ``strict``, what was left out and why
    (``strict``: the objective's own column or device, or a copy of it, raises)."""
    if len(set(specs)) != len(specs):
        raise HwnasError(f"--prior names a source twice: {list(specs)}")
    src = _Sources(space_name, tables)
    own = src.own(task, device)
    columns: dict[str, Column] = {}
    log: list[str] = []
    left_out: dict[str, str] = {}
    for spec in specs:
        if not strict:
            # a default prior that cannot be read (a half-written profile, two profiles of one
            # name) is left out with the reason, not the end of the search
            try:
                src.same(spec, device or spec)
                src.read(spec)
            except HwnasError as e:
                left_out[spec] = f"cannot be read: {str(e).splitlines()[0]}"
                continue
        mine = next((what for what, name in (("column", task), ("device", device))
                     if name is not None and src.same(spec, name)), None)
        if mine is not None:
            if strict:
                raise HwnasError(f"--prior {spec}: that is the objective's own {mine}; a prior "
                                 "must be another task, device or predicted table")
            left_out[spec] = f"the objective's own {mine}"
            continue
        got = src.read(spec)
        if got is None:
            t = tables
            valid = (f"a task ({', '.join(t.tasks)}), a device ({', '.join(t.devices)})"
                     if t is not None else "a task or device (needs the public tables)")
            raise HwnasError(f"--prior {spec!r} is not a file; valid: a CSV with arch or index "
                             f"and accuracy or latency_ms, a device folder or profiled device, "
                             f"{valid}")
        column, is_latency = got
        copy = next(((name, n) for name, values in own.items()
                     if (n := _is_copy(column, values))), None)
        if copy is not None:
            why = (f"a copy of the objective's own {copy[0]} (equal values on all {copy[1]} "
                   "architectures they share)")
            if strict:
                raise HwnasError(f"--prior {spec}: {why}; a prior must be another task, device "
                                 "or predicted table")
            left_out[spec] = why
            continue
        if not strict:
            x = np.array(list(column.values()))
            if len(np.unique(x)) < 2:
                left_out[spec] = "fewer than two distinct values"
                continue
            if is_latency and (x <= 0).any():
                left_out[spec] = "non-positive latencies"
                continue
        columns[spec] = column
        if is_latency:
            log.append(spec)
    if not columns:
        return None, left_out
    union = list(dict.fromkeys(a for c in columns.values() for a in c))
    prior = PriorFeatures.from_columns(
        union, {n: np.array([c.get(a, np.nan) for a in union]) for n, c in columns.items()},
        log=log)
    return prior, left_out


def build_prior(space_name: str, specs: Sequence[str], tables: BenchmarkTables | None,
                task: str | None = None, device: str | None = None) -> PriorFeatures:
    """Prior features from ``--prior`` values: public task columns (another task's accuracy),
    public or profiled device names (another device's latency, in log), device folders, or CSV
    files with ``index`` or ``arch`` and ``accuracy`` or ``latency_ms`` (what ``hwnas accuracy
    adapt`` / ``latency adapt`` write).

    Args:
        task, device: the objective's own accuracy column (or file) and device, when accuracy
            and latency are objectives: refused as priors, and so are copies of their values.

    Raises:
        HwnasError: a spec that is none of those, a file without the columns, the objective's own
            column or device or a copy of it (that would leak the answer), a prior named twice.
    """
    prior, _ = _build(space_name, specs, tables, task, device, strict=True)
    if prior is None:
        raise HwnasError("--prior names no source")
    return prior


def default_prior_specs(space_name: str, tables: BenchmarkTables | None,
                        objectives: Sequence[str], task: str | None, device: str | None,
                        dataset: str | None = None, known: Sequence[str] = ("accuracy",
                                                                              "latency")
                        ) -> tuple[list[str], dict[str, str]]:
    """The prior sources :func:`default_prior` considers (see the module's rules), and those
    left out by rule with the reason.

    Args:
        objectives: the problem's objective names.
        task: the accuracy objective's public column or CSV (``None`` for live training).
        device: the latency objective's ``--device``.
        dataset: the dataset live training uses (its public columns are the same task).
        known: the objectives whose source is known (a user's own source is not).
    """
    from ..devices import find_profiled

    specs: list[str] = []
    left_out: dict[str, str] = {}
    for name in ("accuracy", "latency"):
        if name in objectives and name not in known:
            left_out[f"({name})"] = ("its source does not say what it reads: no default priors "
                                     "for it")
    if tables is not None and "accuracy" in objectives and "accuracy" in known:
        own = (dataset if dataset is not None
               else dataset_of(task) if task is not None and task in tables.tasks else None)
        for t in tables.tasks:
            if t == task:
                left_out[t] = "the objective's own column"
            elif own is not None and dataset_of(t) == own:
                left_out[t] = (f"the objective's dataset ({own}) at another fidelity or split: "
                               "not another task")
            else:
                specs.append(t)
    if "latency" in objectives and "latency" in known:
        public = list(tables.devices) if tables is not None else []
        profiled = [p.name for p in find_profiled() if p.space == space_name
                    and p.name not in public]
        for d in dict.fromkeys([*public, *profiled]):
            if d == device:
                left_out[d] = "the objective's own device"
            else:
                specs.append(d)
    return specs, left_out


def default_prior(space_name: str, tables: BenchmarkTables | None, objectives: Sequence[str],
                  task: str | None, device: str | None, dataset: str | None = None,
                  known: Sequence[str] = ("accuracy", "latency")
                  ) -> tuple[PriorFeatures | None, dict[str, Any]]:
    """The priors ``auto`` hands its strategy when none is named (the module's rules; copies of
    the objective's own values left out), and their record.

    Returns:
        ``(prior or None, record)``; the record has ``how`` (``default``), ``used`` (the column
        names) and ``left_out`` (name -> why).
    """
    specs, left_out = default_prior_specs(space_name, tables, objectives, task, device,
                                          dataset, known)
    prior, dropped = (_build(space_name, specs, tables, task, device, strict=False) if specs
                      else (None, {}))
    return prior, {"how": "default", "used": list(prior.names) if prior is not None else [],
                   "left_out": {**left_out, **dropped}}
