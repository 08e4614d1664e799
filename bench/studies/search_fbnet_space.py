"""Multi-objective search of the *whole* FBNet space (9^22 chains, no table to restrict it), per
device, against its exact Pareto front: hwnas's strategies, ``auto``, and pymoo's NSGA-II.

``search_fbnet.py`` searches the 5,000 rows of the FBNet table, the only networks with a measured
latency there. A user who searches FBNet with a latency source that answers for any network (a
per-layer lookup table as FBNet's own, Wu et al., CVPR 2019; a live measurement; a predictor)
searches all 9^22 ~ 9.8e20 chains: no strategy can list them, the surrogate's candidates come from
:class:`hwnas.search.strategies.candidates.CandidateGenerator`, and the ``any-space`` rule of
:mod:`hwnas.search.strategies.auto` decides what ``auto`` runs. This study measures that path.

Objectives, both additive over the 22 searchable layers, so that the true front of the whole space
is exact:

- latency on the device (ms, minimised): a per-(layer, operator) lookup table fitted by least
  squares to the device's 5,000 table rows (one-hot layers and an intercept, as the latency tables
  of HW-NAS-Bench, Li et al., ICLR 2021, are sums of per-layer measurements on several devices).
  On HELP's fbnet test devices (fpga, raspi4, eyeriss) the fit is exact (largest relative error
  below 1e-6 over the 5,000 rows); elsewhere it is an additive approximation of the table, and
  the fit's Spearman and errors are recorded. Each problem *is* that lookup table: a real latency
  model of the whole space, not a stand-in for a measured one.
- compute (multiply-accumulates of the 22 layers, millions, *maximised*), from
  :func:`hwnas.meta.encoders.fbnet_layer_costs`, as in ``search_fbnet.py``.

The exact Pareto front of the whole space (:func:`additive_front`) is computed by dynamic
programming over the layers: the front of the first ``l + 1`` layers is within the sums of the
front of the first ``l`` and one operator of layer ``l + 1`` (a partial chain dominated in both
sums stays dominated whatever follows), pruned to its non-dominated points at each layer, the
multi-objective knapsack recursion (Klamroth & Wiecek, Naval Research Logistics 2000).

Indicators, of the first ``b`` unique evaluations of one run of the largest budget: hypervolume
ratio and IGD+ normalised by the exact front (:mod:`hwnas.bench.indicators`); recall (the share of
the exact front's points found, by value: thousands of points, so at most ``b / size``); and the
number of found points on the exact front.

Devices: the test devices are reported; strategy settings and the question whether ``auto``'s
pick stays were decided on the validation devices :data:`VALID_DEVICES` (those of
``search_fbnet.py``, fixed before any run). No prior variant: the public tables' priors cover 5,000
rows of 9.8e20, and the problems here have no table.

Usage:
    python bench/scripts/search_fbnet_space.py --seeds 10 --budgets 100,300,1000 \\
        --out results/benchmarks/search_fbnet_space.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.bench import Problem, load_tables, minimize
from hwnas.bench.indicators import HypervolumeRatio, IGDPlus
from hwnas.latency import atomic_write_text
from hwnas.search import Architecture, HwnasError, MetricSource, Objective, Space, get_space
from hwnas.search.pareto import pareto_mask
from hwnas.search.strategies.peers_pymoo import PymooNSGA2

from .search_benchmark import group_runs, run_logged, sort_and_report
from .search_fbnet import parse_lists, parse_strategy

__all__ = ["TEST_DEVICES", "VALID_DEVICES", "DEFAULT_STRATEGIES", "LayerCost", "fit_layer_latency",
           "space_problem", "additive_front", "ValueFrontScorer", "summarise", "markdown_table",
           "main"]

#: HELP's fbnet test devices (reported)
TEST_DEVICES = ("fpga", "raspi4", "eyeriss")
#: devices settings were decided on (as ``search_fbnet.py``; fixed before any run)
VALID_DEVICES = ("gold_6240", "titanx_1", "samsung_a50", "silver_4114")
#: ``pymoo-nsga2`` is pymoo's NSGA-II (population 20, SBX and PM with eta 3, as everywhere here)
DEFAULT_STRATEGIES = ("random", "evolution", "nsga2", "local", "surrogate", "pymoo-nsga2")

_PROBLEMS: dict[str, Problem] = {}
_SCORERS: dict[str, ValueFrontScorer] = {}


class LayerCost(MetricSource):
    """A metric that is a sum of per-(layer, operator) costs plus a constant, for chain spaces
    whose gene ``l`` is layer ``l``'s operator (FBNet's 22 layers of 9 operators).

    Args:
        name: the metric's name (``latency``, ``flops``).
        unit: its unit.
        table: ``(n_layers, n_operators)`` costs.
        constant: added to every network (the stem and head, a fitted intercept).
    """

    def __init__(self, name: str, unit: str, table: np.ndarray, constant: float = 0.0):
        super().__init__()
        self.name, self.unit = name, unit
        self.table = np.asarray(table, dtype=np.float64)
        self.constant = float(constant)

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        genes = np.array([a.genes for a in archs], dtype=np.int64)
        layers = np.arange(self.table.shape[0])
        return self.constant + self.table[layers, genes].sum(axis=1)


def fit_layer_latency(genes: np.ndarray, latency: np.ndarray, n_choices: int
                      ) -> tuple[np.ndarray, dict[str, float]]:
    """A per-(layer, operator) latency table fitted by least squares to measured networks.

    The one-hot layers plus an intercept are rank-deficient (each layer's indicators sum to 1);
    the minimum-norm solution is taken and the intercept spread over the layers, which changes
    no network's prediction.

    Args:
        genes: ``(n, n_layers)`` operators of the measured networks.
        latency: their latencies (ms).
        n_choices: operators per layer.

    Returns:
        ``(table, fit)``: the ``(n_layers, n_choices)`` table and the fit on the rows
        (``spearman``, ``max_rel_error``, ``median_rel_error``, ``r2``).
    """
    from scipy.stats import spearmanr

    genes = np.asarray(genes, dtype=np.int64)
    y = np.asarray(latency, dtype=np.float64)
    n, n_layers = genes.shape
    X = np.zeros((n, 1 + n_layers * n_choices))
    X[:, 0] = 1.0
    X[np.arange(n)[:, None], 1 + np.arange(n_layers) * n_choices + genes] = 1.0
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    table = w[1:].reshape(n_layers, n_choices) + w[0] / n_layers
    pred = X @ w
    rel = np.abs(pred - y) / np.abs(y)
    fit = {"spearman": float(spearmanr(pred, y)[0]), "max_rel_error": float(rel.max()),
           "median_rel_error": float(np.median(rel)),
           "r2": float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())}
    return table, fit


def space_problem(tables: Any, device: str, space: Space | None = None
                  ) -> tuple[Problem, dict[str, Any]]:
    """The whole-space problem of ``device``: fitted layer latency (min) x the 22 layers' MACs
    (max), as a :class:`hwnas.bench.Problem` without tables; and the latency fit's record."""
    from hwnas.meta.encoders import fbnet_layer_costs

    space = space or get_space("fbnet")
    genes = np.array([a.genes for a in tables.archs], dtype=np.int64)
    latency = tables.get_latency(device, np.arange(len(tables)))
    k = int(space.n_choices.max())
    table, fit = fit_layer_latency(genes, latency, k)
    macs = fbnet_layer_costs()[:, :, 0] / 1e6
    objectives = [Objective("latency", LayerCost(f"latency:{device}", "ms", table), "min"),
                  Objective("flops", LayerCost("flops", "M multiply-accumulates", macs), "max")]
    problem = Problem(space, objectives, name=f"fbnet-space/{device}/latency+flops")
    return problem, {"fit": fit, "latency_table": table, "flops_table": macs}


def additive_front(costs: Sequence[np.ndarray], rtol: float = 1e-12
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The exact Pareto front of a chain whose minimised objectives are sums over layers.

    Dynamic programming over the layers (the multi-objective knapsack recursion): the front of
    the first ``l + 1`` layers is among the sums of a point of the first ``l`` layers' front and
    one operator of layer ``l + 1``, since a partial chain dominated in every partial sum stays
    dominated whatever the later layers add. Two objectives.

    Args:
        costs: per objective, an ``(n_layers, n_choices)`` array of minimised per-layer costs.
        rtol: second sums within this share of their largest magnitude are equal.

    Returns:
        ``(F, genes)``: the front's ``(p, 2)`` objective sums, sorted by the first objective, and
        one ``(p, n_layers)`` genotype reaching each (ties in both sums: one kept).
    """
    a, b = (np.asarray(c, dtype=np.float64) for c in costs)
    if a.shape != b.shape or a.ndim != 2:
        raise HwnasError(f"additive_front: two (n_layers, n_choices) arrays, got {a.shape}, "
                         f"{b.shape}")
    n_layers, k = a.shape
    tol = rtol * max(1.0, float(np.abs(b).max(axis=1).sum()))
    f1, f2 = np.zeros(1), np.zeros(1)
    pointers: list[tuple[np.ndarray, np.ndarray]] = []
    for layer in range(n_layers):
        s1 = (f1[:, None] + a[layer][None, :]).ravel()
        s2 = (f2[:, None] + b[layer][None, :]).ravel()
        parent, op = np.divmod(np.arange(len(s1)), k)
        order = np.lexsort((s2, s1))  # by the first sum, ties by the second
        s1, s2, parent, op = s1[order], s2[order], parent[order], op[order]
        # a point is on the front when its second sum beats every point before it; sums that
        # differ by rounding only (the same costs added in another order) are ties
        best = np.minimum.accumulate(np.concatenate([[np.inf], s2[:-1]]))
        keep = s2 < best - tol
        f1, f2 = s1[keep], s2[keep]
        pointers.append((parent[keep], op[keep]))
    genes = np.zeros((len(f1), n_layers), dtype=np.int64)
    idx = np.arange(len(f1))
    for layer in range(n_layers - 1, -1, -1):
        parent, op = pointers[layer]
        genes[:, layer] = op[idx]
        idx = parent[idx]
    return np.column_stack([f1, f2]), genes


class ValueFrontScorer:
    """Indicators of found points against an exact front given by value (minimised ``F``).

    Recall is the share of the front's points some found point equals (to ``rtol``): the exact
    front keeps one genotype per point, and any genotype with those sums is as good.
    """

    def __init__(self, true_front: np.ndarray, rtol: float = 1e-9):
        self.true_front = np.asarray(true_front, dtype=np.float64)
        self.hv_ratio = HypervolumeRatio(self.true_front)
        self.igd_plus = IGDPlus(self.true_front)
        self.tol = rtol * np.maximum(np.abs(self.true_front).max(axis=0), 1.0)

    def on_front(self, F: np.ndarray) -> np.ndarray:
        """Per true-front point, whether some row of ``F`` equals it (to the tolerance)."""
        F = np.asarray(F, dtype=np.float64).reshape(-1, self.true_front.shape[1])
        hit = np.zeros(len(self.true_front), dtype=bool)
        order = np.argsort(self.true_front[:, 0])
        first = self.true_front[order, 0]
        for f in F:
            lo, hi = np.searchsorted(first, [f[0] - self.tol[0], f[0] + self.tol[0]])
            near = order[lo:hi]
            hit[near[np.all(np.abs(self.true_front[near] - f) <= self.tol, axis=1)]] = True
        return hit

    def __call__(self, F: np.ndarray) -> dict[str, float]:
        """``recall``, ``on_front`` (points found), ``hv_ratio``, ``igd_plus``, ``front_size``."""
        F = np.asarray(F, dtype=np.float64).reshape(-1, self.true_front.shape[1])
        front = F[pareto_mask(F)] if len(F) else F
        hit = self.on_front(front)
        return {"recall": float(hit.mean()), "on_front": int(hit.sum()),
                "hv_ratio": self.hv_ratio(front), "igd_plus": self.igd_plus(front),
                "front_size": int(len(front))}


def _run(problem: Problem, spec: str, seed: int, budget: int) -> Any:
    name, options = parse_strategy(spec)
    if name == "pymoo-nsga2":
        strategy: Any = PymooNSGA2(problem.space, problem.n_objectives, seed,
                                   options.get("pop_size", 20), 3.0, 3.0)
        return minimize(problem, strategy, budget, seed)
    return minimize(problem, name, budget, seed, strategy_options=options)


def _job(args: tuple[str, str, int, list[int]]) -> dict[str, Any]:
    key, spec, seed, budgets = args
    problem, scorer = _PROBLEMS[key], _SCORERS[key]
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a stalled run is recorded by its evaluations
            result = _run(problem, spec, seed, max(budgets))
        wall = time.perf_counter() - t0
        F = np.array([r.F for r in result.records], dtype=np.float64)
        at = {str(b): {**scorer(F[:b]), "evaluations": int(min(b, len(F)))} for b in budgets}
    except Exception as e:  # one failing strategy must not sink the benchmark
        return {"problem": key, "strategy": spec, "seed": seed,
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
    choice = result.config.get("strategy_choice")
    return {"problem": key, "strategy": spec, "seed": seed, "evaluations": len(F),
            "asks": result.asks, "stopped": result.stopped, "wall_s": wall,
            "ms_per_eval": 1e3 * wall / max(1, len(F)), "at": at,
            **({"auto_pick": choice["strategy"], "auto_rule": choice["rule"]} if choice else {})}


def summarise(runs: list[dict], budgets: list[int]) -> dict[str, dict[str, dict[str, float]]]:
    """problem -> strategy -> medians over seeds (HV ratio, IGD+, recall, points found)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (key, strategy), rs in group_runs(runs).items():
        s: dict[str, float] = {"seeds": len(rs),
                               "wall_s": float(np.median([r["wall_s"] for r in rs])),
                               "ms_per_eval": float(np.median([r["ms_per_eval"] for r in rs]))}
        for b in budgets:
            for m in ("hv_ratio", "igd_plus", "recall", "on_front"):
                s[f"{m}@{b}"] = float(np.median([r["at"][str(b)][m] for r in rs]))
            hv = [r["at"][str(b)]["hv_ratio"] for r in rs]
            s[f"hv_ratio_q25@{b}"] = float(np.percentile(hv, 25))
            s[f"hv_ratio_q75@{b}"] = float(np.percentile(hv, 75))
        out.setdefault(key, {})[strategy] = s
    return out


def markdown_table(summary: dict, problems: dict[str, dict], strategies: list[str],
                   budgets: list[int], devices: Sequence[str]) -> str:
    """Rows device x strategy: median HV ratio, IGD+ and points found per budget."""
    sl = " / ".join(str(b) for b in budgets)
    lines = [f"| device (front) | strategy | HV ratio {sl} | IGD+ {sl} | front points found {sl} "
             "| ms/eval |", "| --- | --- | --- | --- | --- | ---: |"]
    for key, meta in problems.items():
        if meta["device"] not in devices:
            continue
        for strategy in strategies:
            s = summary.get(key, {}).get(strategy)
            label = f"{meta['device']} ({meta['true_front_size']})"
            if s is None:
                lines.append(f"| {label} | {strategy} | - | - | - | - |")
                continue
            hv = " / ".join(f"{s[f'hv_ratio@{b}']:.4f}" for b in budgets)
            igd = " / ".join(f"{s[f'igd_plus@{b}']:.4f}" for b in budgets)
            found = " / ".join(f"{s[f'on_front@{b}']:.0f}" for b in budgets)
            lines.append(f"| {label} | {strategy} | {hv} | {igd} | {found} | "
                         f"{s['ms_per_eval']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="table folder (default: the bundled tables)")
    ap.add_argument("--devices", default=",".join(TEST_DEVICES),
                    help="comma-separated latency columns of the fbnet table")
    ap.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                    help="comma-separated registered strategies or pymoo-nsga2; NAME@k=v,... "
                         "for options (separate such variants with ';'); auto runs once per "
                         "device besides, to record its pick")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="100,300,1000")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", default="results/benchmarks/search_fbnet_space.json")
    args = ap.parse_args()

    t_start = time.perf_counter()
    try:
        budgets, strategies, devices = parse_lists(args.budgets, args.strategies, args.devices)
    except ValueError:
        print(f"search_fbnet_space: --budgets must be integers, got {args.budgets!r}",
              file=sys.stderr)
        return 2
    from hwnas.search import list_strategies

    valid = set(list_strategies()) | {"pymoo-nsga2"}
    tables = load_tables("fbnet", args.data)
    bad = [d for d in devices if d not in tables.devices]
    unknown = [s for s in strategies if parse_strategy(s)[0] not in valid]
    wrong = []
    if bad:
        wrong.append(f"unknown devices {bad} (valid: {', '.join(tables.devices)})")
    if unknown:
        wrong.append(f"unknown strategies {unknown} (valid: {', '.join(sorted(valid))})")
    if args.seeds < 1 or not budgets or min(budgets) < 1:
        wrong.append("--seeds and --budgets must be at least 1")
    if wrong:
        print(f"search_fbnet_space: {'; '.join(wrong)}", file=sys.stderr)
        return 2
    problems: dict[str, dict[str, Any]] = {}
    for d in devices:
        problem, record = space_problem(tables, d)
        lat, flops = record["latency_table"], record["flops_table"]
        t0 = time.perf_counter()
        front, genes = additive_front([lat, -flops])
        front_s = time.perf_counter() - t0
        # the front's genotypes evaluated by the problem itself: the DP and the sources agree
        _, F, _ = problem.evaluate([problem.space.from_genes(g) for g in genes])
        if not np.allclose(F, front, rtol=1e-9, atol=1e-9):
            print(f"search_fbnet_space: {d}: the exact front disagrees with the problem's "
                  "evaluation", file=sys.stderr)
            return 1
        _PROBLEMS[problem.name], _SCORERS[problem.name] = problem, ValueFrontScorer(front)
        problems[problem.name] = {
            "device": d, "true_front_size": int(len(front)), "front_s": front_s,
            "latency_fit": record["fit"], "true_front": front.tolist(),
            "latency_range_ms": [float(front[:, 0].min()), float(front[:, 0].max())],
            "flops_range_m": [float(-front[:, 1].max()), float(-front[:, 1].min())]}
        print(f"{d}: layer latency fit Spearman {record['fit']['spearman']:.4f}, largest "
              f"relative error {record['fit']['max_rel_error']:.2g}; exact front "
              f"{len(front)} points ({front_s:.2f}s)", file=sys.stderr)
    jobs = [(k, s, seed, budgets) for seed in range(args.seeds) for k in problems
            for s in strategies]
    print(f"{len(jobs)} runs ({len(problems)} devices x {len(strategies)} strategies x "
          f"{args.seeds} seeds, {max(budgets)} unique evaluations each) on {args.jobs} "
          "processes", file=sys.stderr)
    partial = Path(f"{args.out}.partial.jsonl")
    runs = run_logged(_job, jobs, args.jobs, partial, every=5)
    errors = sort_and_report(runs)
    summary = summarise(runs, budgets)
    # what a user's default search runs on each problem, at the smallest budget, seed 0
    auto: dict[str, dict[str, Any]] = {}
    for key in problems:
        r = _job((key, "auto", 0, budgets[:1]))
        same = next((x for x in runs if x["problem"] == key and x["strategy"] == "surrogate"
                     and x["seed"] == 0 and "at" in x), None)
        auto[key] = {k: r.get(k) for k in ("auto_pick", "auto_rule", "error")}
        auto[key]["hv_ratio"] = r.get("at", {}).get(str(budgets[0]), {}).get("hv_ratio")
        if same is not None:
            auto[key]["surrogate_hv_ratio"] = same["at"][str(budgets[0])]["hv_ratio"]
    picks = sorted({f"{a['auto_pick']} ({a['auto_rule']})" for a in auto.values()
                    if a.get("auto_pick")})
    total = time.perf_counter() - t_start
    texts = []
    for title, group in (("HELP's fbnet test devices", TEST_DEVICES),
                         ("validation devices", VALID_DEVICES)):
        if any(m["device"] in group for m in problems.values()):
            texts.append(f"### The whole FBNet space, layer latency x flops (max), {title}; "
                         f"{args.seeds} seeds, medians\n\n"
                         + markdown_table(summary, problems, strategies, budgets, group))
    report = "\n\n".join(texts)
    print(report)
    if picks:
        print(f"auto picked: {', '.join(picks)}")
    print(f"{len(runs) - len(errors)} runs ok, {len(errors)} failed; total {total:.0f}s")
    record = {"benchmark": "search_fbnet_space", "space": "fbnet (whole space, 9^22)",
              "objectives": ["latency, per-layer table fitted to the device (min)",
                             "flops of the 22 layers, millions (max)"],
              "budgets": budgets, "seeds": args.seeds, "strategies": strategies,
              "test_devices": list(TEST_DEVICES), "valid_devices": list(VALID_DEVICES),
              "auto_picked": picks, "auto": auto,
              "command": " ".join(["python", "bench/scripts/search_fbnet_space.py",
                                   *sys.argv[1:]]),
              "total_s": total, "problems": problems, "summary": summary, "runs": runs,
              "markdown": report}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(record, indent=1, default=float))
    if not errors:
        partial.unlink(missing_ok=True)
    return 0 if not errors else 1
