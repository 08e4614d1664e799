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

from hwnas.search import (
    HwnasError,
    Objective,
    get_space,
)
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
from .core.priors import build_prior, default_prior
from .core.runs import RUN_FILES, check_out_folder, check_run_config
from .sources import ModelStatSource, TableAccuracy

__all__ = ["TableAccuracy", "ModelStatSource", "SearchConfig", "build_objectives", "build_prior",
           "default_prior",
           "is_accuracy_file", "PRIOR_STRATEGIES", "problem_of",
           "OBJECTIVES", "EVALUATE", "run_problem"]

#: strategies whose model takes prior features (``--prior``; ``auto`` hands them to the surrogate)
PRIOR_STRATEGIES = ("surrogate", "auto")


def build_objectives(space_name: str, names: Sequence[str], tables: BenchmarkTables | None,
                     task: str | None, device: str | None, evaluate: str = "table",
                     dataset: str | None = None,
                     train: dict[str, Any] | None = None,
                     live: dict[str, Any] | None = None) -> list[Objective]:
    """Objectives by name; see :func:`hwnas.bench.core.named_objectives`."""
    return named_objectives(space_name, names, tables, task, device, evaluate, dataset, train,
                            live)


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
    no_prior: bool = False  # --no-prior: auto gets no default priors (see default_prior)


def problem_of(config: SearchConfig, tables: BenchmarkTables | None) -> Problem:
    """The :class:`Problem` a search configuration states."""
    objectives = named_objectives(config.space, config.objectives, tables, config.task,
                                  config.device, config.evaluate, config.dataset, config.train,
                                  config.live)
    return Problem(get_space(config.space), objectives, list(config.constraints), tables,
                   setup={"space": config.space, "objectives": list(config.objectives),
                          "task": config.task, "device": config.device,
                          "constraints": list(config.constraints), "evaluate": config.evaluate,
                          "dataset": config.dataset})


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
    if config.prior and config.no_prior:
        raise HwnasError("--prior and --no-prior contradict each other; give one or the other")
    check_out_folder(out, "run.json", (*RUN_FILES, "run.json"))
    check_run_config(out, asdict(config))
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
                          batch=config.batch, strategy_options=options, progress=progress,
                          prior=not config.no_prior)
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
        # what auto picked and why; the priors the strategy used (and those left out)
        **({"strategy_choice": result.config["strategy_choice"]}
           if "strategy_choice" in result.config else {}),
        "priors": result.config["priors"],
        # the share of evaluated architectures the prior knew: near 0, it could not help
        **({"prior_coverage": result.config["priors"]["coverage"]}
           if "coverage" in result.config["priors"] else {}),
        **{k: v for o in problem.objectives if o.source.name.startswith("accuracy:live")
           for k, v in (("training", o.source.summary()),)},
        "seconds": result.timings["total_s"],
        "environment": describe_environment(),
    }
    return write_run(out, {"evaluations.csv": rows.to_csv(index=False),
                           "front.csv": front.to_csv(index=False)}, record)
