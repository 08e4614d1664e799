"""Multi-objective search on the FBNet table's 5,000 architectures (a space of 9^22 that cannot be
listed), per device: hwnas's strategies against pymoo's NSGA-II and random search; ``--space ofa``:
the same on the once-for-all table's 5,000 rows (a space of about 5e20).

The space: HW-NAS-Bench's FBNet chains (Li et al., ICLR 2021) as HELP (Lee et al., NeurIPS 2021)
ships them: 5,000 sampled architectures with latency on 24 devices and no accuracy. Only those
5,000 can be evaluated (anything else has no latency: the search loop skips it), so every strategy
searches :class:`hwnas.search.strategies.candidates.TableSpace`, the FBNet space restricted to the
rows: a sample is a row, a mutation or crossover child is moved to its nearest row (most layers in
common; see that class). The surrogate scores every row not yet evaluated.

Objectives: latency on the device (ms, minimised) x compute (multiply-accumulates of the
network's 22 searchable layers, millions, *maximised*; ``--capacity params``: their parameters).
With no accuracy in the table, compute stands in for capacity: the front is the networks with the
most compute a given latency buys (the hardware-efficiency trade-off of FBNet's own
search, Wu et al., CVPR 2019). Minimising both would leave fronts of 1-5 networks (latency and
compute agree), as would latency on two devices (fronts of one network on the test devices).
Per-layer costs come from :func:`hwnas.meta.encoders.fbnet_layer_costs` (each block built once;
the stem, head and classifier are the same in every network and left out).

Devices: HELP's fbnet test devices (fpga, raspi4, eyeriss) are reported; settings were chosen on
the validation devices :data:`VALID_DEVICES` (fixed before any run). ``surrogate+prior`` is the
surrogate given every other device's latency of every row (never the objective's device).
pymoo's NSGA-II runs through :class:`hwnas.search.strategies.peers_pymoo.PymooNSGA2`, its integer
genotypes mapped to rows the same way. Indicators as in ``search_benchmark.py``: recall of the
table's true Pareto set (by row), hypervolume ratio (normalised by the true front's ideal and
nadir, reference 1.1), of the first ``b`` unique evaluations of one run of the largest budget.

OFA (``--space ofa``): HELP's 5,000 OFA MobileNetV3 sub-networks with latency on 12 GPU
configurations; compute is the whole network's multiply-accumulates at its input resolution
(:func:`hwnas.search.spaces.ofa_cost.ofa_costs`; ``--capacity params``: its parameters). Nothing
was chosen on OFA: the strategies run with the settings chosen on NB201 and FBNet, and the devices
(:data:`OFA_DEVICES`: HELP's ofa test device and its two meta-validation devices) are all
held out.

A variant of a strategy with options: ``NAME@key=value,key=value`` (values parsed as JSON, e.g.
``surrogate@transform="raw",local_bonus=0``).

Usage:
    python bench/scripts/search_fbnet.py --seeds 10 --budgets 100,300,1000 \\
        --out results/benchmarks/search_fbnet.json
    python bench/scripts/search_fbnet.py --space ofa --seeds 10 --budgets 100,300,1000 \\
        --out results/benchmarks/search_ofa.json
"""

from __future__ import annotations

import argparse
import json
import os
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
    run_any,
    score_checkpoints,
)
from hwnas.bench.problem import build_prior
from hwnas.latency import atomic_write_text
from hwnas.search.strategies.candidates import TableSpace

from .search_benchmark import group_runs, run_logged, sort_and_report

__all__ = ["TEST_DEVICES", "VALID_DEVICES", "OFA_DEVICES", "fbnet_problem", "ofa_problem",
           "parse_strategy", "parse_lists", "summarise", "markdown_table", "main"]

#: HELP's fbnet test devices (reported)
TEST_DEVICES = ("fpga", "raspi4", "eyeriss")
#: devices settings were chosen on: HELP's meta-validation CPU and GPU and two meta-training
#: devices of other families (a phone, a second CPU); fixed before any run
VALID_DEVICES = ("gold_6240", "titanx_1", "samsung_a50", "silver_4114")
#: OFA devices reported: HELP's ofa test device and meta-validation devices (nothing is chosen on
#: OFA, so all are held out)
OFA_DEVICES = ("titan_rtx_64", "titan_rtx_1", "titan_rtx_32")
DEFAULT_STRATEGIES = ("random", "evolution", "nsga2", "surrogate", "surrogate+prior")
PRIOR_VARIANT = "surrogate+prior"

_PROBLEMS: dict[str, TabularProblem] = {}
_SCORERS: dict[str, FrontScorer] = {}
_PRIORS: dict[str, Any] = {}


def fbnet_problem(tables: Any, device: str, capacity: str = "flops") -> TabularProblem:
    """Latency on ``device`` (min) x the 22 layers' MACs or parameters (max), over the table."""
    from hwnas.meta.encoders import fbnet_layer_costs

    cost = fbnet_layer_costs()
    genes = np.array([a.genes for a in tables.archs])
    total = cost[np.arange(len(cost)), genes].sum(axis=1)
    column = total[:, 0] / 1e6 if capacity == "flops" else total[:, 1] / 1e6
    return _rows_problem("fbnet", tables, device, capacity, column)


def _rows_problem(name: str, tables: Any, device: str, capacity: str, column: np.ndarray
                  ) -> TabularProblem:
    """Latency on ``device`` (min) x ``column`` (max) over a table's rows, searched on them."""
    latency = tables.get_latency(device, np.arange(len(tables)))
    space = TableSpace(tables.space, tables.archs)
    return TabularProblem(f"{name}/{device}/latency+{capacity}", space, list(tables.archs),
                          ("latency", capacity), ("min", "max"), np.column_stack([latency, column]))


def ofa_problem(tables: Any, device: str, capacity: str = "flops") -> TabularProblem:
    """Latency on ``device`` (min) x the whole network's MACs or parameters (max), over the
    OFA table's rows."""
    from hwnas.search.spaces.ofa_cost import ofa_costs

    cost = ofa_costs(tables.space, list(tables.archs))
    column = cost[:, 0] if capacity == "flops" else cost[:, 1] / 1e6
    return _rows_problem("ofa", tables, device, capacity, column)


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME@k=v,k=v`` -> (``NAME``, options); values are JSON (bare words: strings)."""
    name, _, rest = spec.partition("@")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


def parse_lists(budgets: str, strategies: str, devices: str
                ) -> tuple[list[int], list[str], list[str]]:
    """``--budgets`` (sorted, unique), ``--strategies`` (split on ``;`` when the text has one, as
    variants with options do, else on ``,``) and ``--devices`` of the FBNet studies.

    Raises:
        ValueError: a budget that is not an integer.
    """
    sep = ";" if ";" in strategies else ","
    return (sorted({int(b) for b in budgets.split(",") if b}),
            [s for s in strategies.split(sep) if s], [d for d in devices.split(",") if d])


def _job(args: tuple[str, str, int, list[int]]) -> dict[str, Any]:
    key, spec, seed, budgets = args
    problem = _PROBLEMS[key]
    try:
        name, kwargs = parse_strategy(spec)
        if name == PRIOR_VARIANT:
            name, kwargs = "surrogate", {**kwargs, "prior": _PRIORS[key]}
        trace = run_any(problem, name, seed, max(budgets), **kwargs)
        scores = score_checkpoints(_SCORERS[key], trace, budgets)
    except Exception as e:  # one failing variant must not sink the benchmark
        return {"problem": key, "strategy": spec, "seed": seed,
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
    return {"problem": key, "strategy": spec, "seed": seed, "evaluations": trace.evaluations,
            "asks": trace.asks, "skipped": trace.skipped, "wall_s": trace.wall_s,
            "overhead_ms_per_eval": trace.overhead_ms_per_eval,
            "at": {str(b): v for b, v in scores.items()}}


def summarise(runs: list[dict], budgets: list[int]) -> dict[str, dict[str, dict[str, float]]]:
    """problem -> strategy -> medians over seeds (recall, HV ratio; recall quartiles)."""
    groups = group_runs(runs)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (key, strategy), rs in groups.items():
        s: dict[str, float] = {"seeds": len(rs), "wall_s": float(np.median(
            [r["wall_s"] for r in rs]))}
        for b in budgets:
            rec = [r["at"][str(b)]["recall"] for r in rs]
            s[f"recall@{b}"] = float(np.median(rec))
            s[f"recall_q25@{b}"], s[f"recall_q75@{b}"] = (float(np.percentile(rec, 25)),
                                                          float(np.percentile(rec, 75)))
            s[f"hv_ratio@{b}"] = float(np.median([r["at"][str(b)]["hv_ratio"] for r in rs]))
        out.setdefault(key, {})[strategy] = s
    return out


def markdown_table(summary: dict, problems: dict[str, dict], strategies: list[str],
                   budgets: list[int], devices: list[str]) -> str:
    """Rows device x strategy: median recall and HV ratio per budget, median run seconds."""
    head = [f"recall@{b}" for b in budgets] + [f"HVratio@{b}" for b in budgets] + ["run s"]
    lines = ["| device (front) | strategy | " + " | ".join(head) + " |",
             "|---|---|" + "---:|" * len(head)]
    for key, meta in problems.items():
        if meta["device"] not in devices:
            continue
        for strategy in strategies:
            s = summary.get(key, {}).get(strategy)
            label = f"{meta['device']} ({meta['true_front_size']})"
            if s is None:
                lines.append(f"| {label} | {strategy} | " + " | ".join(["-"] * len(head)) + " |")
                continue
            cells = ([f"{s[f'recall@{b}']:.2f}" for b in budgets]
                     + [f"{s[f'hv_ratio@{b}']:.4f}" for b in budgets] + [f"{s['wall_s']:.1f}"])
            lines.append(f"| {label} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="table folder (default: the bundled tables)")
    ap.add_argument("--space", choices=("fbnet", "ofa"), default="fbnet")
    ap.add_argument("--devices", default=None,
                    help="comma-separated latency columns of the table (default: fbnet's test "
                         "and validation devices; ofa: OFA_DEVICES)")
    ap.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                    help=f"comma-separated; {PYMOO_NSGA2} always runs too; NAME@k=v,... for "
                         "options (separate such variants with ';')")
    ap.add_argument("--capacity", choices=("flops", "params"), default="flops")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="100,300,1000")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", default=None,
                    help="default: results/benchmarks/search_fbnet.json (ofa: search_ofa.json)")
    args = ap.parse_args()
    groups = ((("HELP's fbnet test devices", TEST_DEVICES),
               ("validation devices (settings chosen here)", VALID_DEVICES))
              if args.space == "fbnet" else
              (("HELP's ofa test and meta-validation devices (nothing chosen on OFA)",
                OFA_DEVICES),))
    if args.devices is None:
        args.devices = ",".join(d for _, g in groups for d in g)
    if args.out is None:
        args.out = f"results/benchmarks/search_{args.space}.json"

    t_start = time.perf_counter()
    try:
        budgets, strategies, devices = parse_lists(args.budgets, args.strategies, args.devices)
    except ValueError:
        print(f"search_fbnet: --budgets must be integers, got {args.budgets!r}", file=sys.stderr)
        return 2
    strategies = [s for s in strategies if s != PYMOO_NSGA2] + [PYMOO_NSGA2]
    tables = load_tables(args.space, args.data)
    make_problem = fbnet_problem if args.space == "fbnet" else ofa_problem
    bad = [d for d in devices if d not in tables.devices]
    if bad or args.seeds < 1 or not budgets or min(budgets) < 1:
        print(f"search_fbnet: unknown devices {bad} (valid: {', '.join(tables.devices)}), or "
              "--seeds/--budgets below 1", file=sys.stderr)
        return 2
    problems: dict[str, dict[str, Any]] = {}
    for d in devices:
        p = make_problem(tables, d, args.capacity)
        _PROBLEMS[p.name], _SCORERS[p.name] = p, FrontScorer(p)
        problems[p.name] = {"device": d, "true_front_size": int(len(p.front)),
                            "true_front": p.front.tolist()}
        if any(s.startswith(PRIOR_VARIANT) for s in strategies):
            # every other device's latency, never the objective's own device
            _PRIORS[p.name] = build_prior(args.space, [x for x in tables.devices if x != d],
                                          tables, device=d)
    jobs = [(k, s, seed, budgets) for seed in range(args.seeds) for k in problems
            for s in strategies]
    print(f"{len(jobs)} runs ({len(problems)} devices x {len(strategies)} strategies x "
          f"{args.seeds} seeds, {max(budgets)} unique evaluations each) on {args.jobs} "
          "processes", file=sys.stderr)
    partial = Path(f"{args.out}.partial.jsonl")
    runs = run_logged(_job, jobs, args.jobs, partial, every=10)
    errors = sort_and_report(runs)
    summary = summarise(runs, budgets)
    total = time.perf_counter() - t_start
    texts = []
    label = {"fbnet": "FBNet", "ofa": "OFA"}[args.space]
    for title, group in groups:
        if any(m["device"] in group for m in problems.values()):
            texts.append(f"### {label} table, latency x {args.capacity} (max), {title}; "
                         f"{args.seeds} seeds, medians\n\n"
                         + markdown_table(summary, problems, strategies, budgets, list(group)))
    report = "\n\n".join(texts)
    print(report)
    print(f"{len(runs) - len(errors)} runs ok, {len(errors)} failed; total {total:.0f}s")
    what = "the 22 layers" if args.space == "fbnet" else "the whole network"
    record = {"benchmark": "search_fbnet", "space": f"{args.space} (table rows)",
              "objectives": ["latency (min)", f"{args.capacity} of {what}, millions (max)"],
              "budgets": budgets, "seeds": args.seeds, "strategies": strategies,
              **({"test_devices": list(TEST_DEVICES), "valid_devices": list(VALID_DEVICES)}
                 if args.space == "fbnet" else {"held_out_devices": list(OFA_DEVICES)}),
              "command": " ".join(["python", "bench/scripts/search_fbnet.py", *sys.argv[1:]]),
              "total_s": total, "problems": problems, "summary": summary, "runs": runs,
              "markdown": report}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(record, indent=1, default=float))
    if not errors:
        partial.unlink(missing_ok=True)
    return 0 if not errors else 1
