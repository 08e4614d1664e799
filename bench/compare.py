"""Grids of search runs: a TOML config, a resumable parallel run, combined tables.

``hwnas compare CONFIG.toml`` expands a config into runs (problem x strategy x seed), runs each
with :func:`hwnas.bench.problem.run_problem` in its own folder (``OUT/runs/<problem>/<strategy>/
<seed>/``, the ``hwnas search`` format) on a local process pool or a Ray cluster, and then writes
``OUT/evaluations.parquet`` (every evaluation of every run) and ``OUT/indicators.parquet`` (per
run and budget checkpoint: hypervolume ratio, front recall, IGD+, constrained regret; see
:mod:`hwnas.bench.scoring`).

A config is refused, in one line, before anything runs or is written: it is parsed into typed
values (:class:`CompareConfig`, :class:`ProblemSpec`, :class:`StrategySpec`) in one place, where an
unknown key, a value of the wrong type or range, or a name that could not be a folder is an error
(:func:`load_config`); then every problem x strategy of the grid is built once, as its runs would
build it (tables, objectives, constraints, strategy with its options), so an unknown space, task,
device or constraint fails before the first run, not run by run (:func:`check_grid`).

Reliability, where optuna's and pymoo's users report trouble:

- a run is finished when its ``run.json`` (written last, atomically) records the same config and
  its ``evaluations.csv`` is whole (the row count ``run.json`` records, and the checksum where
  ``run.json`` carries one); anything else is rerun from its seed, so a resumed grid equals an
  uninterrupted one;
- runs never share a file: each writes its own folder, and the combined tables are written by the
  parent once all runs are done (no database for workers to lock);
- a run folder is locked (``fcntl.flock``) while it runs, so two ``compare`` processes on one
  output folder never write the same run: the second skips it and says so;
- a failed run does not stop the grid, but :func:`run_compare` raises :class:`RunsFailedError`
  (carrying the manifest) once the others are done and written, so no caller mistakes a grid with
  failed runs for a finished one;
- the process pool stops within about a second on Ctrl-C or ``SIGTERM``, and its workers die with
  their parent (:mod:`hwnas.bench.compare_pool`).

Config::

    [compare]
    seeds = [0, 1, 2]
    budgets = [100, 300]            # checkpoints; every run goes to the largest
    executor = "process"            # or "ray" (address: ray_address, else RAY_ADDRESS)
    workers = 2

    [[problems]]
    name = "nb201"
    space = "nb201"
    task = "cifar10_test_200ep"
    devices = ["pixel2", "raspi4"]  # one problem per device: nb201-pixel2, nb201-raspi4
    objectives = ["accuracy", "latency"]
    constraints = ["latency<=5"]

    [[strategies]]
    name = "nsga2"
    options = { population = 20 }
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hwnas.search import HwnasError, list_strategies

from .problem import OBJECTIVES, PRIOR_STRATEGIES, SearchConfig, is_accuracy_file

__all__ = ["CompareConfig", "ConfigError", "RunsFailedError", "ProblemSpec", "StrategySpec",
           "RunSpec", "load_config", "check_grid", "check_name", "run_compare", "run_one",
           "is_finished", "EXECUTORS", "MAX_BUDGET", "MAX_SEED"]

EXECUTORS = ("process", "ray", "serial")
#: a larger budget is a typo or a runaway job (NAS benchmarks evaluate thousands, not millions)
MAX_BUDGET = 1_000_000
#: the largest seed every random generator the strategies use accepts
MAX_SEED = 2**32 - 1
Progress = Callable[[int, int, str], None]

# keys of each level of a config, in the order the error messages list them
_TOP_KEYS = ("compare", "problems", "strategies")
_COMPARE_KEYS = ("seeds", "budgets", "executor", "workers", "ray_address")
_PROBLEM_KEYS = ("name", "space", "task", "device", "devices", "objectives", "constraints")
_STRATEGY_KEYS = ("name", "label", "options", "prior")


class ConfigError(HwnasError):
    """A compare config that cannot be run as written; the message says what and where."""


class RunsFailedError(HwnasError):
    """Some runs of a grid failed (the others finished and were written and scored).

    Attributes:
        manifest: what :func:`run_compare` wrote to ``compare.json``; ``manifest["failed"]`` lists
            ``{"run": folder, "error": message}`` for every failed run.
    """

    def __init__(self, manifest: dict[str, Any], path: Path):
        self.manifest = manifest
        failed = manifest["failed"]
        first = failed[0]
        super().__init__(f"{len(failed)} of {len(manifest['runs'])} runs failed (first: "
                         f"{first['run']}: {first['error']}); the other runs are written; "
                         f"every failure is in {path}")


# ---------------------------------------------------------------------- names and values
#: what a problem name or strategy label may be: it becomes one folder of ``OUT/runs/``
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_NAME_RULE = ("1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter, digit or _ "
              "(it names a folder)")


def _show(value: Any) -> str:
    """A value as an error message quotes it: repr (so no newline gets in), at most 60 chars."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_name(value: Any, what: str) -> str:
    """``value`` if it is a safe folder name (one path component; see ``_SAFE_NAME``).

    Raises:
        ConfigError: anything else (``../x``, ``a/b``, ``.``, ``''``, a non-string).
    """
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise ConfigError(f"{what} {_show(value)} is not a valid name; valid: {_NAME_RULE}")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Table:
    """One table of a config: refuses unknown keys on sight and reads typed values."""

    def __init__(self, raw: Any, where: str, valid: tuple[str, ...]):
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a table, got {_show(raw)}")
        unknown = [k for k in raw if k not in valid]
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid: "
                              f"{', '.join(valid)}")
        self.raw, self.where = raw, where

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def _bad(self, key: str, kind: str) -> ConfigError:
        return ConfigError(f"{self.where}: '{key}' must be {kind}, got {_show(self.raw[key])}")

    def text(self, key: str, default: Any = ...) -> Any:
        if key not in self.raw:
            if default is ...:
                raise ConfigError(f"{self.where}: missing '{key}'")
            return default
        v = self.raw[key]
        if not isinstance(v, str) or not v:
            raise self._bad(key, "a non-empty string")
        return v

    def integer(self, key: str, default: Any, minimum: int, maximum: int) -> Any:
        if key not in self.raw:
            return default
        v = self.raw[key]
        if not _is_int(v) or not minimum <= v <= maximum:
            raise self._bad(key, f"an integer in {minimum}..{maximum}")
        return v

    def texts(self, key: str, default: list[str]) -> list[str]:
        if key not in self.raw:
            return list(default)
        v = self.raw[key]
        if not (isinstance(v, list) and all(isinstance(x, str) and x for x in v)):
            raise self._bad(key, "a list of non-empty strings")
        if len(set(v)) != len(v):
            raise ConfigError(f"{self.where}: '{key}' names an entry twice: {_show(v)}")
        return list(v)

    def integers(self, key: str, default: list[int], minimum: int, maximum: int) -> list[int]:
        if key not in self.raw:
            return list(default)
        v = self.raw[key]
        if not (isinstance(v, list) and v and all(_is_int(x) and minimum <= x <= maximum
                                                  for x in v)):
            raise self._bad(key, f"a non-empty list of integers in {minimum}..{maximum}")
        return list(v)

    def table(self, key: str) -> dict[str, Any]:
        v = self.raw.get(key, {})
        if not isinstance(v, Mapping):
            raise self._bad(key, "a table (options = { population = 20 })")
        return dict(v)


# ---------------------------------------------------------------------- the typed config
class _Record(Mapping[str, Any]):
    """Read access by key, for the code that takes a problem as a dict (scoring, the report)."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        value = getattr(self, key)
        return list(value) if isinstance(value, tuple) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True, eq=True)
class ProblemSpec(_Record):
    """One problem of a grid: a space, its objectives (by name), where they come from, and the
    constraints on them. Readable as a dict too (``spec["objectives"]``)."""

    space: str
    objectives: tuple[str, ...] = ("accuracy", "latency")
    task: str | None = None
    device: str | None = None
    constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # dict-built specs (CompareConfig(...) from code) give lists; keep them immutable
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "constraints", tuple(self.constraints))

    @classmethod
    def read(cls, table: _Table, device: str | None) -> ProblemSpec:
        """The problem of one ``[[problems]]`` table for one of its devices."""
        where = table.where
        objectives = table.texts("objectives", ["accuracy", "latency"])
        bad = [o for o in objectives if o not in OBJECTIVES]
        if bad or not objectives:
            raise ConfigError(f"{where}: unknown objectives {bad}; valid: {', '.join(OBJECTIVES)}")
        if "latency" in objectives and device is None:
            raise ConfigError(f"{where}: the latency objective needs 'device' or 'devices'")
        return cls(table.text("space"), tuple(objectives), table.text("task", None), device,
                   tuple(table.texts("constraints", [])))


@dataclass(frozen=True, eq=True)
class StrategySpec(_Record):
    """One strategy of a grid: a registered name, its options, and prior sources (``prior``)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    prior: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "prior", tuple(self.prior))

    def __hash__(self) -> int:  # options are a dict: hash what identifies the strategy
        return hash((self.name, json.dumps(self.options, sort_keys=True, default=str),
                     self.prior))


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a problem, a strategy (with options) and a seed."""

    problem: str
    strategy: str
    seed: int
    config: SearchConfig = field(compare=False)

    @property
    def folder(self) -> str:
        return f"runs/{self.problem}/{self.strategy}/{self.seed}"


@dataclass
class CompareConfig:
    """A checked config: named problems, strategies by label, seeds and budget checkpoints.

    Problems and strategies may be given as dicts (as code builds a grid); they are read into
    :class:`ProblemSpec` and :class:`StrategySpec` with the same checks as a TOML file's.

    Raises:
        ConfigError: a name that is not a safe folder name, a seed, budget, executor or worker
            count out of range.
    """

    problems: dict[str, ProblemSpec]
    strategies: dict[str, StrategySpec]
    seeds: list[int]
    budgets: list[int]
    executor: str = "process"
    workers: int = 2
    ray_address: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        src = f"{self.source}: " if self.source else ""
        self.problems = {check_name(n, f"{src}problem name"):
                         p if isinstance(p, ProblemSpec) else _problem_from_dict(p, n, src)
                         for n, p in self.problems.items()}
        self.strategies = {
            check_name(label, f"{src}strategy label"):
                s if isinstance(s, StrategySpec) else _read_strategy(
                    _Table(s, f"{src}strategy {label!r}", _STRATEGY_KEYS))
            for label, s in self.strategies.items()}
        if not self.problems or not self.strategies:
            raise ConfigError(f"{src}a grid needs at least one problem and one strategy")
        head = _Table({"seeds": self.seeds, "budgets": self.budgets, "workers": self.workers},
                      f"{src}[compare]", _COMPARE_KEYS)
        self.seeds = head.integers("seeds", [], 0, MAX_SEED)
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{src}[compare] seeds names a seed twice: {_show(self.seeds)}")
        self.budgets = sorted(set(head.integers("budgets", [], 1, MAX_BUDGET)))
        self.workers = head.integer("workers", 1, 1, 4096)
        if self.executor not in EXECUTORS:
            raise ConfigError(f"{src}unknown executor {_show(self.executor)}; valid: "
                              f"{', '.join(EXECUTORS)}")
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise ConfigError(f"{src}[compare] 'ray_address' must be a string, got "
                              f"{_show(self.ray_address)}")

    @property
    def budget(self) -> int:
        return max(self.budgets)

    def runs(self) -> list[RunSpec]:
        """Every run of the grid, problems outermost (the order the pool receives them)."""
        out = []
        for pname, p in self.problems.items():
            for label, s in self.strategies.items():
                for seed in self.seeds:
                    cfg = SearchConfig(p.space, list(p.objectives), s.name, self.budget,
                                       seed, p.task, p.device, list(p.constraints),
                                       strategy_options=dict(s.options), prior=list(s.prior))
                    out.append(RunSpec(pname, label, seed, cfg))
        return out


def _problem_from_dict(raw: Any, name: str, src: str) -> ProblemSpec:
    """A problem given as a dict in code: one device, so ``device``, never ``devices``."""
    t = _Table(raw, f"{src}problem {name!r}", ("space", "task", "device", "objectives",
                                               "constraints"))
    return ProblemSpec.read(t, t.text("device", None))


def _problem_from_dict(raw: Any, name: str, src: str) -> ProblemSpec:
    """A problem given as a dict in code: one device, so ``device``, never ``devices``."""
    t = _Table(raw, f"{src}problem {name!r}", ("space", "task", "device", "objectives",
                                               "constraints"))
    return ProblemSpec.read(t, t.text("device", None))


def _read_strategy(t: _Table) -> StrategySpec:
    name = t.text("name")
    if name not in list_strategies():
        raise ConfigError(f"{t.where}: unknown strategy {name!r}; valid: "
                          f"{', '.join(list_strategies())}")
    options = t.table("options")
    if "prior" in options:
        raise ConfigError(f"{t.where}: 'prior' is a key of the strategy, not of its options "
                          "(prior = [\"cifar100_test_200ep\", ...])")
    prior = t.texts("prior", [])
    if prior and name not in PRIOR_STRATEGIES:
        raise ConfigError(f"{t.where}: strategy {name!r} takes no prior; valid: "
                          f"{', '.join(PRIOR_STRATEGIES)}")
    return StrategySpec(name, options, tuple(prior))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); a TOML config is UTF-8 "
                          "text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {_one_line(e)}") from None


def load_config(path: str | os.PathLike[str]) -> CompareConfig:
    """Read and check a compare config (TOML); see the module docstring for its form.

    Everything that can be checked without the tables is: unknown keys at every level (listing
    the valid ones), types and ranges, names that become folders, strategies and their options.
    :func:`check_grid` (called by :func:`run_compare`) checks the rest against the tables.

    Raises:
        ConfigError: unreadable or undecodable file, invalid TOML, or a missing/invalid entry
            (one line, naming it and what is valid).
    """
    path = Path(path)
    raw = _read_toml(path)
    _Table(raw, f"{path}", _TOP_KEYS)
    head = _Table(raw.get("compare", {}), f"{path}: [compare]", _COMPARE_KEYS)
    seeds = head.integers("seeds", [0, 1, 2], 0, MAX_SEED)
    budgets = head.integers("budgets", [100], 1, MAX_BUDGET)
    executor = head.text("executor", "process")
    workers = head.integer("workers", os.cpu_count() or 1, 1, 4096)
    ray_address = head.text("ray_address", None)

    for key in ("problems", "strategies"):
        if not isinstance(raw.get(key, []), list):
            raise ConfigError(f"{path}: '{key}' must be an array of tables ([[{key}]]), got "
                              f"{_show(raw[key])}")
    problems: dict[str, ProblemSpec] = {}
    for i, p in enumerate(raw.get("problems", [])):
        t = _Table(p, f"{path}: problems[{i}]", _PROBLEM_KEYS)
        name = check_name(t.text("name"), f"{t.where}: problem name")
        if "device" in t and "devices" in t:
            raise ConfigError(f"{t.where}: give 'device' or 'devices', not both")
        devices: list[str | None] = t.texts("devices", []) or [t.text("device", None)]
        if "devices" in t and not t.raw["devices"]:
            raise ConfigError(f"{t.where}: 'devices' is empty; list at least one device")
        for dev in devices:
            full = name if len(devices) == 1 else f"{name}-{dev}"
            if not _SAFE_NAME.fullmatch(full):
                raise ConfigError(f"{t.where}: problem name {full!r} (name-device) is not a valid "
                                  f"name; valid: {_NAME_RULE}; give a device path a [[problems]] "
                                  "entry of its own (device = ..., name = ...)")
            if full in problems:
                raise ConfigError(f"{t.where}: problem name {full!r} is used twice")
            problems[full] = ProblemSpec.read(t, dev)
    if not problems:
        raise ConfigError(f"{path}: no [[problems]]")

    n_objectives = max(len(p.objectives) for p in problems.values())
    strategies: dict[str, StrategySpec] = {}
    for i, s in enumerate(raw.get("strategies", [])):
        t = _Table(s, f"{path}: strategies[{i}]", _STRATEGY_KEYS)
        spec = _read_strategy(t)
        _check_options(spec.name, spec.options, t.where, n_objectives)
        for pname, p in problems.items():
            leak = [x for x in spec.prior if (x == p.task and "accuracy" in p.objectives)
                    or (x == p.device and "latency" in p.objectives)]
            if leak:
                raise ConfigError(f"{t.where}: prior {leak[0]!r} is an objective of problem "
                                  f"{pname!r}; a prior must be another task, device or table")
        label = check_name(t.text("label", spec.name), f"{t.where}: strategy label")
        if label in strategies:
            raise ConfigError(f"{t.where}: strategy label {label!r} is used twice (set 'label')")
        strategies[label] = spec
    if not strategies:
        raise ConfigError(f"{path}: no [[strategies]]")
    return CompareConfig(problems, strategies, seeds, budgets, executor, workers, ray_address,
                         str(path))


# ---------------------------------------------------------------------- strategy options
#: integer options where 0 is meaningful (every other integer option counts something: >= 1)
_INT_MINIMUM = {"max_redraws": 0}


def _unit_interval(name: str) -> bool:
    """Probabilities and fractions."""
    return name.endswith(("_prob", "_fraction")) or name == "baseline_decay"


def _check_value(option: str, value: Any, param: inspect.Parameter) -> str | None:
    """What is wrong with ``value`` for a strategy parameter, from its annotation and default
    (the strategies take plain numbers and do not all check them); ``None`` if nothing."""
    kinds = {k.strip() for k in str(param.annotation).split("|")} - {"None"}
    if not kinds or param.annotation is inspect.Parameter.empty:
        return None  # not annotated: the constructor decides
    if "bool" in kinds and isinstance(value, bool):
        return None
    if "int" in kinds and _is_int(value):
        low = _INT_MINIMUM.get(option, 1)
        return None if value >= low else f"an integer >= {low}"
    if "float" in kinds and (_is_int(value) or isinstance(value, float)):
        x = float(value)
        inf_ok = isinstance(param.default, float) and math.isinf(param.default)
        if math.isnan(x) or (math.isinf(x) and not inf_ok) or x < 0:
            return "a finite number >= 0" + (" (or inf)" if inf_ok else "")
        if _unit_interval(option) and x > 1:
            return "a number in 0..1"
        return None
    if "str" in kinds and isinstance(value, str):
        return None
    if any(k.startswith(("Sequence[int]", "list[int]", "tuple[int")) for k in kinds) and (
            isinstance(value, list) and all(_is_int(x) and x >= 0 for x in value)):
        return None
    words = {"int": f"an integer >= {_INT_MINIMUM.get(option, 1)}", "float": "a number",
             "str": "a string", "bool": "true or false"}
    wanted = [words.get(k, "a list of integers >= 0" if "[int" in k else k) for k in sorted(kinds)]
    return " or ".join(wanted)


def _strategy_class(name: str) -> type | None:
    from hwnas.search.strategies.base import STRATEGIES

    target = STRATEGIES.get(name)
    if not isinstance(target, str) or ":" not in target:
        return None
    module, cls = target.split(":")
    return getattr(__import__(module, fromlist=[cls]), cls)


def _check_options(name: str, options: dict[str, Any], where: str, n_objectives: int = 2,
                   build: bool = True) -> None:
    """Check each option's name, type and range from the strategy's signature, then (``build``)
    build the strategy once (on NB201, for ``n_objectives``, the most any problem of the config
    has), so a misspelt or invalid option fails here, not in a worker after the grid ran."""
    from hwnas.search import create_strategy, get_space

    cls = _strategy_class(name)
    if cls is not None:
        params = {k: p for k, p in inspect.signature(cls).parameters.items()
                  if k not in ("space", "n_objectives", "seed", "prior")}
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)} for {name!r}; "
                              f"valid: {', '.join(params) or 'none'}")
        for option, value in options.items():
            wrong = _check_value(option, value, params[option])
            if wrong:
                raise ConfigError(f"{where}: option {option!r} of {name!r} must be {wrong}, got "
                                  f"{_show(value)}")
    if not build:
        return
    try:
        create_strategy(name, get_space("nb201"), n_objectives, seed=0, **options)
    except (HwnasError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: invalid options for {name!r}: {_one_line(e)}") from None


# ---------------------------------------------------------------------- the whole grid
def _tables_for(space: str, objectives: list[str] | tuple[str, ...], task: str | None,
                data_dir: str | None) -> Any:
    """The public tables of ``space``, or ``None`` where a problem can do without them (no
    accuracy from a table column); the one rule for :func:`check_grid` and :func:`run_one`."""
    from hwnas.search.tables import load_tables

    try:
        return load_tables(space, data_dir)
    except HwnasError:
        if "accuracy" in objectives and not is_accuracy_file(task):
            raise
        return None


def check_grid(config: CompareConfig, data_dir: str | None = None) -> None:
    """Build every problem x strategy of ``config`` once, as its runs will: the space's tables,
    the objectives (task, device), the constraints, the prior and the strategy with its options;
    refuse budgets no run could reach. Nothing is evaluated or written.

    Raises:
        ConfigError: the first problem or strategy that cannot run, naming it and why.
    """
    from hwnas.search import Constraint, create_strategy, get_space

    from .problem import TableAccuracy, build_objectives, build_prior

    src = f"{config.source}: " if config.source else ""
    for pname, p in config.problems.items():
        where = f"{src}problem {pname!r}"
        try:
            space = get_space(p.space)
            tables = _tables_for(p.space, p.objectives, p.task, data_dir)
            objectives = build_objectives(p.space, list(p.objectives), tables, p.task, p.device)
            names = [o.name for o in objectives]
            for c in p.constraints:
                Constraint.parse(c, names)
        except (HwnasError, TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {_one_line(e)}") from None
        # a run asks for unique architectures: it cannot evaluate more than the space holds, nor
        # more than the public table holds when an objective is read from it
        reach, what = space.size, f"the {space.size} architectures of {p.space}"
        from_table = any(isinstance(o.source, TableAccuracy) for o in objectives) or (
            tables is not None and p.device in tables.devices and "latency" in names)
        if from_table and len(tables) < reach:
            reach, what = len(tables), f"the {len(tables)} rows of the {p.space} table"
        if config.budget > reach:
            raise ConfigError(f"{where}: budget {config.budget} is more than {what}; valid: "
                              f"budgets up to {reach}")
        for label, s in config.strategies.items():
            # a grid built in code has not been through load_config's checks of the options
            _check_options(s.name, s.options, f"{where}, strategy {label!r}", build=False)
            try:
                options = dict(s.options)
                if s.prior:
                    options["prior"] = build_prior(
                        p.space, list(s.prior), tables,
                        p.task if "accuracy" in p.objectives else None,
                        p.device if "latency" in p.objectives else None)
                create_strategy(s.name, space, len(objectives), seed=0, **options)
            except (HwnasError, TypeError, ValueError) as e:
                raise ConfigError(f"{where}, strategy {label!r}: {_one_line(e)}") from None


# ---------------------------------------------------------------------- one run
@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """Hold ``folder/.lock`` exclusively; yields False when another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _run_folder(out: str | os.PathLike[str], spec: RunSpec) -> Path:
    """``out/spec.folder``, checked to resolve inside ``out`` (names are checked when the config
    is read; this guards against a spec built otherwise and against a planted symlink).

    Raises:
        ConfigError: a folder that would be outside ``out``.
    """
    root = Path(out)
    folder = root / spec.folder
    if not folder.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"run folder {spec.folder!r} resolves outside the output folder "
                          f"{root} (to {folder.resolve()}); problem names and strategy labels "
                          f"must be {_NAME_RULE}")
    return folder


def _recorded_sha256(record: dict[str, Any], name: str) -> str | None:
    """The sha256 ``run.json`` records for file ``name``, if it records one: under
    ``checksums`` or ``files``, as ``{name: digest}``, ``{name: {"sha256": digest}}`` or a list
    of ``{"name"|"path"|"file": name, "sha256": digest}``."""
    for key in ("checksums", "files"):
        entry = record.get(key)
        items: list[tuple[Any, Any]] = []
        if isinstance(entry, dict):
            items = list(entry.items())
        elif isinstance(entry, list):
            items = [(e.get("name", e.get("path", e.get("file"))), e) for e in entry
                     if isinstance(e, dict)]
        for fname, value in items:
            if fname != name:
                continue
            digest = value.get("sha256") if isinstance(value, dict) else value
            if isinstance(digest, str):
                return digest.removeprefix("sha256:").lower()
    return None


def is_finished(folder: Path, config: SearchConfig) -> bool:
    """Whether ``folder`` holds a complete run of exactly ``config``: its ``run.json`` records
    this config, and its ``evaluations.csv`` is whole (ends with a newline, parses, has the
    objective columns and as many rows as ``run.json`` records; matches the sha256 that
    ``run.json`` records for it, where it records one, as do the other files it lists)."""
    import pandas as pd

    try:
        record = json.loads((folder / "run.json").read_text())
        if record.get("config") != json.loads(json.dumps(asdict(config))):
            return False
        data = (folder / "evaluations.csv").read_bytes()
        for name in ("evaluations.csv", "front.csv", "run.json"):
            digest = _recorded_sha256(record, name)
            if digest is None or name == "run.json":  # run.json cannot hold its own digest
                continue
            body = data if name == "evaluations.csv" else (folder / name).read_bytes()
            if hashlib.sha256(body).hexdigest() != digest:
                return False
        if not data.endswith(b"\n"):  # cut short: a whole CSV ends its last row
            return False
        from io import BytesIO

        frame = pd.read_csv(BytesIO(data))
        n = record.get("evaluations")
        return (_is_int(n) and len(frame) == n
                and {"arch", *config.objectives} <= set(frame.columns))
    except (OSError, ValueError, TypeError, AttributeError, pd.errors.ParserError):
        return False  # EmptyDataError is a ValueError


def run_one(spec: RunSpec, out: str, data_dir: str | None) -> dict[str, Any]:
    """Run one spec into ``out/spec.folder`` unless it is finished or locked by another process.

    Returns ``{"run": folder, "status": "done" | "skipped" | "locked" | "failed", ...}``; a
    failure is reported (with its message, one line), not raised, so the rest of the grid goes
    on.

    Raises:
        ConfigError: a run folder outside ``out`` (nothing is written or deleted then).
    """
    from .problem import run_problem

    folder = _run_folder(out, spec)
    if is_finished(folder, spec.config):
        return {"run": spec.folder, "status": "skipped"}
    with _locked(folder) as mine:
        if not mine:
            return {"run": spec.folder, "status": "locked"}
        if is_finished(folder, spec.config):  # finished while we waited for the lock
            return {"run": spec.folder, "status": "skipped"}
        t0 = time.perf_counter()
        try:
            # an unfinished run's files are stale: run.json goes first, so a kill now leaves
            # nothing that reads as finished
            for name in ("run.json", "front.csv", "evaluations.csv"):
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
            tables = _tables_for(spec.config.space, spec.config.objectives, spec.config.task,
                                 data_dir)
            record = run_problem(spec.config, tables, folder)
        except HwnasError as e:
            return {"run": spec.folder, "status": "failed", "error": _one_line(e)}
        except OSError as e:  # a folder that cannot be written: a full disk, a file in the way
            where = e.filename or folder
            return {"run": spec.folder, "status": "failed",
                    "error": f"cannot write {where}: {e.strerror or _one_line(e)}"}
        except Exception as e:  # a bug must not take the rest of the grid with it
            return {"run": spec.folder, "status": "failed",
                    "error": f"internal error {type(e).__name__}: {_one_line(e)} (please report "
                             "it with the config)"}
        return {"run": spec.folder, "status": "done", "evaluations": record["evaluations"],
                "seconds": round(time.perf_counter() - t0, 3)}


# ---------------------------------------------------------------------- executors
def _run_serial(specs: list[RunSpec], out: str, data_dir: str | None,
                progress: Progress | None, **_: Any) -> list[dict[str, Any]]:
    results = []
    for i, spec in enumerate(specs):
        results.append(run_one(spec, out, data_dir))
        if progress:
            progress(i + 1, len(specs), spec.folder)
    return results


def _crashed(spec: RunSpec, error: BaseException) -> dict[str, Any]:
    from concurrent.futures.process import BrokenProcessPool

    why = ("its worker process died (killed, or out of memory)"
           if isinstance(error, BrokenProcessPool) else
           f"internal error {type(error).__name__}: {_one_line(error)}")
    return {"run": spec.folder, "status": "failed", "error": why}


def _run_process(specs: list[RunSpec], out: str, data_dir: str | None,
                 progress: Progress | None, workers: int = 2, **_: Any) -> list[dict[str, Any]]:
    from .compare_pool import guarded_pool, imap_unordered

    results = []
    with guarded_pool(max(1, min(workers, len(specs)))) as pool:
        for spec, result in imap_unordered(pool, run_one, specs, out, data_dir,
                                           on_crash=_crashed):
            results.append(result)
            if progress:
                progress(len(results), len(specs), spec.folder)
    return results


def _run_ray(specs: list[RunSpec], out: str, data_dir: str | None,
             progress: Progress | None, address: str | None = None,
             **_: Any) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor 'ray' needs Ray: pip install 'hwnas[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False)
        except ConnectionError as e:
            raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {e}") from None
    try:
        remote = ray.remote(num_cpus=1)(run_one)
        pending = {remote.remote(s, out, data_dir): s for s in specs}
        results = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        results.append(ray.get(ref))
                    except Exception as e:  # a task whose worker died, or that raised
                        results.append(_crashed(spec, e))
                    if progress:
                        progress(len(results), len(specs), spec.folder)
        except BaseException:  # Ctrl-C: what is queued or running on the cluster is ours
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return results
    finally:
        if started:
            ray.shutdown()


_EXECUTORS = {"serial": _run_serial, "process": _run_process, "ray": _run_ray}


def run_compare(config: CompareConfig, out: str | os.PathLike[str], data_dir: str | None = None,
                executor: str | None = None, workers: int | None = None,
                progress: Progress | None = None, score: bool = True) -> dict[str, Any]:
    """Check the whole grid, then run (or resume) every run of ``config`` into ``out`` and write
    the combined tables.

    Args:
        config: from :func:`load_config`.
        out: output folder; runs go to ``out/runs/...``.
        data_dir: the public tables' folder (default ``HWNAS_DATA``, else the bundled copy).
        executor, workers: override the config's (``process``, ``ray`` or ``serial``).
        progress: ``progress(done, total, run)`` after every run.
        score: also write ``evaluations.parquet`` and ``indicators.parquet``.

    Returns:
        The manifest written to ``out/compare.json``: runs with their status and timings,
        ``counts`` per status, ``failed`` (empty here: see Raises).

    Raises:
        ConfigError: a grid that cannot run (:func:`check_grid`); nothing is run or written.
        RunsFailedError: some runs failed; the others ran, and ``compare.json`` and the scores
            of the finished runs are written; ``error.manifest`` is the manifest.
    """
    from hwnas.latency import atomic_write_text

    executor = executor or config.executor
    if executor not in _EXECUTORS:
        raise ConfigError(f"unknown executor {_show(executor)}; valid: {', '.join(EXECUTORS)}")
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1, got {_show(workers)}")
    check_grid(config, data_dir)
    out = Path(out)
    specs = config.runs()
    for spec in specs:
        _run_folder(out, spec)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = _EXECUTORS[executor](specs, str(out), data_dir, progress,
                                   workers=workers or config.workers, address=config.ray_address)
    order = {s.folder: i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[r["run"]])
    manifest = {
        "config": asdict(config), "executor": executor,
        "runs": results, "seconds": round(time.perf_counter() - t0, 3),
        "counts": {k: sum(r["status"] == k for r in results)
                   for k in ("done", "skipped", "locked", "failed")},
        "failed": [{"run": r["run"], "error": r.get("error", "")} for r in results
                   if r["status"] == "failed"],
    }
    if score:
        from .scoring import score_compare

        try:
            manifest["scoring"] = score_compare(config, out, data_dir)
        except HwnasError as e:
            if not manifest["failed"]:
                raise
            # the failed runs are the news; scoring what is left can fail because of them
            manifest["scoring_error"] = _one_line(e)
    atomic_write_text(out / "compare.json", json.dumps(manifest, indent=2, default=str) + "\n")
    if manifest["failed"]:
        raise RunsFailedError(manifest, out / "compare.json")
    return manifest
