"""The whole grid checked against the tables before the first run.

Every problem x strategy is built once, as its runs will build it, so an unknown space, task,
device or constraint, a prior that cannot be read or a budget no run could reach fails before
anything runs or is written, not run by run.
"""

from __future__ import annotations

from typing import Any

from hwnas.search import HwnasError

from ..problem import is_accuracy_file
from .options import check_options
from .spec import CompareConfig
from .values import ConfigError, one_line

__all__ = ["check_grid", "tables_for"]


def tables_for(space: str, objectives: list[str] | tuple[str, ...], task: str | None,
               data_dir: str | None) -> Any:
    """The public tables of ``space``, or ``None`` where a problem can do without them (no
    accuracy from a table column); the one rule for :func:`check_grid` and for running a run.

    Raises:
        HwnasError: no tables, and the problem reads its accuracy from them.
    """
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

    from ..problem import TableAccuracy, build_objectives, build_prior

    src = f"{config.source}: " if config.source else ""
    for pname, p in config.problems.items():
        where = f"{src}problem {pname!r}"
        try:
            space = get_space(p.space)
            tables = tables_for(p.space, p.objectives, p.task, data_dir)
            objectives = build_objectives(p.space, list(p.objectives), tables, p.task, p.device)
            names = [o.name for o in objectives]
            for c in p.constraints:
                Constraint.parse(c, names)
        except (HwnasError, TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {one_line(e)}") from None
        if p.constraints and not str(p.device or "").startswith("live:"):
            # constraints no architecture of the table meets would leave every run of the
            # problem, and its scoring, without a feasible point: refuse before the grid runs
            from ..scoring import reference_front

            spec = {"space": p.space, "objectives": list(p.objectives), "task": p.task,
                    "device": p.device, "constraints": list(p.constraints)}
            try:
                reference_front(spec, data_dir)
            except HwnasError as e:
                if "no feasible architecture" in str(e):
                    raise ConfigError(f"{where}: {one_line(e)}") from None
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
            check_options(s.name, s.options, f"{where}, strategy {label!r}", build=False)
            try:
                options = dict(s.options)
                if s.prior:
                    options["prior"] = build_prior(
                        p.space, list(s.prior), tables,
                        p.task if "accuracy" in p.objectives else None,
                        p.device if "latency" in p.objectives else None)
                create_strategy(s.name, space, len(objectives), seed=0, **options)
                if s.name == "auto" and s.prior:
                    _check_auto_prior(p, space, objectives, tables, config.budget, options)
            except (HwnasError, TypeError, ValueError) as e:
                raise ConfigError(f"{where}, strategy {label!r}: {one_line(e)}") from None


def _check_auto_prior(p: Any, space: Any, objectives: list[Any], tables: Any, budget: int,
                      options: dict[str, Any]) -> None:
    """``auto`` with priors named: the strategy it picks for this problem must take them."""
    from hwnas.search.strategies.auto import AutoStrategy

    from ..core import Problem
    from ..core.auto import auto_options
    from ..core.minimize import _search_space

    problem = Problem(space, objectives, [], tables, setup={"task": p.task, "device": p.device})
    built, _ = auto_options(problem, min(budget, problem.max_evaluations() or budget), options,
                            True)
    choice = AutoStrategy(_search_space(problem), len(objectives), seed=0, **built).choice_
    if not choice.uses_prior:
        raise HwnasError(f"auto picks {choice.strategy} for this problem, which takes no prior "
                         f"({choice.rule}); name strategy 'surrogate' to search with the priors")
