"""INT8 against FP32, OpenVINO against ONNX Runtime, on the same NB201 networks on this CPU.

Measures N seeded NB201 architectures (batch 1, one thread) on four runtimes side by side:
``ort-cpu`` (FP32), ``ort-cpu-int8`` (static QDQ, :mod:`hwnas.latency.quantize`), ``ov-cpu`` and
``ov-cpu-int8`` (OpenVINO reading the same two files). The runtimes are interleaved per
architecture, in an order that rotates from one architecture to the next, so a change in host
speed hits all four alike; and each measurement is paired with that runtime's fixed reference
architecture (the protocol of :mod:`hwnas.latency.profile`): a latency is the ratio of the two
interleaved medians times the reference's median over the whole run, which cancels the host's
speed states.

Reported: the INT8 speed-up per architecture (FP32 / INT8 latency: median, p10, p90, min, max and
how many architectures INT8 is slower on), OpenVINO against ONNX Runtime at each precision, the
Spearman rank correlation between the four tables and the overlap of their fastest 10% (does a
search for an INT8 deployment pick other networks than one for FP32?).

Usage:
    python bench/scripts/precision_speedup.py --archs 200 --seed 0 \
        --out results/benchmarks/precision_speedup.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwnas.bench import load_tables
from hwnas.latency import (
    MeasurementProtocol,
    RuntimeConfig,
    atomic_write_text,
    describe_environment,
    export_onnx,
    get_runtime,
    measure,
    reference_arch,
)
from hwnas.latency.quantize import quantize_onnx
from hwnas.search import get_space

__all__ = ["RUNTIMES", "summarise", "markdown", "analyse", "main"]

RUNTIMES = ("ort-cpu", "ort-cpu-int8", "ov-cpu", "ov-cpu-int8")
#: (name, numerator runtime, denominator runtime): a ratio > 1 means the denominator is faster
RATIOS = (
    ("int8_speedup_ort", "ort-cpu", "ort-cpu-int8"),
    ("int8_speedup_ov", "ov-cpu", "ov-cpu-int8"),
    ("ov_speedup_fp32", "ort-cpu", "ov-cpu"),
    ("ov_speedup_int8", "ort-cpu-int8", "ov-cpu-int8"),
)


def _stats(x: np.ndarray) -> dict[str, Any]:
    return {"median": float(np.median(x)), "p10": float(np.percentile(x, 10)),
            "p90": float(np.percentile(x, 90)), "min": float(x.min()), "max": float(x.max()),
            "n": int(len(x)), "slower": int((x < 1.0).sum()),
            "slower_by_5pct": int((x < 0.95).sum())}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Tables, ratios, rank correlations and top-10% overlaps from the per-architecture rows.

    A runtime's latency of an architecture is its paired ratio times the median of that
    runtime's reference medians over the run (as :func:`hwnas.latency.aggregate` does).
    """
    ok = [r for r in rows if all(r["runtimes"].get(n, {}).get("ratio") for n in RUNTIMES)]
    errors = {n: sum("error" in r["runtimes"].get(n, {}) for r in rows) for n in RUNTIMES}
    if not ok:
        return {"architectures": 0, "runtime_failures": errors}
    level = {n: float(np.median([r["runtimes"][n]["reference_ms"] for r in ok])) for n in RUNTIMES}
    lat = {n: np.array([r["runtimes"][n]["ratio"] for r in ok]) * level[n] for n in RUNTIMES}
    out: dict[str, Any] = {
        "architectures": len(ok), "runtime_failures": errors,
        "reference_level_ms": level,
        "median_latency_ms": {n: float(np.median(v)) for n, v in lat.items()},
        "median_ci_rel": {n: float(np.median([r["runtimes"][n]["ci_rel"] for r in ok]))
                          for n in RUNTIMES},
        "ratios": {name: _stats(lat[a] / lat[b]) for name, a, b in RATIOS},
    }
    k = max(1, math.ceil(0.1 * len(ok)))
    top = {n: set(np.argsort(v, kind="stable")[:k].tolist()) for n, v in lat.items()}
    out["spearman"], out["top10pct_overlap"] = {}, {}
    for i, a in enumerate(RUNTIMES):
        for b in RUNTIMES[i + 1:]:
            out["spearman"][f"{a} vs {b}"] = float(spearmanr(lat[a], lat[b])[0])
            out["top10pct_overlap"][f"{a} vs {b}"] = len(top[a] & top[b]) / k
    out["top10pct_size"] = k
    out["latency_ms"] = {n: v.tolist() for n, v in lat.items()}
    out["archs"] = [r["arch"] for r in ok]
    return out


def markdown(result: dict[str, Any]) -> str:
    """The summary as a Markdown page."""
    s = result["summary"]
    lines = [
        "# INT8 vs FP32, OpenVINO vs ONNX Runtime (NB201, batch 1, 1 thread)", "",
        f"`{result['command']}`", "",
        f"{s.get('architectures', 0)} of {result['archs']} drawn architectures measured on all "
        f"four runtimes (stopped: {result.get('stopped', 'still running')}; "
        f"{len(result['failed'])} failed to export or quantize; runtime failures: "
        f"{s.get('runtime_failures')}), {result['elapsed_s'] / 60:.1f} min; CPU: "
        f"{result['environment'].get('cpu_model')}; load average at start "
        f"{result['load_average_start']}, at the end {result.get('load_average_now')}; median "
        f"{result.get('seconds_per_arch_median') or 0:.0f} s per architecture (export, "
        "quantization, four sessions, measurements).", "",
    ]
    if not s.get("architectures"):
        return "\n".join(lines) + "\n"
    lines += ["| runtime | median latency ms | reference level ms | median CI half-width |",
              "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {s['median_latency_ms'][n]:.3f} | {s['reference_level_ms'][n]:.3f} | "
              f"{s['median_ci_rel'][n]:.1%} |" for n in RUNTIMES]
    lines += ["", "Per-architecture ratios (> 1: the second runtime is faster):", "",
              "| ratio | median | p10 | p90 | min | max | second slower | slower by > 5% |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, a, b in RATIOS:
        r = s["ratios"][name]
        lines.append(f"| {a} / {b} | {r['median']:.3f} | {r['p10']:.3f} | {r['p90']:.3f} | "
                     f"{r['min']:.3f} | {r['max']:.3f} | {r['slower']} of {r['n']} | "
                     f"{r['slower_by_5pct']} |")
    lines += ["", f"Rank agreement between the tables (top 10% = {s['top10pct_size']} fastest):",
              "", "| pair | Spearman | top-10% overlap |", "| --- | --- | --- |"]
    lines += [f"| {p} | {rho:.4f} | {s['top10pct_overlap'][p]:.0%} |"
              for p, rho in s["spearman"].items()]
    return "\n".join(lines) + "\n"


def analyse(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """From two runs' results: each runtime's repeatability (Spearman between the runs on their
    common architectures: the ceiling the cross-runtime Spearman is to be read against), and how
    the INT8 speed-ups of ``second`` vary with the number of pooling and convolution edges."""
    a, b = first["summary"], second["summary"]
    pos = {x: i for i, x in enumerate(a["archs"])}
    common = [i for i, x in enumerate(b["archs"]) if x in pos]
    out: dict[str, Any] = {"common_architectures": len(common), "repeatability_spearman": {}}
    for n in RUNTIMES:
        x = [a["latency_ms"][n][pos[b["archs"][i]]] for i in common]
        y = [b["latency_ms"][n][i] for i in common]
        out["repeatability_spearman"][n] = float(spearmanr(x, y)[0])
    lat = {n: np.array(b["latency_ms"][n]) for n in RUNTIMES}
    pools = np.array([x.count("avg_pool_3x3") for x in b["archs"]])
    convs = np.array([x.count("nor_conv") for x in b["archs"]])
    for name, num, den in RATIOS[:2]:
        sp = lat[num] / lat[den]
        out[name] = {
            "spearman_with_avg_pool_edges": float(spearmanr(sp, pools)[0]),
            "spearman_with_conv_edges": float(spearmanr(sp, convs)[0]),
            "median_by_avg_pool_edges": {int(k): {"n": int((pools == k).sum()),
                                                  "median": float(np.median(sp[pools == k]))}
                                         for k in np.unique(pools)},
        }
    return out


def _write(args: argparse.Namespace, result: dict[str, Any]) -> None:
    result["summary"] = summarise(result["rows"])
    result["elapsed_s"] = time.perf_counter() - result.pop("_t0")
    result["load_average_now"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds_per_arch_median"] = (float(np.median([r["seconds"] for r in result["rows"]]))
                                         if result["rows"] else None)
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    atomic_write_text(Path(args.out).with_suffix(".md"), markdown(result))
    result["_t0"] = time.perf_counter() - result["elapsed_s"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-runs", type=int, default=10)
    ap.add_argument("--max-runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", type=float, default=0.05,
                    help="target relative CI half-width of each median")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="minutes; no new architecture is started after this (the first ones "
                         "of the seeded draw are still a seeded random sample)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core")
    ap.add_argument("--out", type=Path,
                    default=Path("results/benchmarks/precision_speedup.json"))
    ap.add_argument("--analyse", nargs=2, type=Path, default=None, metavar=("FIRST", "SECOND"),
                    help="measure nothing: compare two runs' JSON files into --out")
    args = ap.parse_args(argv)
    if args.analyse:
        first, second = (json.loads(p.read_text()) for p in args.analyse)
        atomic_write_text(args.out, json.dumps(analyse(first, second), indent=1) + "\n")
        print(f"wrote {args.out}")
        return 0
    start = time.perf_counter()  # the time limit counts the set-up (reference models) too
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    space = get_space("nb201")
    tables = load_tables("nb201")
    idx = np.random.default_rng(args.seed).choice(len(tables), args.archs, replace=False)
    config = RuntimeConfig(batch=1, intra_op_threads=1, inter_op_threads=1)
    runtimes = {n: get_runtime(n, config) for n in RUNTIMES}
    for rt in runtimes.values():
        rt.require()
    proto = MeasurementProtocol(warmup_runs=args.warmup, min_runs=args.min_runs,
                                max_runs=args.max_runs, target_precision=args.precision)
    ref = reference_arch(space)
    quantize_onnx(space, ref)
    references = {n: rt.timer(space, ref) for n, rt in runtimes.items()}
    result: dict[str, Any] = {
        "command": "python bench/scripts/precision_speedup.py " + " ".join(
            argv if argv is not None else __import__("sys").argv[1:]),
        "archs": args.archs, "seed": args.seed, "protocol": proto.to_dict(),
        "runtimes": {n: rt.describe() for n, rt in runtimes.items()},
        "reference": space.format(ref), "environment": describe_environment(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "rows": [], "failed": [], "_t0": start,
    }
    result["stopped"] = "still running"
    for pos, i in enumerate(idx):
        if args.time_limit and time.perf_counter() - result["_t0"] > 60 * args.time_limit:
            result["stopped"] = f"time limit ({args.time_limit} min) after {pos} architectures"
            break
        arch = tables.archs[int(i)]
        t0 = time.perf_counter()
        row: dict[str, Any] = {"index": int(i), "arch": space.format(arch), "runtimes": {}}
        try:
            export_onnx(space, arch)
            quantize_onnx(space, arch)
        except Exception as e:  # an architecture that cannot be prepared is recorded, not fatal
            result["failed"].append({"index": int(i), "error": f"{type(e).__name__}: {e}"})
            continue
        row["prepare_s"] = time.perf_counter() - t0
        order = RUNTIMES[pos % 4:] + RUNTIMES[:pos % 4]  # rotate who goes first
        for n in order:
            try:
                m = measure(runtimes[n].timer(space, arch), proto, references[n])
            except Exception as e:  # one runtime failing on a network is a finding, not fatal
                row["runtimes"][n] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
                continue
            row["runtimes"][n] = {"median_ms": m.median_ms, "reference_ms": m.reference_ms,
                                  "ratio": m.ratio, "ci_rel": m.ci_rel, "n": m.n}
        row["seconds"] = time.perf_counter() - t0
        result["rows"].append(row)
        r = row["runtimes"]
        print(f"[{pos + 1}/{args.archs}] {row['seconds']:.1f}s (prepare {row['prepare_s']:.1f}s) "
              + " ".join(f"{n}={r[n].get('median_ms', math.nan):.3f}" for n in RUNTIMES),
              flush=True)
        if (pos + 1) % 5 == 0:  # partial results survive an interrupted run
            _write(args, result)
    else:
        result["stopped"] = "all architectures"
    _write(args, result)
    s = result["summary"]
    for name, a, b in RATIOS:
        r = s["ratios"][name]
        print(f"{a}/{b}: median {r['median']:.3f} p10 {r['p10']:.3f} p90 {r['p90']:.3f} "
              f"min {r['min']:.3f} max {r['max']:.3f}; {b} slower on {r['slower']}/{r['n']}")
    for p, rho in s["spearman"].items():
        print(f"spearman {p}: {rho:.4f}, top-10% overlap {s['top10pct_overlap'][p]:.0%}")
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')} "
          f"({result['elapsed_s'] / 60:.1f} min)")
    return 0
