"""Grids of search runs: a TOML config, a resumable parallel run, combined tables.

``hwnas compare CONFIG.toml`` expands a config into runs (problem x strategy x seed), runs each
with :func:`hwnas.bench.problem.run_problem` in its own folder (``OUT/runs/<problem>/<strategy>/
<seed>/``, the ``hwnas search`` format) on a local process pool or a Ray cluster, and then writes
``OUT/evaluations.parquet`` (every evaluation of every run) and ``OUT/indicators.parquet`` (per
run and budget checkpoint: hypervolume ratio, front recall, IGD+, constrained regret; see
:mod:`hwnas.bench.scoring`).

Reliability, where optuna's and pymoo's users report trouble:

- a run is finished when its ``run.json`` (written last, atomically) records the same config;
  anything else is rerun from its seed, so a resumed grid equals an uninterrupted one;
- runs never share a file: each writes its own folder, and the combined tables are written by the
  parent once all runs are done (no database for workers to lock);
- a run folder is locked (``fcntl.flock``) while it runs, so two ``compare`` processes on one
  output folder never write the same run: the second skips it and says so.

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
import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.search import HwnasError, list_strategies

from .problem import OBJECTIVES, PRIOR_STRATEGIES, SearchConfig, is_accuracy_file

__all__ = ["CompareConfig", "ConfigError", "RunSpec", "load_config", "run_compare", "run_one",
           "EXECUTORS"]

EXECUTORS = ("process", "ray", "serial")
Progress = Callable[[int, int, str], None]


class ConfigError(HwnasError):
    """A compare config that cannot be run as written; the message says what and where."""


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
    """A parsed config: named problems (as :class:`SearchConfig` templates), strategies, seeds."""

    problems: dict[str, dict[str, Any]]
    strategies: dict[str, dict[str, Any]]
    seeds: list[int]
    budgets: list[int]
    executor: str = "process"
    workers: int = 2
    ray_address: str | None = None
    source: str = ""

    @property
    def budget(self) -> int:
        return max(self.budgets)

    def runs(self) -> list[RunSpec]:
        """Every run of the grid, problems outermost (the order the pool receives them)."""
        out = []
        for pname, p in self.problems.items():
            for label, s in self.strategies.items():
                for seed in self.seeds:
                    cfg = SearchConfig(p["space"], list(p["objectives"]), s["name"], self.budget,
                                       seed, p.get("task"), p.get("device"),
                                       list(p.get("constraints", [])),
                                       strategy_options=dict(s.get("options", {})),
                                       prior=list(s.get("prior", [])))
                    out.append(RunSpec(pname, label, seed, cfg))
        return out


def _need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: missing '{key}'")
    value = table[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: '{key}' must be {names}, got {value!r}")
    return value


def load_config(path: str | os.PathLike[str]) -> CompareConfig:
    """Read and check a compare config (TOML).

    Raises:
        ConfigError: unreadable file, invalid TOML, or a missing/invalid entry (named).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    head = raw.get("compare", {})
    seeds = head.get("seeds", [0, 1, 2])
    budgets = head.get("budgets", [100])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise ConfigError(f"{path}: [compare] seeds must be a non-empty list of integers")
    if not (isinstance(budgets, list) and budgets
            and all(isinstance(b, int) and b >= 1 for b in budgets)):
        raise ConfigError(f"{path}: [compare] budgets must be a non-empty list of integers >= 1")
    executor = head.get("executor", "process")
    if executor not in EXECUTORS:
        raise ConfigError(f"{path}: unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    workers = head.get("workers", os.cpu_count() or 1)
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"{path}: [compare] workers must be an integer >= 1")

    problems: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(raw.get("problems", [])):
        where = f"{path}: problems[{i}]"
        name = _need(p, "name", str, where)
        space = _need(p, "space", str, where)
        objectives = p.get("objectives", ["accuracy", "latency"])
        bad = [o for o in objectives if o not in OBJECTIVES]
        if bad or not objectives:
            raise ConfigError(f"{where}: unknown objectives {bad}; valid: {', '.join(OBJECTIVES)}")
        devices = p.get("devices") or ([p["device"]] if "device" in p else [None])
        if "latency" in objectives and devices == [None]:
            raise ConfigError(f"{where}: the latency objective needs 'device' or 'devices'")
        for dev in devices:
            full = name if len(devices) == 1 else f"{name}-{dev}"
            if full in problems:
                raise ConfigError(f"{where}: problem name {full!r} is used twice")
            problems[full] = {"space": space, "task": p.get("task"), "device": dev,
                              "objectives": list(objectives),
                              "constraints": list(p.get("constraints", []))}
    if not problems:
        raise ConfigError(f"{path}: no [[problems]]")

    strategies: dict[str, dict[str, Any]] = {}
    for i, s in enumerate(raw.get("strategies", [])):
        where = f"{path}: strategies[{i}]"
        name = _need(s, "name", str, where)
        if name not in list_strategies():
            raise ConfigError(f"{where}: unknown strategy {name!r}; valid: "
                              f"{', '.join(list_strategies())}")
        options = s.get("options", {})
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: 'options' must be a table, got {options!r}")
        if "prior" in options:
            raise ConfigError(f"{where}: 'prior' is a key of the strategy, not of its options "
                              "(prior = [\"cifar100_test_200ep\", ...])")
        _check_options(name, options, where,
                       max((len(p["objectives"]) for p in problems.values()), default=2))
        prior = s.get("prior", [])
        if not (isinstance(prior, list) and all(isinstance(x, str) for x in prior)):
            raise ConfigError(f"{where}: 'prior' must be a list of task, device or file names")
        if prior and name not in PRIOR_STRATEGIES:
            raise ConfigError(f"{where}: strategy {name!r} takes no prior; valid: "
                              f"{', '.join(PRIOR_STRATEGIES)}")
        for pname, p in problems.items():
            leak = [x for x in prior if (x == p["task"] and "accuracy" in p["objectives"])
                    or (x == p["device"] and "latency" in p["objectives"])]
            if leak:
                raise ConfigError(f"{where}: prior {leak[0]!r} is an objective of problem "
                                  f"{pname!r}; a prior must be another task, device or table")
        label = s.get("label", name)
        if label in strategies:
            raise ConfigError(f"{where}: strategy label {label!r} is used twice (set 'label')")
        strategies[label] = {"name": name, "options": dict(s.get("options", {})),
                             "prior": list(prior)}
    if not strategies:
        raise ConfigError(f"{path}: no [[strategies]]")
    return CompareConfig(problems, strategies, list(seeds), sorted(set(budgets)), executor,
                         workers, head.get("ray_address"), str(path))


def _check_options(name: str, options: dict[str, Any], where: str, n_objectives: int = 2) -> None:
    """Build the strategy once (for ``n_objectives``, the most any problem of the config has),
    so a misspelt or invalid option fails here, not in a worker."""
    import inspect

    from hwnas.search import create_strategy, get_space
    from hwnas.search.strategies.base import STRATEGIES

    module, cls = STRATEGIES[name].split(":")
    params = inspect.signature(getattr(__import__(module, fromlist=[cls]), cls)).parameters
    valid = [p for p in params if p not in ("space", "n_objectives", "seed")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)} for {name!r}; valid: "
                          f"{', '.join(valid) or 'none'}")
    try:
        create_strategy(name, get_space("nb201"), n_objectives, seed=0, **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: invalid options for {name!r}: {e}") from None


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


def is_finished(folder: Path, config: SearchConfig) -> bool:
    """Whether ``folder`` holds a complete run of exactly ``config``."""
    try:
        record = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return (record.get("config") == json.loads(json.dumps(asdict(config)))
            and (folder / "evaluations.csv").is_file())


def run_one(spec: RunSpec, out: str, data_dir: str | None) -> dict[str, Any]:
    """Run one spec into ``out/spec.folder`` unless it is finished or locked by another process.

    Returns ``{"run": folder, "status": "done" | "skipped" | "locked" | "failed", ...}``; a
    failure is reported (with its message), not raised, so the rest of the grid goes on.
    """
    from hwnas.search.tables.load import load_tables

    from .problem import run_problem

    folder = Path(out) / spec.folder
    if is_finished(folder, spec.config):
        return {"run": spec.folder, "status": "skipped"}
    with _locked(folder) as mine:
        if not mine:
            return {"run": spec.folder, "status": "locked"}
        if is_finished(folder, spec.config):  # finished while we waited for the lock
            return {"run": spec.folder, "status": "skipped"}
        # an unfinished run's files are stale: run.json goes first, so a kill now leaves
        # nothing that reads as finished
        for name in ("run.json", "front.csv", "evaluations.csv"):
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        t0 = time.perf_counter()
        try:
            try:
                tables = load_tables(spec.config.space, data_dir)
            except HwnasError:
                if "accuracy" in spec.config.objectives and not is_accuracy_file(
                        spec.config.task):
                    raise
                tables = None
            record = run_problem(spec.config, tables, folder)
        except HwnasError as e:
            return {"run": spec.folder, "status": "failed", "error": str(e)}
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


def _run_process(specs: list[RunSpec], out: str, data_dir: str | None,
                 progress: Progress | None, workers: int = 2, **_: Any) -> list[dict[str, Any]]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers start clean (no inherited threads or open sessions from the parent)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, s, out, data_dir): s for s in specs}
        results = []
        for fut in as_completed(futures):
            results.append(fut.result())
            if progress:
                progress(len(results), len(specs), futures[fut].folder)
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
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                results.append(ray.get(ref))
                spec = pending.pop(ref)
                if progress:
                    progress(len(results), len(specs), spec.folder)
        return results
    finally:
        if started:
            ray.shutdown()


_EXECUTORS = {"serial": _run_serial, "process": _run_process, "ray": _run_ray}


def run_compare(config: CompareConfig, out: str | os.PathLike[str], data_dir: str | None = None,
                executor: str | None = None, workers: int | None = None,
                progress: Progress | None = None, score: bool = True) -> dict[str, Any]:
    """Run (or resume) every run of ``config`` into ``out``, then write the combined tables.

    Args:
        config: from :func:`load_config`.
        out: output folder; runs go to ``out/runs/...``.
        data_dir: the public tables' folder (default ``HWNAS_DATA``).
        executor, workers: override the config's (``process``, ``ray`` or ``serial``).
        progress: ``progress(done, total, run)`` after every run.
        score: also write ``evaluations.parquet`` and ``indicators.parquet``.

    Returns:
        The manifest written to ``out/compare.json``: runs with their status, timings.
    """
    from hwnas.latency import atomic_write_text

    executor = executor or config.executor
    if executor not in _EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = config.runs()
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
    }
    if score:
        from .scoring import score_compare

        manifest["scoring"] = score_compare(config, out, data_dir)
    atomic_write_text(out / "compare.json", json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
