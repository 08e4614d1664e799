"""How well an operator lookup table predicts whole-network latency on this CPU.

Builds an NB201 operator LUT (:func:`hwnas.latency.lut.build_lut`: kernels measured on this
device, ``a * sum + b`` fitted on a calibration set), then measures ``--archs`` other random
NB201 networks whole with the same protocol (ONNX Runtime CPU, 1 thread, rounds interleaved in
time, the minimum of the round medians) and compares. Reported for the fitted LUT, the plain
(unfitted) kernel sum, and FLOPs (rank correlation; and an affine fit on the same calibration
set): the fraction predicted within +-10% and +-5%, Spearman rho, Kendall tau, MAPE. Also how
often the analytic kernel enumeration matches ONNX Runtime's optimised graph, and how well two
rounds of the ground truth itself agree (the noise floor).

With ``--runtime ort-cpu,ort-cpu-int8`` the same architectures are measured in both runtimes side
by side (every measurement of an architecture in one runtime followed by the other's, so the
host's state is shared), each against its own LUT: FP32 kernels enumerated analytically, INT8
kernels read from ONNX Runtime's optimised graph of each quantized network and timed as INT8
kernel models. For INT8 there is no enumeration of the space, so its LUT measures the kernels the
evaluated and calibration networks run (nn-Meter's procedure: kernels detected in the model to
predict, each timed once); ``--profile-archs`` networks are also profiled by ONNX Runtime, op by
op, to show where the kernel sum departs from the network.

Anchors: nn-Meter (Zhang et al., MobiSys 2021) reports 99.0% of models within +-10% with kernel
prediction on its CPU, and about 91% for a plain operator sum.

Usage:
    python bench/scripts/lut_accuracy.py --archs 300 --seed 0 \
        --out results/benchmarks/lut_accuracy.json
    python bench/scripts/lut_accuracy.py --runtime ort-cpu,ort-cpu-int8 --archs 40 \
        --out results/benchmarks/lut_accuracy_int8.json
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

__all__ = ["RUNTIMES", "scores", "rank_scores", "draw", "main", "truths_of"]

RUNTIMES = ("ort-cpu", "ort-cpu-int8")


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
    ap.add_argument("--runtime", default="ort-cpu",
                    help="comma-separated runtimes measured side by side: " + ", ".join(RUNTIMES))
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
    ap.add_argument("--int8-copies", default="1,9",
                    help="the two copy counts of the INT8 kernel models (FP32: 1,9)")
    ap.add_argument("--int8-reference", default="ort-cpu", choices=RUNTIMES,
                    help="runtime of the INT8 paired reference network (default: the FP32 one, "
                         "a cheaper probe of the host's state)")
    ap.add_argument("--truths", default="min_of_rounds,paired",
                    help="ground truths to measure: min_of_rounds, paired (or both)")
    ap.add_argument("--check-graphs", type=int, default=30,
                    help="evaluated networks whose FP32 kernels are checked against ORT's graph")
    ap.add_argument("--profile-archs", type=int, default=0,
                    help="evaluated networks profiled op by op by ONNX Runtime (diagnostic)")
    ap.add_argument("--unpaired-lut", action="store_true",
                    help="build the LUT without the paired reference (plain min of rounds)")
    ap.add_argument("--lut-dir", default=None,
                    help="also save the LUT here (several runtimes: one folder each, NAME_RUNTIME)")
    ap.add_argument("--wait-for-load", type=float, default=0.0,
                    help="first wait until the 1-minute load average is below this (0: don't)")
    ap.add_argument("--wait-max", type=float, default=1800.0, help="longest wait, seconds")
    ap.add_argument("--out", default="results/benchmarks/lut_accuracy.json")
    args = ap.parse_args(argv)
    runtimes = [r for r in args.runtime.split(",") if r]
    truth_names = [t for t in args.truths.split(",") if t]
    bad = [r for r in runtimes if r not in RUNTIMES] + [
        t for t in truth_names if t not in ("min_of_rounds", "paired")]
    if bad or not runtimes or not truth_names:
        ap.error(f"--runtime / --truths: {bad or 'empty'}; valid: {', '.join(RUNTIMES)}; "
                 "min_of_rounds, paired")
    int8_copies = tuple(int(c) for c in args.int8_copies.split(","))

    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    waited = 0.0
    if args.wait_for_load > 0:
        while os.getloadavg()[0] >= args.wait_for_load and waited < args.wait_max:
            time.sleep(10)
            waited += 10
    loads = [os.getloadavg()[0]]

    from hwnas.latency import MeasurementProtocol, RuntimeConfig, describe_environment, export_onnx
    from hwnas.latency.kernels import _profile_graph
    from hwnas.latency.kernels_int8 import int8_profile_by_op
    from hwnas.latency.lut import (
        REFERENCE_ARCHS,
        build_lut,
        graph_kernels,
        kernels,
        measure_networks,
        network_timer,
    )
    from hwnas.latency.quantize import quantize_onnx
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

    print("exporting (and quantizing) networks ...", file=sys.stderr)
    ref_arch = space.parse(REFERENCE_ARCHS["nb201"])
    for arch in [*calibration, *evaluated, ref_arch]:
        export_onnx(space, arch)
        if "ort-cpu-int8" in runtimes:
            quantize_onnx(space, arch)  # cached beside the export
    t_prepare = time.perf_counter() - t0
    luts, t_lut = {}, {}
    for rt in runtimes:
        print(f"building the {rt} LUT ...", file=sys.stderr)
        t1 = time.perf_counter()
        # kernels with more rounds (they are cheap); calibration networks as the evaluated ones
        luts[rt] = build_lut(space, config, protocol(args.rounds), calibration_archs=calibration,
                             kernel_protocol=protocol(args.kernel_rounds),
                             kernel_archs=None if rt == "ort-cpu" else evaluated,
                             copies=(1, 9) if rt == "ort-cpu" else int8_copies,
                             paired=not args.unpaired_lut, runtime=rt,
                             reference_runtime="ort-cpu" if rt == "ort-cpu" else
                             args.int8_reference,
                             progress=progress(f"{rt} lut"))
        t_lut[rt] = round(time.perf_counter() - t1, 1)
        if args.lut_dir:
            luts[rt].save(args.lut_dir if len(runtimes) == 1 else f"{args.lut_dir}_{rt}")

    # every architecture in every runtime back to back, so that the runtimes share host states
    t1 = time.perf_counter()
    ref_rt = {rt: (luts[rt].metadata.get("paired_reference") or {}).get("runtime", rt)
              for rt in runtimes}
    ref_timers = {r: network_timer(space, ref_arch, config, runtime=r)
                  for r in set(ref_rt.values())}
    refs = {rt: ref_timers[ref_rt[rt]] for rt in runtimes}
    paired_protocol = dataclasses.replace(protocol(1),
                                          max_runs=min(args.max_runs, 2 * args.min_runs))
    measured = {(t, rt): np.full((args.rounds, len(evaluated)), np.nan)
                for t in truth_names for rt in runtimes}
    steps, done = args.rounds * len(evaluated) * len(truth_names), 0
    report = progress("networks")
    for truth in truth_names:
        print(f"measuring the evaluated networks ({truth}) ...", file=sys.stderr)
        for r in range(args.rounds):
            for i, arch in enumerate(evaluated):
                for rt in runtimes:
                    if truth == "paired":
                        ref_ms = (luts[rt].metadata.get("paired_reference") or {}).get(
                            "reference_ms")
                        v = measure_networks(space, [arch], config, paired_protocol,
                                             reference=refs[rt], reference_ms=ref_ms,
                                             runtime=rt)
                    else:  # as specified: min of the round medians, rounds interleaved
                        v = measure_networks(space, [arch], config, protocol(1), runtime=rt)
                    measured[truth, rt][r, i] = v[0]
                done += 1
                report(done, steps)
    t_eval = time.perf_counter() - t1

    flops = np.array([model_stats(space, a).flops_m for a in evaluated])
    cal_flops = np.array([model_stats(space, a).flops_m for a in calibration])
    checked = evaluated[: args.check_graphs]
    blocks = {}
    for rt in runtimes:
        lut = luts[rt]
        truths = {}
        for t in truth_names:
            m = measured[t, rt]
            truths[t] = m.min(axis=0) if t == "min_of_rounds" else np.median(m, axis=0)
        pred = lut.predict(evaluated)
        ksum = lut.kernel_sum(evaluated)
        cal_true = np.array(lut.metadata["calibration"]["measured_ms"])
        fa, fb = np.polyfit(cal_flops, cal_true, 1)
        results = {}
        for t, true in truths.items():
            rounds = measured[t, rt]
            results[t] = {
                "lut": scores(pred, true),
                "kernel_sum": scores(ksum, true),
                "flops": rank_scores(flops, true),
                "flops_affine": scores(fa * flops + fb, true),
                "round1_vs_round2": scores(rounds[0], rounds[1]) if len(rounds) > 1 else None,
            }
        if rt == "ort-cpu":
            matches = sum(graph_kernels(export_onnx(space, a), config) == kernels(space, a)
                          for a in checked)
            enumeration = f"{matches}/{len(checked)} (analytic enumeration = ORT's graph)"
        else:
            enumeration = "read from ORT's optimised quantized graph (ground truth by definition)"
        # where the sum departs from the network: ORT's own per-op profile vs the table's
        by_op = []
        for a in evaluated[: args.profile_archs]:
            if rt == "ort-cpu":
                nodes, durs = _profile_graph(export_onnx(space, a), config, (1, 3, 32, 32), 21)
                prof: dict[str, float] = {}
                for name, k in nodes:
                    prof[k.op] = prof.get(k.op, 0.0) + float(np.sum(durs[name][1:])) / 20
            else:
                prof = int8_profile_by_op(quantize_onnx(space, a), config, runs=20)
            table: dict[str, float] = {}
            for k, n in kernels(space, a, lut.precision).items():
                table[k.op] = table.get(k.op, 0.0) + n * lut._lookup.get(k, float("nan"))
            by_op.append({"arch": space.format(a), "profiled_ms": prof, "table_ms": table})
        blocks[rt] = {
            "precision": lut.precision,
            "lut": {"kernels_measured": len(lut), "a": lut.coef_[0], "b_ms": lut.coef_[1],
                    "copies": lut.metadata["kernel_session"]["copies"],
                    "session_overhead_ms": lut.metadata["session_overhead_ms"],
                    "calibration_mape": lut.metadata["calibration"]["mape"],
                    "paired_reference": lut.metadata.get("paired_reference"),
                    "kernel_enumeration": lut.metadata["kernel_enumeration"],
                    "runtime_info": lut.metadata["runtime_info"], "seconds": t_lut[rt]},
            "scores": results,
            "enumeration": enumeration,
            "predicted_nan": int(np.isnan(pred).sum()),
            "latency_ms": {k: {"min": float(v.min()), "median": float(np.median(v)),
                               "max": float(v.max())} for k, v in truths.items()},
            "profile_by_op": by_op,
            "rows": [{"arch": space.format(a), "lut_ms": float(p), "kernel_sum_ms": float(k),
                      "flops_m": float(f),
                      **{f"{t}_ms": float(truths[t][i]) for t in truth_names},
                      **{f"{t}_rounds_ms": measured[t, rt][:, i].tolist() for t in truth_names}}
                     for i, (a, p, k, f) in enumerate(zip(evaluated, pred, ksum, flops,
                                                          strict=True))],
        }
    if len(runtimes) > 1:  # the INT8 speed-up, per architecture, on the same host states
        for t in truth_names:
            ratio = truths_of(blocks, "ort-cpu-int8", t) / truths_of(blocks, "ort-cpu", t)
            blocks["int8_over_fp32_" + t] = {"median": float(np.median(ratio)),
                                             "min": float(ratio.min()),
                                             "max": float(ratio.max())}
    result = {
        "setup": {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "space": "nb201", "none": "zero", "runtimes": runtimes, "archs": len(evaluated),
            "calibration": len(calibration), "seed": args.seed, "cpu": args.cpu,
            "runtime_config": dataclasses.asdict(config),
            "network_protocol": protocol(args.rounds).to_dict(),
            "paired_network_protocol": paired_protocol.to_dict(),
            "kernel_protocol": protocol(args.kernel_rounds).to_dict(),
            "seconds": {"prepare": round(t_prepare, 1), "lut": t_lut,
                        "evaluation": round(t_eval, 1), "waited_for_load": waited},
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
        "runtimes": blocks,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)

    print(f"\nNB201 operator LUTs on this CPU: {len(evaluated)} networks, "
          f"{len(calibration)} calibration networks (disjoint)")
    print(f"1-minute load average during the run: start {loads[0]:.2f}, mean "
          f"{np.mean(loads):.2f}, max {np.max(loads):.2f} (this process adds ~1)")
    for rt in runtimes:
        b = blocks[rt]
        print(f"\n== {rt} ({b['precision']}): {b['lut']['kernels_measured']} kernels; fit: "
              f"latency = {b['lut']['a']:.3f} * kernel_sum + {b['lut']['b_ms']:.3f} ms; "
              f"kernels {b['enumeration']}")
        for truth_name, block in b["scores"].items():
            print(f"ground truth: {result['ground_truths'][truth_name]}")
            print(f"  {'predictor':<20}{'+-10%':>8}{'+-5%':>8}{'rho':>8}{'tau':>8}{'MAPE':>8}")
            for name, sc in block.items():
                if sc is None:
                    continue
                cells = [f"{100 * sc[k]:7.1f}%" if k in sc else f"{'-':>8}"
                         for k in ("within_10pct", "within_5pct")]
                cells += [f"{sc[k]:8.3f}" for k in ("spearman_rho", "kendall_tau")]
                cells.append(f"{100 * sc['mape']:7.1f}%" if "mape" in sc else f"{'-':>8}")
                print(f"  {name:<20}" + "".join(cells))
    for key in [k for k in blocks if k.startswith("int8_over_fp32_")]:
        print(f"{key}: median {blocks[key]['median']:.2f}x")
    print(f"wrote {out}")
    return 0


def truths_of(blocks: dict, runtime: str, truth: str) -> np.ndarray:
    """One runtime's ground truth per evaluated architecture, from the result blocks."""
    return np.array([row[f"{truth}_ms"] for row in blocks[runtime]["rows"]])
