"""Is one strategy ahead of another beyond seed noise? A per-cell test over a search benchmark.

The search benchmark reports medians over seeds; with 10 seeds a median recall moves by one or two
front members between reruns, so "behind on a cell" can be noise. This script reads the runs of a
search-benchmark JSON (``search_benchmark.py --out``) and, for two strategies and each problem and
budget, compares the per-seed values of a metric (front recall, hypervolume ratio):

- median and mean of each strategy, and the mean difference;
- the probability of superiority ``P(A > B) + P(A = B) / 2`` over seed pairs (the common-language
  effect size; McGraw & Wong, Psychological Bulletin 1992), 0.5 when neither is ahead;
- the two-sided Mann-Whitney U test's p-value (Mann & Whitney, Ann. Math. Statist. 1947; the
  asymptotic form with the tie correction, since recall takes few distinct values), and which cells
  stay significant at 5% after Holm's step-down correction over all the cells tested (Holm, Scand.
  J. Statist. 1979).

The seeds of the two strategies are independent runs, so the unpaired test is the right one.

Usage::

    python bench/scripts/search_seed_test.py RESULT.json [--a nsga2] [--b pymoo-nsga2]
        [--metrics recall,hv_ratio] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

from hwnas.latency.table import atomic_write_text

__all__ = ["superiority", "holm", "seed_tests", "markdown", "main"]


def superiority(a: np.ndarray, b: np.ndarray) -> float:
    """``P(A > B) + P(A = B) / 2`` over all pairs of one value of ``a`` and one of ``b``."""
    diff = np.subtract.outer(np.asarray(a, float), np.asarray(b, float))
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def holm(pvalues: list[float], alpha: float = 0.05) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects at family-wise level ``alpha``."""
    order = np.argsort(pvalues, kind="stable")
    reject = [False] * len(pvalues)
    m = len(pvalues)
    for rank, i in enumerate(order):
        if pvalues[i] > alpha / (m - rank):
            break  # every larger p-value is kept too
        reject[i] = True
    return reject


def seed_tests(result: dict, a: str, b: str, metrics: list[str],
               alpha: float = 0.05) -> list[dict]:
    """One record per (problem, budget, metric): both strategies' summaries and the test."""
    values: dict[tuple, list[float]] = defaultdict(list)
    for run in result["runs"]:
        if run["strategy"] not in (a, b) or "at" not in run:
            continue
        for budget, point in run["at"].items():
            for metric in metrics:
                if point.get(metric) is not None:
                    values[(run["problem"], int(budget), metric, run["strategy"])].append(
                        float(point[metric]))
    records = []
    cells = sorted({k[:3] for k in values})
    for problem, budget, metric in cells:
        va = np.array(values.get((problem, budget, metric, a), []))
        vb = np.array(values.get((problem, budget, metric, b), []))
        if len(va) < 2 or len(vb) < 2:
            continue
        if np.ptp(np.concatenate([va, vb])) == 0:
            p = 1.0  # every value equal: nothing to test
        else:
            p = float(mannwhitneyu(va, vb, alternative="two-sided", method="asymptotic").pvalue)
        records.append({
            "problem": problem, "budget": budget, "metric": metric,
            "n_a": len(va), "n_b": len(vb),
            "median_a": float(np.median(va)), "median_b": float(np.median(vb)),
            "mean_a": float(va.mean()), "mean_b": float(vb.mean()),
            "mean_diff": float(va.mean() - vb.mean()),
            "superiority": superiority(va, vb), "p": p,
        })
    for rec, rejected in zip(records, holm([r["p"] for r in records], alpha), strict=True):
        rec["significant"] = rejected
    return records


def markdown(records: list[dict], a: str, b: str, alpha: float = 0.05) -> str:
    """A table of the records and a one-line count per metric."""
    lines = [f"| problem | budget | metric | median {a} | median {b} | mean {a} | mean {b} "
             f"| P({a} > {b}) | p (Mann-Whitney) | Holm {alpha:g} |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        verdict = ("" if not r["significant"]
                   else (f"{a} ahead" if r["mean_diff"] > 0 else f"{b} ahead"))
        lines.append(
            f"| {r['problem']} | {r['budget']} | {r['metric']} | {r['median_a']:.4f} "
            f"| {r['median_b']:.4f} | {r['mean_a']:.4f} | {r['mean_b']:.4f} "
            f"| {r['superiority']:.2f} | {r['p']:.3f} | {verdict} |")
    lines.append("")
    for metric in sorted({r["metric"] for r in records}):
        rs = [r for r in records if r["metric"] == metric]
        ahead = sum(r["significant"] and r["mean_diff"] > 0 for r in rs)
        behind = sum(r["significant"] and r["mean_diff"] < 0 for r in rs)
        geq = sum(r["mean_a"] >= r["mean_b"] for r in rs)
        lines.append(f"{metric}: {a} mean >= {b} mean in {geq}/{len(rs)} cells; significantly "
                     f"ahead in {ahead}, behind in {behind} (Holm, family of {len(records)}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry: read a search-benchmark JSON, print the table, optionally write the records."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result", type=Path, help="a search_benchmark.py --out JSON")
    p.add_argument("--a", default="nsga2", help="strategy A (default nsga2)")
    p.add_argument("--b", default="pymoo-nsga2", help="strategy B (default pymoo-nsga2)")
    p.add_argument("--metrics", default="recall,hv_ratio",
                   help="comma-separated metrics of the runs' 'at' records")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--out", type=Path, help="write the records and the table here (JSON)")
    args = p.parse_args(argv)
    try:
        result = json.loads(args.result.read_text())
        runs = result["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error: {args.result} is not a search-benchmark JSON with runs ({err})",
              file=sys.stderr)
        return 2
    found = {r.get("strategy") for r in runs}
    for name in (args.a, args.b):
        if name not in found:
            print(f"error: strategy {name!r} has no runs in {args.result}; it has: "
                  f"{', '.join(sorted(map(str, found)))}", file=sys.stderr)
            return 2
    metrics = [m for m in args.metrics.split(",") if m]
    records = seed_tests(result, args.a, args.b, metrics, args.alpha)
    if not records:
        print(f"error: no metric of {metrics} in the runs of {args.result}", file=sys.stderr)
        return 2
    text = markdown(records, args.a, args.b, args.alpha)
    print(text)
    if args.out:
        atomic_write_text(args.out, json.dumps({
            "benchmark": "search_seed_test", "source": args.result.name, "a": args.a,
            "b": args.b, "alpha": args.alpha, "seeds": result.get("seeds"),
            "records": records, "report_markdown": text}, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
