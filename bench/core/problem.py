"""A search problem: a space, objectives (a metric source, a direction) and hard constraints.

The directions live on the objectives (:class:`hwnas.search.Objective`) and nowhere else; every
array a :class:`Problem` hands on is minimised (maximised objectives negated once, here).
:meth:`Problem.from_names` builds a problem the way ``hwnas search`` does::

    problem = Problem.from_names("nb201", ["accuracy", "latency"], task="cifar10_test_200ep",
                                 device="pixel2", constraints=["latency<=20"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import (
    Architecture,
    Constraint,
    DataNotFoundError,
    HwnasError,
    Objective,
    Space,
    UnknownNameError,
    get_space,
)
from hwnas.search.tables.load import BenchmarkTables

from ..sources import LiveAccuracyOptions, create_source

__all__ = ["Problem", "OBJECTIVES", "EVALUATE", "DIRECTIONS", "is_accuracy_file",
           "named_objectives", "signs_of"]

#: objectives :meth:`Problem.from_names` knows, with the direction each is given there
DIRECTIONS: dict[str, str] = {"accuracy": "max", "latency": "min", "params": "min",
                              "flops": "min", "memory": "min", "size": "min", "energy": "min"}
OBJECTIVES = tuple(DIRECTIONS)
EVALUATE = ("table", "train")


def signs_of(names: Sequence[str]) -> np.ndarray:
    """+1/-1 per named objective, from the directions :data:`DIRECTIONS` gives them (for records
    that store objectives by name only, such as a compare config's problems).

    Raises:
        UnknownNameError: a name that is not a named objective.
    """
    for n in names:
        if n not in DIRECTIONS:
            raise UnknownNameError("objective", n, OBJECTIVES)
    return np.array([1.0 if DIRECTIONS[n] == "min" else -1.0 for n in names])


def is_accuracy_file(task: str | None) -> bool:
    """Whether ``task`` names an accuracy table on disk (a CSV) rather than a public column."""
    return task is not None and (task.endswith(".csv") or Path(task).is_file())


def named_objectives(space_name: str, names: Sequence[str], tables: BenchmarkTables | None,
                     task: str | None, device: str | None, evaluate: str = "table",
                     dataset: str | None = None, train: Mapping[str, Any] | None = None,
                     live: Mapping[str, Any] | None = None) -> list[Objective]:
    """Objectives by name (``accuracy``, ``latency``, ``params``, ``flops``, ``memory``, ``size``,
    ``energy``), their sources from the registry (:func:`hwnas.bench.create_source`).

    Args:
        evaluate: where accuracy comes from: ``table`` (the public tables' ``task`` column, or a
            CSV when ``task`` is a file) or ``train`` (``accuracy:live`` on ``dataset``).
        train, live: see :meth:`LiveAccuracyOptions.from_dicts`.

    Raises:
        UnknownNameError: an unknown objective, task or device.
        HwnasError: an objective without what it needs, or an objective named twice.
    """
    if len(set(names)) != len(names) or not names:
        raise HwnasError(f"objectives must be distinct and at least one, got {list(names)}")
    if evaluate not in EVALUATE:
        raise UnknownNameError("accuracy evaluation", evaluate, EVALUATE)
    space = get_space(space_name)
    out = []
    for name in names:
        if name not in DIRECTIONS:
            raise UnknownNameError("objective", name, OBJECTIVES)
        if name == "accuracy" and evaluate == "train":
            source = create_source("accuracy:live", space,
                                   LiveAccuracyOptions.from_dicts(dataset, train, live))
        elif name == "accuracy" and is_accuracy_file(task):
            # a predicted table (hwnas accuracy adapt) or any CSV of arch and accuracy
            source = create_source("accuracy:predicted", space, path=task)
        elif name == "accuracy":
            if task is not None and ("/" in task or Path(task).exists()):
                # written as a path but not a CSV file: "unknown task" would not say what is wrong
                raise DataNotFoundError(f"--task {task!r} is not a CSV file of accuracies; valid: "
                                        "an existing CSV (arch or index, accuracy) or a task name")
            if tables is not None and not list(tables.tasks):
                # OFA's public table has latencies only: no --task can help
                raise HwnasError(f"{space_name}'s public tables hold no accuracy; valid: "
                                 "objectives without accuracy (e.g. latency,params), a CSV of "
                                 "accuracies as --task, or --evaluate train")
            if tables is None or task is None:
                raise HwnasError("the accuracy objective needs the public tables and --task")
            source = create_source("accuracy:table", space, task=task, tables=tables)
        elif name == "latency":
            if device is None:
                raise HwnasError("the latency objective needs --device")
            source = create_source("latency", space, device=device, tables=tables)
        else:
            source = create_source(name, space)
        out.append(Objective(name, source, DIRECTIONS[name]))
    return out


def _iterable(x: Any) -> bool:
    try:
        iter(x)
    except TypeError:
        return False
    return True


def _ask_source(objective: Objective, archs: list[Architecture]) -> np.ndarray:
    """The source's values; a user's own source (not hwnas's) that fails or answers in another
    shape is said as :class:`HwnasError` naming it (hwnas's own sources raise their own errors,
    and a bug in one stays a bug)."""
    source = objective.source
    try:
        return source.evaluate(archs)
    except HwnasError:
        raise
    except Exception as e:
        if type(source).__module__.split(".")[0] == "hwnas":
            raise
        raise HwnasError(f"objective {objective.name}: metric source "
                         f"{getattr(source, 'name', type(source).__name__)!r} failed on "
                         f"{len(archs)} architectures: {type(e).__name__}: {e}; valid: one "
                         "finite float (or NaN: not available) per architecture") from e


@dataclass
class Problem:
    """A space, its objectives and hard constraints on their natural values.

    Args:
        space: the search space.
        objectives: each a metric source with its direction.
        constraints: ``Constraint`` objects or their text (``latency<=20``).
        tables: the space's public tables, when there are any (for the ``index`` column of the
            records and the true front).
        name: a label for reports.
        setup: how the problem was stated (what :meth:`from_names` was given), for the record.
    """

    space: Space
    objectives: list[Objective]
    constraints: list[Constraint] = field(default_factory=list)
    tables: BenchmarkTables | None = field(default=None, repr=False)
    name: str = ""
    setup: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.space, str):
            self.space = get_space(self.space)
        if not isinstance(self.space, Space):
            raise HwnasError(f"space must be a Space or a registered name, got "
                             f"{type(self.space).__name__}")
        if isinstance(self.objectives, (str, Objective)) or not _iterable(self.objectives):
            raise HwnasError(f"objectives must be a list of Objective, got "
                             f"{type(self.objectives).__name__}")
        self.objectives = list(self.objectives)
        if not self.objectives:
            raise HwnasError("a problem needs at least one objective")
        for o in self.objectives:
            if not isinstance(o, Objective):
                raise HwnasError(f"objectives must be Objective(name, source, direction), got "
                                 f"{type(o).__name__}")
            if not callable(getattr(o.source, "evaluate", None)):
                raise HwnasError(f"objective {o.name}: the source must be a MetricSource "
                                 f"(hwnas.search.MetricSource or create_source(...)), got "
                                 f"{type(o.source).__name__}")
        if isinstance(self.constraints, (str, Constraint)) or not _iterable(self.constraints):
            raise HwnasError(f"constraints must be a list of Constraint or of text such as "
                             f"'latency<=20', got {self.constraints!r:.60}")
        for c in self.constraints:
            if not isinstance(c, (str, Constraint)):
                raise HwnasError(f"a constraint must be a Constraint or text such as "
                                 f"'latency<=20', got {c!r:.60}")
        names = self.names
        if len(set(names)) != len(names):
            raise HwnasError(f"objective names must be distinct, got {names}")
        self.constraints = [c if isinstance(c, Constraint) else Constraint.parse(c, names)
                            for c in self.constraints]
        for c in self.constraints:
            if c.objective not in names:
                raise HwnasError(f"constraint {c} names {c.objective!r}, not an objective; "
                                 f"valid: {', '.join(names)}")
        self.name = self.name or f"{self.space.name}/{'+'.join(names)}"

    @classmethod
    def from_names(cls, space: str, objectives: Sequence[str] = ("accuracy", "latency"), *,
                   task: str | None = None, device: str | None = None,
                   constraints: Sequence[str] = (), tables: BenchmarkTables | None = None,
                   data: str | None = None, evaluate: str = "table",
                   dataset: str | None = None, train: Mapping[str, Any] | None = None,
                   live: Mapping[str, Any] | None = None) -> Problem:
        """A problem by names, as ``hwnas search`` states it.

        Args:
            space: ``nb201``, ``fbnet``, ``ofa`` or a registered space.
            objectives: of ``accuracy`` (maximised), ``latency``, ``params``, ``flops``,
                ``memory``, ``size``, ``energy``.
            task: the accuracy column (default: CIFAR-10 200-epoch test where the tables have
                it), or a CSV of ``arch`` and ``accuracy``.
            device: what ``--device`` takes (public name, table path, profiled name, ``lut:``,
                ``live:RUNTIME``).
            constraints: e.g. ``["latency<=20"]``.
            tables, data: the public tables, or the folder to load them from (default: the
                bundled copy, or ``HWNAS_DATA``).
            evaluate, dataset, train, live: accuracy by training (see :func:`named_objectives`).

        Raises:
            HwnasError: unknown names, missing tables for a table objective, bad constraints.
        """
        from hwnas.search.tables.load import load_tables

        if isinstance(objectives, str) or not _iterable(objectives):
            raise HwnasError(f"objectives must be a list of names (of {', '.join(OBJECTIVES)}), "
                             f"got {objectives!r:.60}")
        if isinstance(constraints, str) or not _iterable(constraints):
            raise HwnasError(f"constraints must be a list of text such as 'latency<=20', got "
                             f"{constraints!r:.60}")
        names = list(objectives)
        for what, value in (("task", task), ("device", device), ("data", data)):
            if value is not None and not isinstance(value, (str, Path)):
                raise HwnasError(f"{what} must be a name or a path (text), got "
                                 f"{type(value).__name__}")
        task = str(task) if task is not None else None
        device = str(device) if device is not None else None
        if tables is None:
            try:
                tables = load_tables(space, data)
            except DataNotFoundError:
                tables = None  # a space without tables: live or computed objectives only
        table_accuracy = ("accuracy" in names and evaluate == "table"
                          and not is_accuracy_file(task))
        if task is None and table_accuracy and tables is not None and tables.tasks:
            task = ("cifar10_test_200ep" if "cifar10_test_200ep" in tables.tasks
                    else tables.tasks[0])
        objs = named_objectives(space, names, tables, task, device, evaluate, dataset, train,
                                live)
        label = "/".join(str(p) for p in (space, task if "accuracy" in names else None,
                                          device if "latency" in names else None) if p)
        return cls(get_space(space), objs, list(constraints), tables,
                   name=f"{label}/{'+'.join(names)}",
                   setup={"space": space, "objectives": names, "task": task, "device": device,
                          "constraints": list(constraints), "evaluate": evaluate,
                          "dataset": dataset if evaluate == "train" else None})

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def signs(self) -> np.ndarray:
        """+1 per minimised objective, -1 per maximised one (natural * signs = minimised)."""
        return np.array([o.sign for o in self.objectives])

    def evaluate(self, archs: Sequence[Architecture]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Natural values ``(n, m)``, minimised values ``(n, m)`` and total violation ``(n,)``.

        Objectives are asked in order, each only for the architectures every earlier one could
        answer: a network outside a latency table is not trained for its accuracy (it is skipped
        either way).
        """
        archs = list(archs)
        values = np.full((len(archs), self.n_objectives), np.nan)
        todo = np.arange(len(archs))
        for k, o in enumerate(self.objectives):
            if not len(todo):
                break
            values[todo, k] = _ask_source(o, [archs[i] for i in todo])
            todo = todo[np.isfinite(values[todo, k])]
        F = values * self.signs
        violation = np.zeros(len(archs))
        for c in self.constraints:
            violation += c.violation(values[:, self.names.index(c.objective)])
        return values, F, violation

    def max_evaluations(self) -> int | None:
        """The most unique architectures that can be evaluated: the space's size (finite spaces)
        or the smallest coverage of a source (a table's rows); ``None``: unbounded."""
        sizes = [int(o.source.coverage) for o in self.objectives
                 if getattr(o.source, "coverage", None) is not None]
        try:
            size = len(self.space)
        except TypeError:
            size = None
        if size is None and self.space.enumerable:
            size = int(self.space.size)
        if size is not None:
            sizes.append(int(size))
        return min(sizes) if sizes else None

    def index_of(self, arch: Architecture) -> int | None:
        """The architecture's row in the public tables, or ``None``."""
        from hwnas.search import NotInTableError

        if self.tables is None:
            return None
        try:
            return self.tables.index_of(arch)
        except NotInTableError:
            return None

    def describe(self) -> list[dict[str, Any]]:
        """One record per objective: name, source, unit, direction, seconds spent."""
        return [{"name": o.name, "source": o.source.name, "unit": o.source.unit,
                 "direction": o.direction, "seconds": o.source.cost_s}
                for o in self.objectives]

    def close(self) -> None:
        """Release what sources hold (live training's process pool or Ray runtime)."""
        for o in self.objectives:
            close = getattr(o.source, "close", None)
            if callable(close):
                close()
