"""optuna's samplers and pymoo's algorithms against hwnas's own strategies, in one harness.

Problems: NB201, CIFAR-10 200-epoch test accuracy (maximised) x latency (minimised) on each of
HELP's six test devices (:data:`hwnas.bench.studies.search_benchmark.HELP_TEST_DEVICES`). Every
strategy -- hwnas's registered ones (``list_strategies()`` less the peers and ``exhaustive``)
and the peers ``optuna:*`` and ``pymoo:*`` (:mod:`hwnas.search.strategies.peers`) -- runs by name
through the same loop (:func:`hwnas.bench.minimize`), with the same seeds, for the largest
budget in *unique* evaluations (a repeated architecture is told its known value and costs
nothing); smaller budgets are its first unique evaluations. Indicators as in
``search_benchmark.py`` (:class:`hwnas.bench.harness.FrontScorer`): front recall of the true
front (all 15,625 architectures, by index), hypervolume ratio, IGD+.

Some peers cost far more per ask than the rest: optuna's GP sampler refits a Gaussian process
on every ask (seconds each on a loaded 2-core host), and optuna's TPE re-splits every trial for
every gene on every ask (quadratic in the trials). ``--limit NAME=BUDGET:SEEDS[:DEVICE+...]``
runs one at its own, smaller budget, seed count and devices, said in the output; its row is
blank at budgets it did not reach.

Usage:
    python bench/scripts/peer_strategies.py --seeds 10 --budgets 100,300,1000 --jobs 2 \\
        --limit optuna:gp=100:1:pixel2 --limit optuna:tpe=300:1:pixel2 \\
        --out results/benchmarks/peer_strategies.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.bench import load_tables, minimize
from hwnas.bench.harness import (
    FrontScorer,
    RunTrace,
    TabularProblem,
    nb201_problem,
    run_any,
    score_checkpoints,
)
from hwnas.bench.problem import Problem
from hwnas.latency import atomic_write_text
from hwnas.search import create_strategy, get_space, list_strategies
from hwnas.search.strategies.base import DEFAULT_STRATEGY, default_max_idle
from hwnas.search.strategies.peers import PEER_STRATEGIES

from .search_benchmark import HELP_TEST_DEVICES, TASK, git_commit

__all__ = ["VARIANTS", "default_strategies", "summarise", "overall_table", "device_table",
           "main"]

#: rows that run a registered strategy with options other than its defaults: name -> (strategy,
#: options, what the table says about it). optuna's TPE with ``multivariate=True`` (one joint
#: Parzen estimator, one split of the trials per ask instead of one per gene: ~6x less work on
#: NB201's six genes) is a speed setting, not optuna's default for several objectives
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "optuna:tpe+multivariate": (
        "optuna:tpe", {"multivariate": True},
        "optuna's TPE with multivariate=True (optuna's default for one objective; its default "
        "for several, the optuna:tpe row, is independent per gene and several times slower per "
        "ask here): a speed setting, not the library default"),
}

_PROBLEMS: dict[str, TabularProblem] = {}  # filled before the workers fork (copy-on-write)
_SCORERS: dict[str, FrontScorer] = {}
#: the same problems as a user builds them (``Problem.from_names``): the default strategy runs on
#: these, so it gets what ``hwnas search`` gives it -- the default priors the problem's sources
#: name (other datasets' accuracy, other devices' latency); a TabularProblem names none
_USER_PROBLEMS: dict[str, Problem] = {}


def default_strategies() -> list[str]:
    """hwnas's own registered strategies (not ``exhaustive``), then every peer."""
    own = [s for s in list_strategies() if s not in PEER_STRATEGIES and s != "exhaustive"]
    return own + list(PEER_STRATEGIES) + list(VARIANTS)


def _label(name: str) -> str:
    """A strategy's row label: the default is said so."""
    return f"{name} (default)" if name == DEFAULT_STRATEGY else name


def _library(name: str) -> str:
    return name.split(":")[0] if ":" in name else "hwnas"


def _run_default(key: str, seed: int, budget: int) -> tuple[RunTrace, dict[str, Any]]:
    """The default strategy as a user runs it: :func:`minimize` on the problem built by name,
    with its default priors; the table indices of what it evaluated, and what it chose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a SearchWarning would only repeat the record
        result = minimize(_USER_PROBLEMS[key], DEFAULT_STRATEGY, budget, seed)
    trace = RunTrace(DEFAULT_STRATEGY, seed, _PROBLEMS[key].indices(result.archs),
                     result.timings["total_s"], result.timings["evaluate_s"], result.asks,
                     result.skipped)
    choice = result.config["strategy_choice"]
    return trace, {"strategy": choice["strategy"], "rule": choice["rule"],
                   "priors": len(result.config["priors"].get("used", []))}


def _job(args: tuple[str, str, int, list[int]]) -> dict[str, Any]:
    key, strategy, seed, budgets = args
    chose: dict[str, Any] = {}
    try:
        if strategy == DEFAULT_STRATEGY:
            trace, chose = _run_default(key, seed, max(budgets))
        elif strategy in VARIANTS:
            base, options, _ = VARIANTS[strategy]
            trace = run_any(_PROBLEMS[key], base, seed, max(budgets), **options)
        else:
            trace = run_any(_PROBLEMS[key], strategy, seed, max(budgets))
        scores = score_checkpoints(_SCORERS[key], trace, budgets)
    except Exception as e:  # one failing peer must not sink the benchmark
        return {"problem": key, "strategy": strategy, "seed": seed,
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
    return {"problem": key, "strategy": strategy, "seed": seed, "budget": max(budgets),
            "evaluations": trace.evaluations, "asks": trace.asks, "skipped": trace.skipped,
            "wall_s": trace.wall_s, "lookup_s": trace.lookup_s,
            "overhead_ms_per_eval": trace.overhead_ms_per_eval,
            **({"chose": chose} if chose else {}),
            "at": {str(b): v for b, v in scores.items()}}


def summarise(runs: list[dict], budgets: list[int]) -> dict[str, dict[str, Any]]:
    """strategy -> medians over every (device, seed) run that reached each budget, and the
    per-device medians of recall."""
    out: dict[str, dict[str, Any]] = {}
    by: dict[str, list[dict]] = {}
    for r in runs:
        if "error" not in r:
            by.setdefault(r["strategy"], []).append(r)
    for strategy, rs in by.items():
        s: dict[str, Any] = {"library": _library(strategy), "runs": len(rs),
                             "seeds": len({r["seed"] for r in rs}),
                             "overhead_ms_per_eval": float(np.median(
                                 [r["overhead_ms_per_eval"] for r in rs])),
                             "asks_per_eval": float(np.median(
                                 [r["asks"] / max(1, r["evaluations"]) for r in rs]))}
        for b in budgets:
            reached = [r for r in rs if str(b) in r["at"]]
            if not reached:
                continue
            for ind in ("recall", "hv_ratio", "igd_plus"):
                s[f"{ind}@{b}"] = float(np.median([r["at"][str(b)][ind] for r in reached]))
            rec = [r["at"][str(b)]["recall"] for r in reached]
            s[f"recall_q25@{b}"] = float(np.percentile(rec, 25))
            s[f"recall_q75@{b}"] = float(np.percentile(rec, 75))
            s[f"device_recall@{b}"] = {
                p: float(np.median([r["at"][str(b)]["recall"] for r in reached
                                    if r["problem"] == p]))
                for p in sorted({r["problem"] for r in reached})}
        out[strategy] = s
    return out


def overall_table(summary: dict[str, dict[str, Any]], budgets: list[int]) -> str:
    """One row per strategy, best median recall at the largest budget first."""
    top = max(budgets)
    head = ([f"recall@{b} (IQR)" for b in budgets] + [f"HV ratio@{b}" for b in budgets]
            + [f"IGD+@{top}", "ms/eval", "asks/eval", "runs"])
    lines = ["| strategy | library | " + " | ".join(head) + " |",
             "|---|---|" + "---:|" * len(head)]

    def key(item: tuple[str, dict[str, Any]]) -> tuple[float, float]:
        s = item[1]
        b = next((b for b in sorted(budgets, reverse=True) if f"recall@{b}" in s), None)
        return (-(b or 0), -s.get(f"recall@{b}", 0.0)) if b else (0, 0.0)

    for strategy, s in sorted(summary.items(), key=key):
        cells = []
        for b in budgets:
            cells.append(f"{s[f'recall@{b}']:.2f} ({s[f'recall_q25@{b}']:.2f}-"
                         f"{s[f'recall_q75@{b}']:.2f})" if f"recall@{b}" in s else "-")
        cells += [f"{s[f'hv_ratio@{b}']:.4f}" if f"hv_ratio@{b}" in s else "-" for b in budgets]
        cells.append(f"{s[f'igd_plus@{top}']:.4f}" if f"igd_plus@{top}" in s else "-")
        cells += [f"{s['overhead_ms_per_eval']:.1f}", f"{s['asks_per_eval']:.2f}",
                  f"{s['runs']} ({s['seeds']} seeds)"]
        lines.append(f"| {_label(strategy)} | {s['library']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def device_table(summary: dict[str, dict[str, Any]], problems: dict[str, str],
                 budget: int) -> str:
    """Median recall at ``budget`` per strategy and device."""
    keys = list(problems)
    lines = ["| strategy | " + " | ".join(problems[k] for k in keys) + " |",
             "|---|" + "---:|" * len(keys)]
    for strategy, s in summary.items():
        per = s.get(f"device_recall@{budget}")
        if per is None:
            continue
        lines.append(f"| {_label(strategy)} | " + " | ".join(
            f"{per[k]:.2f}" if k in per else "-" for k in keys) + " |")
    return "\n".join(lines)


def _seed_ranges(seeds: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    out: list[str] = []
    for x in sorted(seeds):
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def _limit_note(strategy: str, budget: int, runs: list[dict], problems: dict[str, str]) -> str:
    """What a limited strategy ran, read from its runs (seeds per device, runs that stalled)."""
    rs = [r for r in runs if r["strategy"] == strategy and "error" not in r]
    by: dict[str, list[int]] = {}
    for r in rs:
        by.setdefault(problems.get(r["problem"], r["problem"]), []).append(r["seed"])
    groups: dict[str, list[str]] = {}
    for device, seeds in by.items():
        groups.setdefault(_seed_ranges(seeds), []).append(device)
    where = "; ".join(f"seeds {k} on {', '.join(v)}" for k, v in groups.items())
    short = sum(r["evaluations"] < budget for r in rs)
    return (f"{strategy} ran at {budget} unique evaluations ({where}; the session's time on a "
            f"shared 2-core host did not allow the full protocol); blank beyond {budget}"
            + (f"; {short} of its {len(rs)} runs stopped short of {budget}: the sampler proposed "
               f"only architectures it had evaluated for {default_max_idle(budget):,} asks in a "
               "row (stalled)"
               if short else "") + ".\n")


def _default_note(runs: list[dict]) -> str:
    """What the default strategy picked in its runs (rule, strategy, how many prior columns)."""
    picks: dict[tuple[str, str, int], int] = {}
    for r in runs:
        if "chose" in r:
            c = r["chose"]
            k = (c["strategy"], c["rule"], c["priors"])
            picks[k] = picks.get(k, 0) + 1
    if not picks:
        return ""
    what = "; ".join(f"{s} by rule {rule}, {p} default prior columns, in {n} runs"
                     for (s, rule, p), n in sorted(picks.items()))
    return (f"{DEFAULT_STRATEGY} (default): what `hwnas search` runs without --strategy, on the "
            f"problem built by name (Problem.from_names) with its default priors: {what}.\n")


def _commit() -> str:
    """The code's git commit (``unknown`` outside a checkout)."""
    return git_commit(short=True) or "unknown"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for lib in ("optuna", "pymoo", "numba", "torch"):
        with contextlib.suppress(ImportError):
            out[lib] = __import__(lib).__version__
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="your own table folder (default: bundled)")
    ap.add_argument("--devices", default=",".join(HELP_TEST_DEVICES))
    ap.add_argument("--strategies", default=",".join(default_strategies()),
                    help="comma-separated registered strategy names")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="300,1000")
    ap.add_argument("--limit", action="append", default=[], metavar="NAME=BUDGET:SEEDS[:DEVS]",
                    help="run strategy NAME at its own budget and seed count (and on the "
                         "devices DEV+DEV+...; default: all); repeatable")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--verbose", action="store_true", help="a line per finished run")
    ap.add_argument("--resume", action="store_true",
                    help="keep the finished runs of OUT.partial.jsonl and run the others")
    ap.add_argument("--from-partial", action="store_true",
                    help="run nothing: report the runs OUT.partial.jsonl holds (a run that was "
                         "stopped), said so in the output")
    ap.add_argument("--out", default="results/benchmarks/peer_strategies.json")
    args = ap.parse_args()

    t0 = time.perf_counter()
    commit = _commit()  # the code that runs, read before it runs
    budgets = sorted({int(b) for b in args.budgets.split(",") if b})
    devices = [d for d in args.devices.split(",") if d]
    names = [s for s in args.strategies.split(",") if s]
    limits: dict[str, tuple[int, int, list[str]]] = {}
    for item in args.limit:
        try:
            name, spec = item.split("=")
            parts = spec.split(":")
            limits[name] = (int(parts[0]), int(parts[1]),
                            parts[2].split("+") if len(parts) > 2 else devices)
        except (ValueError, IndexError):
            sys.exit(f"peer_strategies: --limit {item!r}; valid: NAME=BUDGET:SEEDS[:DEV+DEV]")
    unknown = [n for n in names if n not in list_strategies() and n not in VARIANTS]
    if unknown or not budgets or min(budgets) < 1 or args.seeds < 1:
        sys.exit(f"peer_strategies: unknown strategy {unknown[0]!r}; valid: "
                 f"{', '.join(list_strategies())}" if unknown else
                 "peer_strategies: --budgets and --seeds take positive integers")
    skipped = {}
    for n in list(names):
        try:  # a peer whose library is missing is skipped, and said so
            base, options, _ = VARIANTS.get(n, (n, {}, ""))
            create_strategy(base, get_space("nb201"), 2, seed=0, **options)
        except Exception as e:
            skipped[n] = f"{type(e).__name__}: {e}"
            names.remove(n)
            print(f"skipping {n}: {skipped[n]}", file=sys.stderr)
    tables = load_tables("nb201", args.data)
    problems: dict[str, str] = {}
    for d in dict.fromkeys(devices + [d for _, _, ds in limits.values() for d in ds]):
        p = nb201_problem(tables, d, TASK)
        _PROBLEMS[p.name], _SCORERS[p.name] = p, FrontScorer(p)
        _USER_PROBLEMS[p.name] = Problem.from_names("nb201", ["accuracy", "latency"], task=TASK,
                                                    device=d, tables=tables)
        problems[p.name] = d
    all_budgets = sorted(set(budgets) | {b for b, _, _ in limits.values()})
    jobs = []
    for s in names:
        top, n_seeds, devs = limits.get(s, (max(budgets), args.seeds, devices))
        marks = sorted({b for b in budgets if b <= top} | {top})
        jobs += [(key, s, seed, marks) for seed in range(n_seeds)
                 for key, d in problems.items() if d in devs]
    # seed by seed (device by device), every strategy on one before the next: a run stopped
    # early has compared all of them on the seeds it reached (--from-partial reports them); the
    # limited (slowest) ones of a seed go first, so the processes do not wait on one at the end
    order = {d: i for i, d in enumerate(problems)}
    jobs.sort(key=lambda j: (j[2], j[1] not in limits, order[j[0]]))
    print(f"{len(jobs)} runs on {args.jobs} processes", file=sys.stderr)
    runs: list[dict] = []
    partial = Path(f"{args.out}.partial.jsonl")
    planned = len(jobs)
    if (args.from_partial or args.resume) and partial.is_file():
        runs = [json.loads(line) for line in partial.read_text().splitlines() if line]
        runs = [r for r in runs if "error" not in r]
        done = {(r["problem"], r["strategy"], r["seed"]) for r in runs}
        jobs = [] if args.from_partial else [j for j in jobs if j[:3] not in done]
        print(f"{len(runs)} runs from {partial}, {len(jobs)} to run", file=sys.stderr)
    with mp.get_context("fork").Pool(args.jobs) as pool:
        for r in pool.imap_unordered(_job, jobs, chunksize=1):
            runs.append(r)
            if args.verbose:
                what = r.get("error") or f"{r['wall_s']:.1f}s"
                print(f"  {problems[r['problem']]} {r['strategy']} seed {r['seed']}: {what} "
                      f"[{len(runs)}/{len(jobs)}, {time.perf_counter() - t0:.0f}s]",
                      file=sys.stderr, flush=True)
            atomic_write_text(partial, "".join(json.dumps(x, default=float) + "\n"
                                               for x in runs))
    runs.sort(key=lambda r: (r["problem"], r["strategy"], r["seed"]))
    errors = [r for r in runs if "error" in r]
    summary = summarise(runs, all_budgets)
    total = time.perf_counter() - t0
    limit_note = "".join(_limit_note(s, b, runs, problems) for s, (b, _, _) in limits.items()
                         if s in names)
    limit_note += "".join(f"{v}: {VARIANTS[v][2]}.\n" for v in names if v in VARIANTS)
    limit_note += _default_note(runs)
    report = "\n".join([
        f"### NB201 accuracy x latency on HELP's test devices ({', '.join(devices)}), "
        f"{args.seeds} seeds, medians over device x seed runs\n",
        overall_table(summary, all_budgets), "",
        "recall: fraction of the true front found (IQR over runs); HV ratio: hypervolume of "
        "the found front / the true front's (normalised by the true front's ideal and nadir, "
        "reference 1.1); ms/eval: strategy time per unique evaluation, lookups excluded (a "
        "loaded, shared 2-core host: rough); asks/eval: proposals per unique evaluation "
        "(repeats are free).\n",
        limit_note,
        f"Median recall@{max(budgets)} per device:\n",
        device_table(summary, problems, max(budgets)), "",
        f"{len(runs) - len(errors)} runs ok, {len(errors)} failed"
        + (f" of {planned} planned: the run was stopped, this reports the runs it finished"
           if len(runs) < planned else "")
        + (f"; {total:.0f} s on {args.jobs} processes." if not args.from_partial else ".")
        + f" Code: hwnas at commit {commit}.",
    ])
    print(report)
    record = {"benchmark": "peer_strategies", "space": "nb201", "task": TASK,
              "command": " ".join(sys.argv), "devices": devices, "budgets": budgets,
              "seeds": args.seeds,
              "limits": {s: {"budget": b, "seeds": n, "devices": ds}
                         for s, (b, n, ds) in limits.items()},
              "strategies": names, "skipped_strategies": skipped,
              "problems": {k: {"device": d, "true_front_size": int(len(_PROBLEMS[k].front))}
                           for k, d in problems.items()},
              "summary": summary, "errors": errors[:10], "runs": runs,
              "report_markdown": report, "jobs": args.jobs, "cpu_count": os.cpu_count(),
              "total_s": total, "commit": commit, "versions": _versions()}
    atomic_write_text(args.out, json.dumps(record, indent=1, default=float) + "\n")
    atomic_write_text(Path(args.out).with_suffix(".md"), report + "\n")
    if not args.from_partial:
        partial.unlink(missing_ok=True)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}", file=sys.stderr)
