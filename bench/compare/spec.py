"""The typed grid: :class:`ProblemSpec`, :class:`StrategySpec`, :class:`CompareConfig` and the
:class:`RunSpec` of each problem x strategy x seed.

A grid built in code (dicts) is read with the same checks as a TOML file's
(:func:`hwnas.bench.compare.load_config`), so no caller can start a grid that was not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from hwnas.search import list_strategies

from ..problem import OBJECTIVES, PRIOR_STRATEGIES, SearchConfig
from .values import (
    COMPARE_KEYS,
    EXECUTORS,
    MAX_BUDGET,
    MAX_SEED,
    STRATEGY_KEYS,
    ConfigError,
    Table,
    check_name,
    show,
)

__all__ = ["CompareConfig", "ProblemSpec", "RunSpec", "StrategySpec", "read_strategy"]


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
    def read(cls, table: Table, device: str | None) -> ProblemSpec:
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
    """One strategy of a grid: a registered name, its options, prior sources (``prior``), and
    whether ``auto`` goes without its default priors (``no_prior``: ``prior = false``)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    prior: tuple[str, ...] = ()
    no_prior: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "prior", tuple(self.prior))

    def __hash__(self) -> int:  # options are a dict: hash what identifies the strategy
        return hash((self.name, json.dumps(self.options, sort_keys=True, default=str),
                     self.prior, self.no_prior))


def read_strategy(t: Table) -> StrategySpec:
    """The strategy of one ``[[strategies]]`` table (or a dict given in code): a registered
    name, its options as a table, and a prior only where the strategy has a model for one:
    a list of sources, or (``auto``) ``false`` for none of its default priors.

    Raises:
        ConfigError: an unknown strategy, ``prior`` among the options, a prior it cannot use,
            options for ``auto`` (it picks them).
    """
    name = t.text("name")
    if name not in list_strategies():
        raise ConfigError(f"{t.where}: unknown strategy {name!r}; valid: "
                          f"{', '.join(list_strategies())}")
    options = t.table("options")
    if "prior" in options:
        raise ConfigError(f"{t.where}: 'prior' is a key of the strategy, not of its options "
                          "(prior = [\"cifar100_test_200ep\", ...])")
    if name == "auto" and options:
        raise ConfigError(f"{t.where}: strategy 'auto' picks its strategy and options from the "
                          f"problem; it takes no options (got {', '.join(options)}): name a "
                          "strategy to set them")
    no_prior = isinstance(t.raw.get("prior"), bool) and not t.raw["prior"]
    if isinstance(t.raw.get("prior"), bool):
        if name != "auto":
            raise ConfigError(f"{t.where}: 'prior = {str(t.raw['prior']).lower()}' is for "
                              f"strategy 'auto' (its default priors); {name!r} takes a list "
                              "of sources")
        prior: list[str] = []
    else:
        prior = t.texts("prior", [])
    if prior and name not in PRIOR_STRATEGIES:
        raise ConfigError(f"{t.where}: strategy {name!r} takes no prior; valid: "
                          f"{', '.join(PRIOR_STRATEGIES)}")
    return StrategySpec(name, options, tuple(prior), no_prior)


def _problem_from_dict(raw: Any, name: str, src: str) -> ProblemSpec:
    """A problem given as a dict in code: one device, so ``device``, never ``devices``."""
    t = Table(raw, f"{src}problem {name!r}", ("space", "task", "device", "objectives",
                                              "constraints"))
    return ProblemSpec.read(t, t.text("device", None))


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
                s if isinstance(s, StrategySpec) else read_strategy(
                    Table(s, f"{src}strategy {label!r}", STRATEGY_KEYS))
            for label, s in self.strategies.items()}
        if not self.problems or not self.strategies:
            raise ConfigError(f"{src}a grid needs at least one problem and one strategy")
        head = Table({"seeds": self.seeds, "budgets": self.budgets, "workers": self.workers},
                     f"{src}[compare]", COMPARE_KEYS)
        self.seeds = head.integers("seeds", [], 0, MAX_SEED)
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{src}[compare] seeds names a seed twice: {show(self.seeds)}")
        self.budgets = sorted(set(head.integers("budgets", [], 1, MAX_BUDGET)))
        self.workers = head.integer("workers", 1, 1, 4096)
        if self.executor not in EXECUTORS:
            raise ConfigError(f"{src}unknown executor {show(self.executor)}; valid: "
                              f"{', '.join(EXECUTORS)}")
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise ConfigError(f"{src}[compare] 'ray_address' must be a string, got "
                              f"{show(self.ray_address)}")

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
                                       strategy_options=dict(s.options), prior=list(s.prior),
                                       no_prior=s.no_prior)
                    out.append(RunSpec(pname, label, seed, cfg))
        return out
