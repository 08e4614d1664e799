"""Multi-objective search on NB201 against pymoo's NSGA-II and random search, per HELP test device.

Problems: NB201, CIFAR-10 200-epoch test accuracy (maximised) x latency (minimised) on each device,
and optionally x parameter count (minimised; exact, from ``fast_stats``). Every hwnas strategy that
imports runs side by side with pymoo's NSGA-II (integer genes, ``IntegerRandomSampling``, SBX + PM
with ``RoundingRepair``, population 20, duplicates eliminated, driven by ask/tell behind a cache so
the budget counts unique evaluations; see :func:`hwnas.bench.harness.run_pymoo_nsga2`). One run of
the largest budget per (problem, strategy, seed); smaller budgets are its first unique evaluations.

Indicators (normalised by the true front's ideal and nadir; true front = all 15625 architectures):
front recall (fraction of the true Pareto set evaluated, by index), hypervolume ratio (reference
point 1.1), IGD+. Overhead: search wall time minus table-lookup time, per unique evaluation (runs
share the machine with each other and with whatever else runs on it: a rough figure).

With ``--strategies ...,surrogate+prior`` the surrogate also runs with prior knowledge of every
architecture (:class:`hwnas.search.PriorFeatures`): the same architectures' accuracies on other
tasks (``--prior-tasks``; CIFAR-100 and ImageNet16-120, never a CIFAR-10 column) and latencies on
HELP's nb201 meta-training devices (``--prior-devices``; never the problem's own device, so the
variant runs on those devices too). It answers another
question than the like-for-like rows -- what transfer from public tables adds -- and its rows are
marked so: pymoo and the other strategies see only the search's own evaluations.

``surrogate+defaultprior`` is the surrogate with the default prior set, what ``--strategy auto``
runs on NB201 (:func:`default_priors`: every other dataset's accuracy columns and every other
device's latency, built per problem device), with the options ``auto`` gives it
(:func:`auto_surrogate_options`: accuracy modelled on its nearest prior column).

Usage:
    python bench/scripts/search_benchmark.py --seeds 10 --budgets 300,1000 --objectives both \\
        --out results/benchmarks/search.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.bench import load_tables
from hwnas.bench.harness import (
    PYMOO_NSGA2,
    FrontScorer,
    TabularProblem,
    nb201_problem,
    run_any,
    score_checkpoints,
)
from hwnas.bench.problem import build_prior
from hwnas.latency import atomic_write_text
from hwnas.search import STRATEGIES, create_strategy, get_space
from hwnas.search.strategies.auto import AutoStrategy

__all__ = ["auto_surrogate_options", "default_priors", "available_strategies", "run_jobs",
           "run_logged", "sort_and_report",
           "group_runs", "summarise", "markdown_table", "goal_check", "git_commit", "main"]

REPO = Path(__file__).resolve().parents[2]
HELP_TEST_DEVICES = ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss")
ALL_STRATEGIES = ("random", "evolution", "nsga2", "local", "reinforce", "guided", "surrogate")
TASK = "cifar10_test_200ep"
#: the variant of the surrogate that is given prior features (not a registered strategy name)
PRIOR_VARIANT = "surrogate+prior"
#: the surrogate whose accuracy model averages the ridge with a forest (like-for-like)
FOREST_VARIANT = "surrogate+forest"
#: the surrogate with the default prior set (what ``--strategy auto`` runs on NB201): every other
#: dataset's accuracy columns and every other device's latency column (:func:`default_priors`)
DEFAULT_PRIOR_VARIANT = "surrogate+defaultprior"
#: HELP's nb201 validation-side devices, on which the surrogate's settings are chosen
VALIDATION_DEVICES = ("1080ti_1", "silver_4114", "samsung_a50", "pixel3")
PRIOR_TASKS = "cifar100_test_200ep,cifar100_val_12ep,imagenet16_val_12ep"
#: HELP's nb201 meta-training devices (none of them a test device)
PRIOR_DEVICES = ("1080ti_1,1080ti_32,1080ti_256,silver_4114,silver_4210r,samsung_a50,pixel3,"
                 "essential_ph_1,samsung_s7")
#: the issue's goal for hwnas's best strategy: median recall at these budgets ...
RECALL_GOAL = {300: 0.60, 1000: 0.95}
#: ... and, from the reference measurement, pymoo's median recall (random's in brackets)
PYMOO_REFERENCE = {300: (0.33, 0.00), 1000: (0.85, 0.08)}

# filled in the parent before the workers fork, so each worker shares them copy-on-write
_PROBLEMS: dict[str, TabularProblem] = {}
_SCORERS: dict[str, FrontScorer] = {}
_PYMOO_KWARGS: dict[str, float] = {}
_PRIOR: dict[str, Any] = {}


def default_priors(tasks: list[str], devices: list[str], task: str, device: str
                   ) -> list[str]:
    """The default prior set of a search for ``task`` on ``device``: the accuracy columns of every
    *other* dataset (a column's dataset is its name before the first ``_``; for
    ``cifar10_test_200ep`` no ``cifar10_*`` column) and the latency column of every other device
    (other batch sizes of the same hardware included)."""
    dataset = task.split("_")[0]
    return ([t for t in tasks if t.split("_")[0] != dataset]
            + [d for d in devices if d != device])


def auto_surrogate_options(problem: Any, budget: int, prior: Any) -> dict[str, Any]:
    """The surrogate's options that ``auto`` picks for ``problem`` with ``prior`` (the default
    variant runs what a user gets, e.g. accuracy modelled on its nearest prior column)."""
    choice = AutoStrategy(problem.space, problem.n_objectives, 0, budget=budget,
                          objectives=tuple(problem.names), prior=prior).choice_
    if choice.strategy != "surrogate" or not choice.uses_prior:
        raise RuntimeError(f"auto picks {choice.strategy} here ({choice.rule}), not the "
                           "surrogate with priors")
    return dict(choice.options)


def _job(args: tuple[str, str, int, list[int]]) -> dict[str, Any]:
    key, strategy, seed, budgets = args
    problem = _PROBLEMS[key]
    try:
        kwargs: dict[str, Any] = _PYMOO_KWARGS if strategy == PYMOO_NSGA2 else {}
        name = strategy
        if strategy in (PRIOR_VARIANT, DEFAULT_PRIOR_VARIANT):
            name, kwargs = "surrogate", {"prior": _PRIOR[(strategy, problem.name)]}
        if strategy == DEFAULT_PRIOR_VARIANT:  # and the options auto picks with them
            kwargs.update(auto_surrogate_options(problem, max(budgets), kwargs["prior"]))
        elif strategy == FOREST_VARIANT:  # accuracy is the first objective of every problem here
            name, kwargs = "surrogate", {"forest": (0,)}
        trace = run_any(problem, name, seed, max(budgets), **kwargs)
        scores = score_checkpoints(_SCORERS[key], trace, budgets)
    except Exception as e:  # a strategy still being written must not sink the whole benchmark
        return {"problem": key, "strategy": strategy, "seed": seed,
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=4)}
    return {"problem": key, "strategy": strategy, "seed": seed,
            "evaluations": trace.evaluations, "asks": trace.asks, "skipped": trace.skipped,
            "wall_s": trace.wall_s, "lookup_s": trace.lookup_s,
            "overhead_ms_per_eval": trace.overhead_ms_per_eval,
            "at": {str(b): v for b, v in scores.items()}}


def _progress(runs: list[dict], r: dict, n: int, t0: float, verbose: bool,
              partial: Path) -> None:
    """Collect a finished run; every 10 runs, save all so far to ``partial`` (a long benchmark
    that is stopped keeps what it measured)."""
    runs.append(r)
    if verbose:
        what = r.get("error") or f"{r['wall_s']:.1f}s"
        print(f"  {r['problem']} {r['strategy']} seed {r['seed']}: {what}", file=sys.stderr)
    if len(runs) % 10 == 0:
        atomic_write_text(partial, "".join(json.dumps(x, default=float) + "\n" for x in runs))
    if len(runs) % 50 == 0 or len(runs) == n:
        print(f"  {len(runs)}/{n} runs, {time.perf_counter() - t0:.0f}s", file=sys.stderr)


def available_strategies(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The strategies that construct, and why the others do not."""
    space = get_space("nb201")
    ok, missing = [], {}
    for name in names:
        if name in (PRIOR_VARIANT, FOREST_VARIANT, DEFAULT_PRIOR_VARIANT):
            ok.append(name)
            continue
        if name == PYMOO_NSGA2:
            try:
                import pymoo  # noqa: F401
                ok.append(name)
            except ImportError as e:
                missing[name] = f"ImportError: {e}"
            continue
        try:
            create_strategy(name, space, 2, seed=0)
            ok.append(name)
        except Exception as e:
            missing[name] = f"{type(e).__name__}: {e}"
    return ok, missing


def _median(runs: list[dict], *path: str) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for p in path:
            v = v[p]
        vals.append(float(v))
    return float(np.median(vals)) if vals else float("nan")


def run_jobs(job: Any, jobs: list, n_jobs: int, collect: Any) -> None:
    """``collect(job(j))`` for every ``j``: on a forked pool of ``n_jobs`` processes (results in
    the order they finish), or in this process when ``n_jobs`` is 1."""
    if n_jobs > 1:
        with mp.get_context("fork").Pool(n_jobs) as pool:
            for r in pool.imap_unordered(job, jobs, chunksize=1):
                collect(r)
    else:
        for j in jobs:
            collect(job(j))


def run_logged(job: Any, jobs: list, n_jobs: int, partial: Path, every: int = 10) -> list[dict]:
    """:func:`run_jobs`, keeping every finished run: each ``every`` runs (and at the end) all so
    far are written to ``partial`` (JSON lines, atomically) and progress goes to stderr."""
    runs: list[dict] = []
    t0 = time.perf_counter()

    def collect(r: dict) -> None:
        runs.append(r)
        if len(runs) % every == 0 or len(runs) == len(jobs):
            atomic_write_text(partial, "".join(json.dumps(x, default=float) + "\n"
                                               for x in runs))
            print(f"  {len(runs)}/{len(jobs)} runs, {time.perf_counter() - t0:.0f}s",
                  file=sys.stderr)

    run_jobs(job, jobs, n_jobs, collect)
    return runs


def sort_and_report(runs: list[dict]) -> list[dict]:
    """Sort runs by (problem, strategy, seed) in place, say the first five that failed, and
    return the failed ones."""
    runs.sort(key=lambda r: (r["problem"], r["strategy"], r["seed"]))
    errors = [r for r in runs if "error" in r]
    for r in errors[:5]:
        print(f"run failed: {r['problem']} {r['strategy']} seed {r['seed']}: {r['error']}",
              file=sys.stderr)
    return errors


def group_runs(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """The runs that did not fail, by (problem, strategy)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if "error" not in r:
            groups.setdefault((r["problem"], r["strategy"]), []).append(r)
    return groups


def summarise(runs: list[dict], budgets: list[int]) -> dict[str, dict[str, dict[str, Any]]]:
    """problem -> strategy -> medians (and quartiles of recall) over seeds."""
    groups = group_runs(runs)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (key, strategy), rs in groups.items():
        s: dict[str, Any] = {"seeds": len(rs),
                             "overhead_ms_per_eval": _median(rs, "overhead_ms_per_eval"),
                             "wall_ms_per_eval": float(np.median(
                                 [1e3 * r["wall_s"] / max(1, r["evaluations"]) for r in rs]))}
        for b in budgets:
            for ind in ("recall", "hv_ratio", "igd_plus", "front_size"):
                s[f"{ind}@{b}"] = _median(rs, "at", str(b), ind)
            rec = [r["at"][str(b)]["recall"] for r in rs]
            s[f"recall_q25@{b}"], s[f"recall_q75@{b}"] = (float(np.percentile(rec, 25)),
                                                          float(np.percentile(rec, 75)))
            s[f"recall_min@{b}"] = float(np.min(rec))
        out.setdefault(key, {})[strategy] = s
    return out


def markdown_table(summary: dict, problems: dict[str, dict[str, str]], strategies: list[str],
                   budgets: list[int], objectives: str) -> str:
    """Rows device x strategy; median over seeds of recall, HV ratio and IGD+, and ms/eval."""
    top = max(budgets)
    head = ([f"recall@{b}" for b in budgets] + [f"HVratio@{b}" for b in budgets]
            + [f"IGD+@{top}", "ms/eval"])
    lines = ["| device | strategy | " + " | ".join(head) + " |",
             "|---|---|" + "---:|" * len(head)]
    for key, meta in problems.items():
        if meta["objectives"] != objectives:
            continue
        for strategy in strategies:
            s = summary.get(key, {}).get(strategy)
            if s is None:
                lines.append(f"| {meta['device']} | {strategy} | " + " | ".join(["-"] * len(head))
                             + " |")
                continue
            cells = ([f"{s[f'recall@{b}']:.2f}" for b in budgets]
                     + [f"{s[f'hv_ratio@{b}']:.4f}" for b in budgets]
                     + [f"{s[f'igd_plus@{top}']:.4f}", f"{s['overhead_ms_per_eval']:.2f}"])
            lines.append(f"| {meta['device']} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goal_check(summary: dict, problems: dict[str, dict[str, str]], strategies: list[str],
               budgets: list[int], objectives: str) -> tuple[str, dict[str, dict[str, bool]]]:
    """Per hwnas strategy and device: median recall >= the goal at each goal budget, and median
    HV ratio ahead of pymoo's at every budget. A Markdown table: ``ok`` or the criteria missed."""
    goals = {b: g for b, g in RECALL_GOAL.items() if b in budgets}
    keys = [k for k, m in problems.items() if m["objectives"] == objectives]
    result: dict[str, dict[str, bool]] = {}
    lines = ["| strategy | " + " | ".join(problems[k]["device"] for k in keys) + " | met |",
             "|---|" + "---|" * (len(keys) + 1)]
    for strategy in strategies:
        if strategy == PYMOO_NSGA2:
            continue
        cells = []
        for key in keys:
            s, ref = summary.get(key, {}).get(strategy), summary.get(key, {}).get(PYMOO_NSGA2)
            if s is None:
                cells.append("-")
                continue
            why = [f"R{b}" for b, g in goals.items() if s[f"recall@{b}"] < g]
            if ref is not None:
                why += [f"HV{b}" for b in budgets if s[f"hv_ratio@{b}"] <= ref[f"hv_ratio@{b}"]]
            result.setdefault(strategy, {})[problems[key]["device"]] = not why
            cells.append("ok" if not why else " ".join(why))
        met = sum(result.get(strategy, {}).values())
        lines.append(f"| {strategy} | " + " | ".join(cells) + f" | {met}/{len(keys)} |")
    recall = (f"R<b>: median recall@b below {', '.join(f'{g} @{b}' for b, g in goals.items())}; "
              if goals else "")
    legend = f"(cells: criteria missed; {recall}HV<b>: median HV ratio@b not above {PYMOO_NSGA2}'s)"
    return "\n".join(lines) + "\n" + legend, result


def git_commit(short: bool = False) -> str | None:
    """The checkout's HEAD commit (``short``: abbreviated), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", *(["--short"] if short else []), "HEAD"],
                             cwd=REPO, text=True, capture_output=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import pymoo
        out["pymoo"] = pymoo.__version__
    except ImportError:
        pass
    for name, target in STRATEGIES.items():  # the sources actually run (may be uncommitted)
        module = sys.modules.get(target.split(":")[0])
        if module is not None and getattr(module, "__file__", None):
            digest = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:12]
            out[f"sha256:{name}"] = digest
    commit = git_commit()
    if commit is None:
        return out
    out["git_commit"] = commit
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "search", "bench"],
                               cwd=REPO, text=True, capture_output=True, check=True).stdout
        out["uncommitted"] = " ".join(line[3:] for line in dirty.splitlines())
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None,
                       help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    ap.add_argument("--devices", nargs="+", default=list(HELP_TEST_DEVICES),
                    help="latency columns (space- or comma-separated)")
    ap.add_argument("--strategies", default=",".join(ALL_STRATEGIES),
                    help=f"comma-separated hwnas strategies; {PYMOO_NSGA2} always runs too")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="300,1000")
    ap.add_argument("--objectives", choices=("2", "3", "both"), default="2")
    ap.add_argument("--strategies-3obj", default=None,
                    help="comma-separated hwnas strategies of the 3-objective problem (default: "
                         f"--strategies; {PYMOO_NSGA2} always runs too)")
    ap.add_argument("--devices-3obj", default=None,
                    help="devices of the 3-objective problem (default: --devices)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes over (problem, strategy, seed) runs")
    ap.add_argument("--pymoo-eta", default="3,3",
                    help="SBX and PM distribution indices of pymoo's NSGA-II (pymoo's integer "
                         "recipe: 3,3; pymoo's defaults: 15,20)")
    ap.add_argument("--prior-tasks", default=PRIOR_TASKS,
                    help=f"accuracy columns given to {PRIOR_VARIANT} (never the objective's)")
    ap.add_argument("--prior-devices", default=PRIOR_DEVICES,
                    help=f"latency columns given to {PRIOR_VARIANT} (never the problem's device)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the finished runs of OUT.partial.jsonl (a stopped benchmark) and "
                         "run only the missing ones")
    ap.add_argument("--verbose", action="store_true", help="a line per finished run")
    ap.add_argument("--out", default="results/benchmarks/search.json")
    args = ap.parse_args()

    t_start = time.perf_counter()
    eta_c, eta_m = (float(x) for x in args.pymoo_eta.split(","))
    _PYMOO_KWARGS.update(eta_crossover=eta_c, eta_mutation=eta_m)
    devices = [d for item in args.devices for d in item.split(",") if d]
    budgets = sorted({int(b) for b in args.budgets.split(",") if b})
    requested = [s for s in args.strategies.split(",") if s and s != PYMOO_NSGA2]
    strategies, missing = available_strategies(requested)
    strategies.append(PYMOO_NSGA2)
    for name, why in missing.items():
        print(f"skipping strategy {name}: {why}", file=sys.stderr)

    tables = load_tables("nb201", args.data)
    for d in devices:
        tables.check_device(d)
    prior_record = None
    if PRIOR_VARIANT in strategies:
        p_tasks = [c for c in args.prior_tasks.split(",") if c]
        p_devices = [c for c in args.prior_devices.split(",") if c]
        if TASK in p_tasks:
            sys.exit(f"search_benchmark: the prior task {TASK} is the benchmark's objective")
        prior_record = {"tasks": p_tasks, "devices": p_devices}

    obj_sets = {"2": ["2"], "3": ["3"], "both": ["2", "3"]}[args.objectives]
    devices3 = ([d for d in args.devices_3obj.split(",") if d] if args.devices_3obj
                else devices)
    params = None
    if "3" in obj_sets:
        t0 = time.perf_counter()
        params = np.array([s.params for s in tables.space.fast_stats(tables.archs)], dtype=float)
        print(f"parameter counts of {len(params)} architectures in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    problems: dict[str, dict[str, Any]] = {}
    for objs in obj_sets:
        for d in devices if objs == "2" else devices3:
            p = nb201_problem(tables, d, TASK, params if objs == "3" else None)
            _PROBLEMS[p.name] = p
            _SCORERS[p.name] = FrontScorer(p)
            problems[p.name] = {"device": d, "objectives": objs,
                                "true_front_size": int(len(p.front)),
                                "true_front": p.front.tolist(),
                                "ideal": _SCORERS[p.name].hv_ratio.ideal.tolist(),
                                "nadir": _SCORERS[p.name].hv_ratio.nadir.tolist()}

    if prior_record is not None:
        # a device is never its own prior: a problem on one of the prior devices gets the others
        by_device: dict[str, Any] = {}
        for key, meta in problems.items():
            d = meta["device"]
            if d not in by_device:
                by_device[d] = build_prior("nb201", prior_record["tasks"] + [
                    x for x in prior_record["devices"] if x != d], tables)
            _PRIOR[(PRIOR_VARIANT, key)] = by_device[d]
    default_record: dict[str, list[str]] | None = None
    if DEFAULT_PRIOR_VARIANT in strategies:
        default_record, by_device = {}, {}
        for key, meta in problems.items():
            d = meta["device"]
            if d not in by_device:
                default_record[d] = default_priors(list(tables.tasks), list(tables.devices),
                                                   TASK, d)
                by_device[d] = build_prior("nb201", default_record[d], tables, task=TASK,
                                           device=d)
            _PRIOR[(DEFAULT_PRIOR_VARIANT, key)] = by_device[d]
    strategies3 = strategies if args.strategies_3obj is None else [
        s for s in strategies if s in args.strategies_3obj.split(",") or s == PYMOO_NSGA2]
    jobs = [(key, s, seed, budgets) for seed in range(args.seeds) for key in problems
            for s in (strategies3 if problems[key]["objectives"] == "3" else strategies)]
    print(f"{len(jobs)} runs ({len(problems)} problems x {len(strategies)} strategies x "
          f"{args.seeds} seeds, {max(budgets)} unique evaluations each) on {args.jobs} "
          "processes", file=sys.stderr)
    runs: list[dict] = []
    partial = Path(f"{args.out}.partial.jsonl")
    if args.resume and partial.is_file():
        # runs a stopped benchmark finished (same problems, strategies, seeds and budgets) are
        # kept; runs of other seeds, failed runs and other budgets are not
        wanted = {(k, st, sd) for k, st, sd, _ in jobs}
        for line in partial.read_text().splitlines():
            r = json.loads(line)
            key = (r.get("problem"), r.get("strategy"), r.get("seed"))
            if (key in wanted and "error" not in r
                    and all(str(b) in r.get("at", {}) for b in budgets)):
                runs.append(r)
                wanted.discard(key)
        jobs = [j for j in jobs if (j[0], j[1], j[2]) in wanted]
        print(f"resuming: {len(runs)} runs from {partial}, {len(jobs)} to run", file=sys.stderr)
    n_runs = len(runs) + len(jobs)
    t_runs = time.perf_counter()
    run_jobs(_job, jobs, args.jobs,
             lambda r: _progress(runs, r, n_runs, t_runs, args.verbose, partial))
    errors = sort_and_report(runs)

    summary = summarise(runs, budgets)
    total = time.perf_counter() - t_start
    texts, goals = [], {}
    for objs in obj_sets:
        names = "accuracy x latency" + (" x params" if objs == "3" else "")
        table = markdown_table(summary, problems, strategies, budgets, objs)
        check, goals[objs] = goal_check(summary, problems, strategies, budgets, objs)
        texts.append(f"### NB201 {names} ({args.seeds} seeds, medians)\n\n{table}\n\n"
                     f"Goal check:\n\n{check}\n")
    ref = ", ".join(f"@{b}: pymoo {p:.2f}, random {r:.2f}" for b, (p, r) in PYMOO_REFERENCE.items())
    texts.append(f"The issue's reference (median recall, its own measurement; this run's pymoo "
                 f"rows are above): {ref}.\n")
    if prior_record is not None:
        texts.append(f"{PRIOR_VARIANT}: the surrogate given other tasks' accuracies "
                     f"({', '.join(prior_record['tasks'])}) and other devices' latencies "
                     f"({', '.join(prior_record['devices'])}; never the problem's own device) "
                     "of every architecture; the other rows see only their own evaluations.\n")
    if default_record is not None:
        one = next(iter(default_record.values()))
        texts.append(f"{DEFAULT_PRIOR_VARIANT}: the surrogate given the default prior set -- "
                     f"the accuracy columns of every other dataset "
                     f"({', '.join(c for c in one if c in tables.tasks)}) and every other "
                     "device's latency (never the problem's own device).\n")
    report = "\n".join(texts)
    print(report)
    print(f"{len(runs) - len(errors)} runs ok, {len(errors)} failed; total {total:.0f}s "
          f"(runs {time.perf_counter() - t_runs:.0f}s)")

    record = {
        "benchmark": "search", "space": "nb201", "task": TASK, "budgets": budgets,
        "seeds": args.seeds, "strategies": strategies, "skipped_strategies": missing,
        "pymoo_settings": {
            "pop_size": 20, "sampling": "IntegerRandomSampling",
            "crossover": f"SBX(prob=1.0, eta={eta_c:g}, vtype=float, RoundingRepair)",
            "mutation": f"PM(prob=1.0, eta={eta_m:g}, vtype=float, RoundingRepair)",
            "eliminate_duplicates": True},
        "recall_goal": RECALL_GOAL, "pymoo_reference_recall": PYMOO_REFERENCE,
        "prior": prior_record, "default_prior": default_record,
        "problems": problems, "summary": summary, "goal_met": goals, "runs": runs,
        "report_markdown": report, "jobs": args.jobs, "cpu_count": os.cpu_count(),
        "total_s": total, "versions": _versions(),
    }
    atomic_write_text(args.out, json.dumps(record, indent=1, default=float) + "\n")
    partial.unlink(missing_ok=True)
    print(f"wrote {args.out}", file=sys.stderr)

