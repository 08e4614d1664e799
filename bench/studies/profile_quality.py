"""How far a profile made by ``hwnas profile`` can be trusted on this machine.

Measures, side by side in one run:
  * repeatability: the same N NB201 architectures profiled twice (two independent profiles, each
    with its own store), Spearman rho between the two, for several round counts;
  * throughput: architectures profiled per minute (exports cached beforehand, as in a resumed or
    repeated profile; the first export costs 0.2-0.7 s more per architecture);
  * overhead: the profiler's median vs a bare ``InferenceSession.run`` loop on the same session,
    interleaved, as a ratio;
  * agreement: rho between this CPU's profile and each public CPU table (same network?).

Usage:
    python bench/scripts/profile_quality.py --archs 50 --cpu 0 \
        --out results/benchmarks/profile_quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from hwnas.bench import load_tables
from hwnas.latency import (
    MeasurementProtocol,
    Profiler,
    RuntimeConfig,
    Target,
    atomic_write_text,
    describe_environment,
    export_onnx,
    get_runtime,
    make_session,
    measure,
)
from hwnas.search import get_space

__all__ = ["overhead", "main"]


def overhead(space, archs, repeats: int) -> dict:
    """Median ratio profiler / bare loop, same session, alternating 2x per architecture."""
    config = RuntimeConfig()
    ratios = []
    for arch in archs:
        sess = make_session(export_onnx(space, arch), config, "CPUExecutionProvider")
        feed = {"x": np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)}
        runtime = get_runtime("ort-cpu")
        proto = MeasurementProtocol(warmup_runs=10, min_runs=repeats, max_runs=repeats)

        def bare(n: int, sess=sess, feed=feed) -> float:
            t = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                sess.run(None, feed)
                t.append(time.perf_counter_ns() - t0)
            return float(np.median(t)) / 1e6

        timer = runtime.timer(space, arch)
        bare(10)
        pairs = []
        for _ in range(2):
            b = bare(repeats)
            p = measure(timer, proto).median_ms
            pairs.append(p / b)
        ratios.append(float(np.median(pairs)))
    return {"architectures": len(archs), "runs": repeats, "median_ratio": float(np.median(ratios)),
            "p10_ratio": float(np.percentile(ratios, 10)),
            "p90_ratio": float(np.percentile(ratios, 90))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="paired:1,paired:2,unpaired:1,unpaired:2",
                    help="protocols to compare: [un]paired:ROUNDS, comma-separated")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core")
    ap.add_argument("--data", default=None,
                       help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/profile_quality.json"))
    args = ap.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    space = get_space("nb201")
    tables = load_tables("nb201", args.data)
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(tables), args.archs, replace=False)
    targets = [Target(tables.archs[i], int(i)) for i in idx]
    for t in targets:  # export once, so the timings below measure profiling, not exporting
        export_onnx(space, t.arch)
    result: dict = {"archs": args.archs, "seed": args.seed, "environment": describe_environment(),
                    "variants": {}}
    runtime = get_runtime("ort-cpu")
    cpu_devices = [d for d in tables.devices if d.startswith(("gold", "silver"))]
    for variant in args.variants.split(","):
        mode, rounds = variant.split(":")
        paired, rounds = mode == "paired", int(rounds)
        proto = MeasurementProtocol(rounds=rounds, paired_reference=paired)
        profiles, seconds = [], []
        for rep in range(2):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                table = Profiler(space, runtime, proto, tmp, f"rep{rep}").run(targets)
                seconds.append(time.perf_counter() - t0)
                profiles.append(table.frame.set_index("index")["latency_ms"].loc[idx].to_numpy())
        rho = float(spearmanr(profiles[0], profiles[1])[0])
        agree = {d: float(spearmanr(profiles[0], tables.get_latency(d, idx))[0])
                 for d in cpu_devices}
        result["variants"][variant] = {
            "spearman_between_profiles": rho,
            "archs_per_minute": float(args.archs / np.median(seconds) * 60),
            "seconds_per_profile": seconds,
            "spearman_vs_public_cpu": agree,
        }
        print(f"{variant}: repeatability rho={rho:.4f}  "
              f"throughput={args.archs / np.median(seconds) * 60:.0f} archs/min  "
              + "  ".join(f"{d}={v:.3f}" for d, v in agree.items()), flush=True)
    result["overhead"] = overhead(space, [t.arch for t in targets[:10]], repeats=100)
    o = result["overhead"]
    print(f"overhead: profiler/bare median ratio {o['median_ratio']:.4f} "
          f"(p10 {o['p10_ratio']:.4f}, p90 {o['p90_ratio']:.4f}) over {o['architectures']} "
          "architectures", flush=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")

