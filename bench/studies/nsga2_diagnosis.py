"""Why did hwnas's NSGA-II trail pymoo's on NB201? Its variants beside pymoo, on validation devices.

Same protocol as :mod:`hwnas.bench.studies.search_benchmark` (accuracy x latency, optionally x
parameters; budgets counting unique evaluations; pymoo's NSGA-II with SBX + PM, eta 3 / 3,
population 20, duplicates eliminated), but on HELP's nb201 meta-training devices by default -- the
devices on which NSGA-II's settings are chosen -- and over named variants of
:class:`hwnas.search.strategies.nsga2.NSGA2` (constructor options), so that each difference from
pymoo (operators on categorical genes, duplicate handling, tournament) is measured on its own.

Usage:
    python bench/scripts/nsga2_diagnosis.py --seeds 10 --jobs 2 \\
        --variants 'default={};sbx_pm={"crossover":"sbx","mutation":"pm"}'
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
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
from hwnas.latency import atomic_write_text
from hwnas.search import get_space
from hwnas.search.errors import HwnasError
from hwnas.search.strategies.nsga2 import NSGA2

__all__ = ["VALIDATION_DEVICES", "parse_variants", "main"]

#: HELP's nb201 meta-training devices (none of them a test device of the search benchmark)
VALIDATION_DEVICES = ("1080ti_1,1080ti_32,1080ti_256,silver_4114,silver_4210r,samsung_a50,pixel3,"
                      "essential_ph_1,samsung_s7")
TASK = "cifar10_test_200ep"

_PROBLEMS: dict[str, TabularProblem] = {}
_SCORERS: dict[str, FrontScorer] = {}
_VARIANTS: dict[str, dict[str, Any]] = {}


def parse_variants(text: str) -> dict[str, dict[str, Any]]:
    """``name=JSON;name=JSON`` -> {name: NSGA2 options}."""
    out: dict[str, dict[str, Any]] = {}
    for item in text.split(";"):
        if item.strip():
            name, _, opts = item.partition("=")
            out[name.strip()] = json.loads(opts or "{}")
    return out


def _job(args: tuple[str, str, int, list[int]]) -> dict[str, Any]:
    key, variant, seed, budgets = args
    if variant == PYMOO_NSGA2:
        trace = run_any(_PROBLEMS[key], PYMOO_NSGA2, seed, max(budgets))
    else:
        trace = run_any(_PROBLEMS[key], "nsga2", seed, max(budgets), **_VARIANTS[variant])
    scores = score_checkpoints(_SCORERS[key], trace, budgets)
    return {"problem": key, "variant": variant, "seed": seed, "asks": trace.asks,
            "at": {str(b): v for b, v in scores.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", default=VALIDATION_DEVICES)
    ap.add_argument("--variants", default="default={}",
                    help="name=JSON options of NSGA2, ';'-separated; pymoo-nsga2 always runs")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="300,1000")
    ap.add_argument("--objectives", choices=("2", "3"), default="2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON of every run and the summary")
    ap.add_argument("--pymoo-cache", default=None,
                    help="JSON lines of pymoo's runs: those found (same problem, seed and "
                         "budgets) are reused, the others run and appended (pymoo is "
                         "deterministic per seed)")
    args = ap.parse_args()
    try:
        variants = parse_variants(args.variants)
        for options in variants.values():
            NSGA2(get_space("nb201"), 2, seed=0, **options)  # fail here, not in a worker
    except (json.JSONDecodeError, TypeError, HwnasError) as e:
        print(f"nsga2_diagnosis: bad --variants (name=JSON options;...): {e}", file=sys.stderr)
        sys.exit(2)
    _VARIANTS.update(variants)
    budgets = sorted({int(b) for b in args.budgets.split(",") if b})
    devices = [d for d in args.devices.split(",") if d]
    tables = load_tables("nb201")
    params = None
    if args.objectives == "3":
        params = np.array([s.params for s in tables.space.fast_stats(tables.archs)], dtype=float)
    for d in devices:
        try:
            tables.check_device(d)
        except HwnasError as e:
            print(f"nsga2_diagnosis: {e}", file=sys.stderr)
            sys.exit(2)
        p = nb201_problem(tables, d, TASK, params)
        _PROBLEMS[p.name], _SCORERS[p.name] = p, FrontScorer(p)
    names = [*variants, PYMOO_NSGA2]
    jobs = [(k, v, s, budgets) for s in range(args.seeds) for k in _PROBLEMS for v in names]
    cached: list[dict[str, Any]] = []
    cache = Path(args.pymoo_cache) if args.pymoo_cache else None
    if cache is not None and cache.is_file():
        have = {}
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            if sorted(int(b) for b in r["at"]) == budgets:
                have[(r["problem"], r["seed"])] = r
        cached = [have[(k, s)] for k, v, s, _ in jobs if v == PYMOO_NSGA2 and (k, s) in have]
        jobs = [j for j in jobs if j[1] != PYMOO_NSGA2 or (j[0], j[2]) not in have]
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with mp.get_context("fork").Pool(args.jobs) as pool:
        for r in pool.imap_unordered(_job, jobs, chunksize=1):
            runs.append(r)
            if cache is not None and r["variant"] == PYMOO_NSGA2:
                with cache.open("a") as f:  # one line per run: a stopped batch keeps its runs
                    f.write(json.dumps(r) + "\n")
    runs += cached
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for v in names:
        for key in _PROBLEMS:
            rs = [r for r in runs if r["variant"] == v and r["problem"] == key]
            summary.setdefault(v, {})[key] = {
                **{f"recall@{b}": float(np.median([r["at"][str(b)]["recall"] for r in rs]))
                   for b in budgets},
                **{f"hv@{b}": float(np.median([r["at"][str(b)]["hv_ratio"] for r in rs]))
                   for b in budgets},
                "asks": float(np.median([r["asks"] for r in rs]))}
    head = " ".join(f"{d[:11]:>11}" for d in devices)
    for b in budgets:
        for what in ("recall", "hv"):
            print(f"\n{what}@{b}: {'variant':<24} {head}   mean  wins")
            ref = [summary[PYMOO_NSGA2][k][f"{what}@{b}"] for k in _PROBLEMS]
            for v in names:
                row = [summary[v][k][f"{what}@{b}"] for k in _PROBLEMS]
                wins = sum(x >= y for x, y in zip(row, ref, strict=True))
                fmt = "{:11.3f}" if what == "recall" else "{:11.4f}"
                print(f"{'':>10}{v:<24} " + " ".join(fmt.format(x) for x in row)
                      + f" {np.mean(row):6.3f} {wins}/{len(row)}")
    print(f"\n{len(runs)} runs in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(
            {"devices": devices, "variants": variants, "budgets": budgets, "seeds": args.seeds,
             "objectives": args.objectives, "summary": summary, "runs": runs}, indent=1))
