"""Where does the surrogate search lose front recall? Give it the answer and see.

On NB201 (CIFAR-10 200-epoch accuracy x latency on a device), the surrogate strategy
(:class:`hwnas.search.strategies.surrogate.SurrogateParetoSearch`) runs four times per seed:

- ``none``: as users run it (its own evaluations only);
- ``accuracy``: the true accuracy of *every* architecture given as a prior feature
  (:class:`hwnas.search.PriorFeatures`), so only latency is left to learn;
- ``latency``: the device's true latency of every architecture given, accuracy left to learn;
- ``both``: both given: what is lost then is lost by the model and the acquisition, not by
  missing information.

This is a diagnostic, not a benchmark of anything a user can run: the oracle columns are the
objectives themselves. Run it on HELP's meta-training devices (the default), not its test devices,
so that what it suggests is not tuned on the devices the search benchmark reports.

Usage::

    python bench/scripts/search_oracle.py [--devices 1080ti_1,silver_4114,pixel3] [--seeds 2]
        [--jobs 2] [--out results/benchmarks/search_oracle.json]
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

from hwnas.bench import BenchmarkTables, load_tables
from hwnas.bench.harness import FrontScorer, nb201_problem, run_strategy, score_checkpoints
from hwnas.latency.table import atomic_write_text
from hwnas.search import PriorFeatures

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
TASK = "cifar10_test_200ep"
ORACLES = ("none", "accuracy", "latency", "both")
BUDGETS = (300, 1000)


# filled in the parent before the workers fork, so each worker shares the tables copy-on-write
_TABLES: list[BenchmarkTables] = []


def _job(args: tuple[str, int, str]) -> dict[str, Any]:
    device, seed, oracle = args
    tables = _TABLES[0]
    problem = nb201_problem(tables, device, TASK)
    idx = np.arange(len(tables))
    columns: dict[str, np.ndarray] = {}
    if oracle in ("accuracy", "both"):
        columns["accuracy"] = tables.get_accuracy(TASK, idx)
    if oracle in ("latency", "both"):
        columns["latency"] = tables.get_latency(device, idx)
    kwargs = ({"prior": PriorFeatures.from_columns(tables.archs, columns, log=["latency"]
                                                   if "latency" in columns else ())}
              if columns else {})
    t0 = time.perf_counter()
    trace = run_strategy(problem, "surrogate", seed, max(BUDGETS), **kwargs)
    scores = score_checkpoints(FrontScorer(problem), trace, BUDGETS)
    return {"device": device, "oracle": oracle, "seed": seed, "wall_s": time.perf_counter() - t0,
            **{f"recall@{b}": scores[b]["recall"] for b in BUDGETS}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None,
                       help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    p.add_argument("--devices", default="1080ti_1,silver_4114,pixel3")
    p.add_argument("--oracles", default=",".join(ORACLES))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks"
                   / "search_oracle.json")
    args = p.parse_args()
    devices = [d for d in args.devices.split(",") if d]
    oracles = [o for o in args.oracles.split(",") if o]
    bad = [o for o in oracles if o not in ORACLES]
    if bad:
        sys.exit(f"search_oracle: unknown oracle {bad[0]!r}; valid: {', '.join(ORACLES)}")
    tables = load_tables("nb201", args.data)
    for d in devices:
        tables.check_device(d)
    _TABLES.append(tables)
    jobs = [(d, s, o) for d in devices for s in range(args.seeds) for o in oracles]
    runs = []
    with mp.get_context("fork").Pool(args.jobs) as pool:
        for i, r in enumerate(pool.imap_unordered(_job, jobs), 1):
            runs.append(r)
            print(f"[{i}/{len(jobs)}] {r['device']} {r['oracle']} seed {r['seed']}: "
                  f"recall {r['recall@300']:.2f} / {r['recall@1000']:.2f}", file=sys.stderr,
                  flush=True)
    runs.sort(key=lambda r: (r["device"], r["oracle"], r["seed"]))
    summary = {d: {o: {f"recall@{b}": float(np.median([r[f"recall@{b}"] for r in runs
                                                        if r["device"] == d and r["oracle"] == o]))
                       for b in BUDGETS} for o in oracles} for d in devices}
    out = {"benchmark": "search_oracle", "task": TASK, "strategy": "surrogate",
           "seeds": args.seeds, "budgets": list(BUDGETS), "command": " ".join(sys.argv),
           "summary": summary, "runs": runs}
    atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print("| device | " + " | ".join(f"{o} @300 / @1000" for o in oracles) + " |")
    print("|---|" + "---|" * len(oracles))
    for d in devices:
        print(f"| {d} | " + " | ".join(
            f"{summary[d][o]['recall@300']:.2f} / {summary[d][o]['recall@1000']:.2f}"
            for o in oracles) + " |")
    print(f"\nwrote {args.out}")

