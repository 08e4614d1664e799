"""How well an operator lookup table predicts whole-network latency on this CPU.

Builds an NB201 operator LUT (:func:`hwnas.latency.lut.build_lut`: kernels measured on this
device, ``a * sum + b`` fitted on a calibration set), then measures ``--archs`` other random
NB201 networks whole with the same protocol (ONNX Runtime CPU, 1 thread, rounds interleaved in
time, the minimum of the round medians) and compares. Reported for the fitted LUT, the plain
(unfitted) kernel sum, and FLOPs (rank correlation; and an affine fit on the same calibration
set): the fraction predicted within +-10% and +-5%, Spearman rho, Kendall tau, MAPE. Also how
often the analytic kernel enumeration matches ONNX Runtime's optimised graph, and how well two
rounds of the ground truth itself agree (the noise floor).

Anchors: nn-Meter (Zhang et al., MobiSys 2021) reports 99.0% of models within +-10% with kernel
prediction on its CPU, and about 91% for a plain operator sum.

Usage:
    python bench/scripts/lut_accuracy.py --archs 300 --seed 0 \
        --out results/benchmarks/lut_accuracy.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

__all__ = ["scores", "rank_scores", "draw", "main"]


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    rel = np.abs(pred - true) / true
    return {
        "within_10pct": float(np.mean(rel <= 0.10)),
        "within_5pct": float(np.mean(rel <= 0.05)),
        "spearman_rho": float(spearmanr(pred, true).statistic),
        "kendall_tau": float(kendalltau(pred, true).statistic),
        "mape": float(np.mean(rel)),
    }


def rank_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    return {"spearman_rho": float(spearmanr(pred, true).statistic),
            "kendall_tau": float(kendalltau(pred, true).statistic)}


def draw(space, n_eval: int, n_cal: int, seed: int):
    """Disjoint evaluation and calibration sets of distinct architectures."""
    rng = np.random.default_rng(seed)
    seen: dict = {}
    while len(seen) < n_eval + n_cal:
        seen.setdefault(space.sample(rng), None)
    archs = list(seen)
    return archs[:n_eval], archs[n_eval:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=300, help="evaluated architectures")
    ap.add_argument("--calibration", type=int, default=30, help="calibration architectures")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=1, help="core to pin to (-1: no pinning)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per measurement")
    ap.add_argument("--kernel-rounds", type=int, default=3,
                    help="rounds for the kernel models (cheap; default 3)")
    ap.add_argument("--min-runs", type=int, default=30)
    ap.add_argument("--max-runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=5,
                    help="calls per chunk (paired timing alternates chunks with the reference)")
    ap.add_argument("--check-graphs", type=int, default=30,
                    help="evaluated networks whose kernels are checked against ORT's graph")
    ap.add_argument("--unpaired-lut", action="store_true",
                    help="build the LUT without the paired reference (plain min of rounds)")
    ap.add_argument("--lut-dir", default=None, help="also save the LUT here")
    ap.add_argument("--wait-for-load", type=float, default=0.0,
                    help="first wait until the 1-minute load average is below this (0: don't)")
    ap.add_argument("--wait-max", type=float, default=1800.0, help="longest wait, seconds")
    ap.add_argument("--out", default="results/benchmarks/lut_accuracy.json")
    args = ap.parse_args(argv)

    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    waited = 0.0
    if args.wait_for_load > 0:
        while os.getloadavg()[0] >= args.wait_for_load and waited < args.wait_max:
            time.sleep(10)
            waited += 10
    loads = [os.getloadavg()[0]]

    from hwnas.latency import MeasurementProtocol, RuntimeConfig, describe_environment, export_onnx
    from hwnas.latency.lut import (
        REFERENCE_ARCHS,
        build_lut,
        graph_kernels,
        kernels,
        measure_networks,
        network_timer,
    )
    from hwnas.search import get_space, model_stats

    space = get_space("nb201")
    config = RuntimeConfig(intra_op_threads=1, inter_op_threads=1, graph_optimization="all")

    def protocol(rounds: int) -> MeasurementProtocol:
        return MeasurementProtocol(warmup_runs=args.warmup, min_runs=args.min_runs,
                                   max_runs=args.max_runs, chunk=args.chunk, rounds=rounds)

    evaluated, calibration = draw(space, args.archs, args.calibration, args.seed)
    t0 = time.perf_counter()

    def progress(label: str):
        state = {"last": 0.0}

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - state.get("load", 0.0) > 10:
                state["load"] = now
                loads.append(os.getloadavg()[0])
            if now - state["last"] > 15 or done == total:
                state["last"] = now
                print(f"  {label}: {done}/{total} ({now - t0:.0f} s)", file=sys.stderr)

        return report

    print("exporting networks ...", file=sys.stderr)
    for arch in [*calibration, *evaluated]:
        export_onnx(space, arch)
    print("building the LUT ...", file=sys.stderr)
    # kernels with more rounds (they are cheap); calibration networks as the evaluated ones
    lut = build_lut(space, config, protocol(args.rounds), calibration_archs=calibration,
                    kernel_protocol=protocol(args.kernel_rounds), paired=not args.unpaired_lut,
                    progress=progress("lut"))
    t_lut = time.perf_counter() - t0
    if args.lut_dir:
        lut.save(args.lut_dir)

    # ground truth 1 (as specified): min of the round medians, rounds interleaved in time
    print("measuring the evaluated networks (min of round medians) ...", file=sys.stderr)
    plain = measure_networks(space, evaluated, config, protocol(args.rounds),
                             all_rounds=True, progress=progress("networks, plain"))
    # ground truth 2: ratio to a reference timed in alternating chunks, median of rounds,
    # at the LUT's reference scale (cancels the host's fast/slow states)
    print("measuring the evaluated networks (paired with a reference) ...", file=sys.stderr)
    ref_arch = space.parse(REFERENCE_ARCHS["nb201"])
    paired_info = lut.metadata.get("paired_reference") or {}
    paired_protocol = dataclasses.replace(protocol(args.rounds),
                                          max_runs=min(args.max_runs, 2 * args.min_runs))
    paired = measure_networks(space, evaluated, config, paired_protocol,
                              reference=network_timer(space, ref_arch, config),
                              reference_ms=paired_info.get("reference_ms"), all_rounds=True,
                              progress=progress("networks, paired"))
    t_eval = time.perf_counter() - t0 - t_lut
    truths = {"min_of_rounds": plain.min(axis=0), "paired": np.median(paired, axis=0)}

    pred = lut.predict(evaluated)
    ksum = lut.kernel_sum(evaluated)
    flops = np.array([model_stats(space, a).flops_m for a in evaluated])
    cal_flops = np.array([model_stats(space, a).flops_m for a in calibration])
    cal_true = np.array(lut.metadata["calibration"]["measured_ms"])
    fa, fb = np.polyfit(cal_flops, cal_true, 1)

    checked = evaluated[: args.check_graphs]
    matches = sum(graph_kernels(export_onnx(space, a), config) == kernels(space, a)
                  for a in checked)

    results = {}
    for truth_name, true in truths.items():
        rounds = plain if truth_name == "min_of_rounds" else paired
        results[truth_name] = {
            "lut": scores(pred, true),
            "kernel_sum": scores(ksum, true),
            "flops": rank_scores(flops, true),
            "flops_affine": scores(fa * flops + fb, true),
            "round1_vs_round2": scores(rounds[0], rounds[1]) if len(rounds) > 1 else None,
        }
    result = {
        "setup": {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "space": "nb201", "none": "zero", "archs": len(evaluated),
            "calibration": len(calibration), "seed": args.seed, "cpu": args.cpu,
            "runtime_config": lut.metadata["runtime_config"],
            "network_protocol": protocol(args.rounds).to_dict(),
            "paired_network_protocol": paired_protocol.to_dict(),
            "kernel_protocol": protocol(args.kernel_rounds).to_dict(),
            "lut_paired_reference": lut.metadata.get("paired_reference"),
            "kernels_measured": len(lut), "a": lut.coef_[0], "b_ms": lut.coef_[1],
            "session_overhead_ms": lut.metadata["session_overhead_ms"],
            "calibration_mape": lut.metadata["calibration"]["mape"],
            "seconds": {"lut": round(t_lut, 1), "evaluation": round(t_eval, 1),
                        "waited_for_load": waited},
            "load_average_1min": {"start": loads[0], "mean": float(np.mean(loads)),
                                  "max": float(np.max(loads)),
                                  "note": "this process adds about 1; more means other "
                                          "processes competed for the 2 vCPUs"},
            "environment": describe_environment(),
        },
        "ground_truths": {
            "min_of_rounds": "as specified: min of the round medians (unpaired)",
            "paired": "median over rounds of the ratio to the reference network, timed in "
                      "alternating chunks, x the LUT's reference_ms",
        },
        "scores": results,
        "enumeration_matches_ort": f"{matches}/{len(checked)}",
        "latency_ms": {k: {"min": float(v.min()), "median": float(np.median(v)),
                           "max": float(v.max())} for k, v in truths.items()},
        "rows": [{"arch": space.format(a), "min_of_rounds_ms": float(t1), "paired_ms": float(t2),
                  "plain_rounds_ms": r1.tolist(), "paired_rounds_ms": r2.tolist(),
                  "lut_ms": float(p), "kernel_sum_ms": float(k), "flops_m": float(f)}
                 for a, t1, t2, r1, r2, p, k, f in zip(
                     evaluated, truths["min_of_rounds"], truths["paired"], plain.T, paired.T,
                     pred, ksum, flops, strict=True)],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)

    print(f"\nNB201 operator LUT on this CPU: {len(evaluated)} networks, "
          f"{len(calibration)} calibration networks (disjoint), {len(lut)} kernels")
    print(f"fit: latency = {lut.coef_[0]:.3f} * kernel_sum + {lut.coef_[1]:.3f} ms; "
          f"kernel enumeration = ORT graph on {matches}/{len(checked)}")
    print(f"1-minute load average during the run: start {loads[0]:.2f}, mean "
          f"{np.mean(loads):.2f}, max {np.max(loads):.2f} (this process adds ~1)")
    for truth_name, block in results.items():
        print(f"\nground truth: {result['ground_truths'][truth_name]}")
        print(f"  {'predictor':<20}{'+-10%':>8}{'+-5%':>8}{'rho':>8}{'tau':>8}{'MAPE':>8}")
        for name, sc in block.items():
            if sc is None:
                continue
            cells = [f"{100 * sc[k]:7.1f}%" if k in sc else f"{'-':>8}"
                     for k in ("within_10pct", "within_5pct")]
            cells += [f"{sc[k]:8.3f}" for k in ("spearman_rho", "kendall_tau")]
            cells.append(f"{100 * sc['mape']:7.1f}%" if "mape" in sc else f"{'-':>8}")
            print(f"  {name:<20}" + "".join(cells))
    print(f"wrote {out}")
    return 0

