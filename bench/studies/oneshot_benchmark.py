"""One-shot NB201 on digits: supernet ranking, and latency-aware differentiable search vs evolution.

a. A single-path one-shot supernet (Guo et al., ECCV 2020) is trained on scikit-learn's digits
   with uniform path sampling; the nb201 architectures at the first ``--n-archs`` indices of
   ``numpy.random.default_rng(2026).permutation(15625)`` are scored by inherited-weight validation
   accuracy after BN recalibration. If ``results/benchmarks/live_fidelity.csv`` (individually
   trained references, with an ``index`` column) exists, Kendall's tau and Spearman's rho against
   it are reported; the scores are always written to ``results/benchmarks/supernet_scores.csv``
   (``index, arch, supernet_val_acc``). Rank correlations with NAS-Bench-201's own CIFAR-10
   accuracies of the same cells are reported too (a different task: context, not a target).
b. Latency: the operator lookup table of this machine (``results/benchmarks/lut_nb201``, ONNX
   Runtime CPU, 1 thread, batch 1, the benchmark's 3x32x32 CIFAR network with C=16 and 5 cells a
   stage), fitted to per-(edge, op) costs by :func:`linear_op_costs` (R^2 reported). For each
   lambda a short Gumbel-softmax search (hard straight-through, GDAS-style) starts from a copy of
   the trained supernet; its argmax cell is scored by LUT latency, supernet accuracy and (optional)
   accuracy of the cell trained from scratch with a fixed small recipe, and (optional) latency
   measured live with ONNX Runtime. Regularized evolution (``minimize(problem, "evolution")``) gets
   the same wall-clock as the whole lambda sweep, with supernet accuracy and LUT latency as its
   objectives. Both fronts' hypervolumes use one reference point: (the space's largest LUT
   latency, 90 % error = chance on 10 classes), objectives (latency ms, 100 - accuracy %).

Usage:
    python bench/scripts/oneshot_benchmark.py --out results/benchmarks/oneshot.json
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr
from torch.nn import functional as F

from hwnas.bench.core import Problem, minimize
from hwnas.bench.indicators import hypervolume
from hwnas.bench.live.datasets import get_dataset
from hwnas.latency import atomic_write_text
from hwnas.latency.lut import LUTLatency, OperatorLUT
from hwnas.search import Objective, get_space, pareto_mask
from hwnas.search.oneshot.differentiable import DifferentiableSearch, linear_op_costs
from hwnas.search.oneshot.supernet import (
    NB201Supernet,
    SupernetAccuracy,
    as_tensors,
    train_supernet,
)
from hwnas.search.spaces.nb201 import NB201Space
from hwnas.search.tables import load_tables

__all__ = ["log", "rank_corr", "reference_column", "train_from_scratch", "main"]

REPO = Path(__file__).resolve().parents[2]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rank_corr(a: np.ndarray, b: np.ndarray) -> dict:
    ok = np.isfinite(a) & np.isfinite(b)
    return {"n": int(ok.sum()), "kendall_tau": float(kendalltau(a[ok], b[ok]).statistic),
            "spearman_rho": float(spearmanr(a[ok], b[ok]).statistic)}


def reference_column(path: Path) -> tuple[dict[int, float], str] | None:
    """The individually trained reference accuracies by nb201 index, if the file exists."""
    if not path.exists():
        return None
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows or "index" not in rows[0]:
        return None
    cols = [c for c in rows[0] if c != "index" and "acc" in c.lower()]
    preferred = [c for c in cols if "val" in c.lower()] or [c for c in cols if "test" not in
                                                            c.lower()] or cols
    if not preferred:
        return None
    col = preferred[0]
    out: dict[int, list[float]] = {}
    for r in rows:
        try:
            out.setdefault(int(r["index"]), []).append(float(r[col]))
        except (TypeError, ValueError):
            continue
    return {k: float(np.mean(v)) for k, v in out.items()}, col


def train_from_scratch(arch, c: int, cells: int, data, epochs: int, seed: int) -> dict:
    """A fixed small recipe: SGD Nesterov 0.9, lr 0.05 cosine, wd 5e-4, batch 64; val/test %."""
    torch.manual_seed(seed)
    net = NB201Supernet(10, c=c, cells_per_stage=cells, in_channels=1).extract(arch)
    xt, yt = as_tensors(data.train)
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(xt) / 64)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    out = {"train_s": time.perf_counter() - t0}
    with torch.no_grad():
        for split in ("val", "test"):
            x, y = as_tensors(getattr(data, split))
            out[f"scratch_{split}_acc"] = 100.0 * float((net(x).argmax(1) == y).float().mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results/benchmarks/oneshot.json")
    ap.add_argument("--data", default=None,
                       help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    ap.add_argument("--lut", type=Path, default=REPO / "results/benchmarks/lut_nb201")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--c", type=int, default=16, help="supernet channels of the first stage")
    ap.add_argument("--cells", type=int, default=2, help="cells per stage")
    ap.add_argument("--supernet-epochs", type=int, default=100)
    ap.add_argument("--n-archs", type=int, default=128)
    ap.add_argument("--bn-batches", type=int, default=4)
    ap.add_argument("--cost-samples", type=int, default=300)
    ap.add_argument("--lambdas", default="0,0.03,0.1,0.3,1")
    ap.add_argument("--search-epochs", type=int, default=10)
    ap.add_argument("--alpha-lr", type=float, default=0.05)
    ap.add_argument("--scratch-epochs", type=int, default=20, help="0: skip")
    ap.add_argument("--scratch-max-evo", type=int, default=5,
                    help="evolution front members trained from scratch (the lightest first)")
    ap.add_argument("--evo-population", type=int, default=20)
    ap.add_argument("--evo-sample-size", type=int, default=5)
    ap.add_argument("--no-live", action="store_true", help="skip live ONNX Runtime latency")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    rec: dict = {"setup": {k: (str(v) if isinstance(v, Path) else v)
                           for k, v in vars(args).items()},
                 "environment": {"python": platform.python_version(), "torch": torch.__version__,
                                 "threads": 1, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                     time.gmtime())}}
    data = get_dataset("digits", seed=args.seed)
    rec["setup"]["dataset"] = data.describe()
    space = get_space("nb201")
    indexed = NB201Space(data_dir=args.data)

    # ------------------------------------------------------------ a. supernet
    log(f"training supernet C={args.c} N={args.cells} for {args.supernet_epochs} epochs")
    torch.manual_seed(args.seed)
    supernet = NB201Supernet(10, c=args.c, cells_per_stage=args.cells, in_channels=1)
    tlog = train_supernet(supernet, data.train, args.supernet_epochs, seed=args.seed)
    log(f"supernet trained in {tlog.seconds:.1f} s; loss {tlog.epoch_loss[0]:.3f} -> "
        f"{tlog.epoch_loss[-1]:.3f}")
    acc_src = SupernetAccuracy(supernet, data.val, data.train, bn_batches=args.bn_batches,
                               batch_size=128, seed=args.seed)
    indices = np.random.default_rng(2026).permutation(15625)[:args.n_archs]
    archs = [indexed[int(i)] for i in indices]
    t0 = time.perf_counter()
    scores = acc_src.evaluate(archs)
    eval_s = time.perf_counter() - t0
    log(f"scored {len(archs)} archs in {eval_s:.1f} s; mean {scores.mean():.2f} %")
    scores_path = REPO / "results/benchmarks/supernet_scores.csv"
    lines = ["index,arch,supernet_val_acc"] + [
        f"{int(i)},{space.format(a)},{s:.4f}" for i, a, s in zip(indices, archs, scores,
                                                                  strict=True)]
    atomic_write_text(scores_path, "\n".join(lines) + "\n")
    part_a: dict = {
        "supernet": {"c": args.c, "cells_per_stage": args.cells, "in_channels": 1,
                     "epochs": args.supernet_epochs, "batch_size": 64, "lr": 0.05,
                     "steps": tlog.steps, "train_s": tlog.seconds,
                     "epoch_loss_first_last": [tlog.epoch_loss[0], tlog.epoch_loss[-1]],
                     "params": sum(p.numel() for p in supernet.parameters())},
        "n_archs": len(archs), "bn_batches": args.bn_batches, "bn_batch_size": 128,
        "eval_s_total": eval_s, "eval_s_per_arch": eval_s / len(archs),
        "supernet_val_acc": {"mean": float(scores.mean()), "std": float(scores.std()),
                             "min": float(scores.min()), "max": float(scores.max())},
        "scores_csv": str(scores_path.relative_to(REPO)),
    }
    nb = load_tables("nb201", args.data).accuracy
    part_a["vs_nb201_tables"] = {
        col: rank_corr(scores, nb.loc[indices, col].to_numpy(dtype=float))
        for col in ("cifar10_val_12ep", "cifar10_test_200ep")}
    ref = reference_column(REPO / "results/benchmarks/live_fidelity.csv")
    if ref is None:
        part_a["vs_live_reference"] = "results/benchmarks/live_fidelity.csv absent or unusable"
    else:
        by_index, col = ref
        refv = np.array([by_index.get(int(i), np.nan) for i in indices])
        part_a["vs_live_reference"] = {"column": col, **rank_corr(scores, refv)}
    log(f"part a: {json.dumps(part_a['vs_nb201_tables'])}; live ref: "
        f"{json.dumps(part_a['vs_live_reference'])}")
    rec["supernet_ranking"] = part_a

    # ------------------------------------------------------------ b. latency-aware search
    lut = OperatorLUT.load(args.lut)
    lat_src = LUTLatency(lut)
    t0 = time.perf_counter()
    costs = linear_op_costs(space, lat_src, args.cost_samples, rng=args.seed)
    cost_fit_s = time.perf_counter() - t0
    log(f"op costs from the LUT: R^2 {costs.r2:.3f} (holdout {costs.r2_holdout:.3f})")
    t0 = time.perf_counter()
    everything = [space.from_genes(g) for g in itertools.product(range(5), repeat=6)]
    all_lat = lat_src.evaluate(everything)
    log(f"LUT latency of all 15625 cells in {time.perf_counter() - t0:.1f} s")
    ref_point = np.array([float(np.nanmax(all_lat)), 90.0])
    lut_name = args.lut.relative_to(REPO) if args.lut.is_relative_to(REPO) else args.lut
    lat_block: dict = {
        "source": f"operator LUT {lut_name}"
                  f" ({lut.metadata.get('device')}, threads "
                  f"{lut.metadata.get('runtime_config', {}).get('intra_op_threads')}, batch "
                  f"{lut.metadata.get('runtime_config', {}).get('batch')}, network 3x32x32 C=16 "
                  "N=5, the benchmark's CIFAR network)",
        "lut_model_mape_on_calibration": lut.metadata.get("calibration", {}).get("mape"),
        "linear_costs": {"n_samples": costs.n_samples, "r2": costs.r2,
                         "r2_holdout_25pct": costs.r2_holdout, "intercept_ms": costs.intercept,
                         "cost_ms": np.round(costs.cost, 4).tolist(), "fit_s": cost_fit_s,
                         "r2_all_15625": float(1 - np.sum((all_lat - costs.predict(everything))
                                                          ** 2)
                                               / np.sum((all_lat - all_lat.mean()) ** 2))},
        "space_latency_ms": {"min": float(np.nanmin(all_lat)), "max": float(np.nanmax(all_lat))},
    }
    rec["latency"] = lat_block

    lambdas = [float(v) for v in args.lambdas.split(",")]
    sweep = []
    search_s = 0.0
    for lam in lambdas:
        res = DifferentiableSearch(supernet, data.train, data.val, costs, lam=lam,
                                   epochs=args.search_epochs, w_lr=0.01, alpha_lr=args.alpha_lr,
                                   hard=True, seed=args.seed).run()
        search_s += res.seconds
        row = {"lambda": lam, "arch": space.format(res.arch), "search_s": res.seconds,
               "expected_latency_ms": res.expected_latency_ms,
               "lut_latency_ms": float(lat_src.evaluate([res.arch])[0]),
               "supernet_val_acc": float(acc_src.evaluate([res.arch])[0]),
               "final_val_ce": res.history[-1]["val_ce"],
               "max_prob_per_edge": np.round(res.probs.max(axis=1), 3).tolist()}
        sweep.append(row)
        log(f"lambda {lam}: {row['arch']} lut {row['lut_latency_ms']:.3f} ms, supernet acc "
            f"{row['supernet_val_acc']:.2f} % ({res.seconds:.1f} s)")

    # evolution with the same wall clock, the same objectives
    log(f"regularized evolution for {search_s:.1f} s")
    # the one search loop of hwnas (minimize), stopped by the same wall clock
    problem = Problem(space, [Objective("latency", lat_src, "min"),
                              Objective("accuracy", acc_src, "max")])
    found = minimize(problem, "evolution", budget=space.size, seed=args.seed,
                     strategy_options={"population": args.evo_population,
                                       "sample_size": args.evo_sample_size},
                     time_limit_s=search_s)
    evo_s = found.timings["total_s"]
    evo_archs = [r.arch for r in found.records]
    evo_F = np.array([[r.values[0], 100.0 - r.values[1]] for r in found.records])
    front = np.flatnonzero(pareto_mask(evo_F))
    front = front[np.argsort(evo_F[front, 0])]
    log(f"evolution: {len(evo_archs)} evaluated, front of {len(front)}")
    dar_F = np.array([[r["lut_latency_ms"], 100.0 - r["supernet_val_acc"]] for r in sweep])
    rec["search"] = {
        "dataset": "digits (train for weights, val for logits and supernet accuracy)",
        "supernet_start": "a copy of the part-a supernet for every lambda",
        "differentiable": {"epochs": args.search_epochs, "batch_size": 64, "w_lr": 0.01,
                           "alpha_lr": args.alpha_lr, "tau": [5.0, 0.5], "hard": True,
                           "sweep": sweep, "total_search_s": search_s},
        "evolution": {"population": args.evo_population, "sample_size": args.evo_sample_size,
                      "wall_s": evo_s, "evaluated": len(evo_archs),
                      "front": [{"arch": space.format(evo_archs[i]),
                                 "lut_latency_ms": float(evo_F[i, 0]),
                                 "supernet_val_acc": float(100 - evo_F[i, 1])} for i in front]},
        "hypervolume": {
            "objectives": "(LUT latency ms, 100 - supernet val acc %), minimised",
            "reference_point": ref_point.tolist(),
            "differentiable": hypervolume(dar_F, ref_point),
            "evolution": hypervolume(evo_F, ref_point),
            "box": float(ref_point[0] * ref_point[1]),
        },
    }
    hv = rec["search"]["hypervolume"]
    log(f"HV (supernet acc): differentiable {hv['differentiable']:.2f}, evolution "
        f"{hv['evolution']:.2f} (ref {ref_point.tolist()})")
    atomic_write_text(args.out, json.dumps(rec, indent=1) + "\n")

    # ------------------------------------------------------------ optional re-scoring
    to_check = [(f"differentiable lambda={r['lambda']}", space.parse(r["arch"])) for r in sweep]
    to_check += [(f"evolution front #{k}", evo_archs[i])
                 for k, i in enumerate(front[:args.scratch_max_evo])]
    if args.scratch_epochs > 0:
        scratch = {}
        for label, a in to_check:
            if a not in scratch:
                scratch[a] = train_from_scratch(a, args.c, args.cells, data,
                                                args.scratch_epochs, args.seed)
                log(f"scratch {label}: val {scratch[a]['scratch_val_acc']:.2f} % "
                    f"({scratch[a]['train_s']:.1f} s)")
        for r in sweep:
            r.update(scratch[space.parse(r["arch"])])
        for row, i in zip(rec["search"]["evolution"]["front"], front, strict=True):
            if evo_archs[i] in scratch:
                row.update(scratch[evo_archs[i]])
        evo_scr = [(float(evo_F[i, 0]), 100 - scratch[evo_archs[i]]["scratch_val_acc"])
                   for i in front[:args.scratch_max_evo]]
        hv["scratch_recipe"] = {"epochs": args.scratch_epochs, "c": args.c,
                                "cells_per_stage": args.cells, "batch_size": 64, "lr": 0.05,
                                "note": "evolution: only its lightest front members retrained"}
        hv["differentiable_scratch_val"] = hypervolume(
            np.array([[r["lut_latency_ms"], 100 - r["scratch_val_acc"]] for r in sweep]),
            ref_point)
        hv["evolution_scratch_val"] = hypervolume(np.array(evo_scr), ref_point)
        log(f"HV (scratch val acc): differentiable {hv['differentiable_scratch_val']:.2f}, "
            f"evolution {hv['evolution_scratch_val']:.2f}")
        atomic_write_text(args.out, json.dumps(rec, indent=1) + "\n")
    if not args.no_live:
        from hwnas.latency.runtime import RuntimeConfig, get_runtime
        from hwnas.latency.sources import LiveLatency

        with tempfile.TemporaryDirectory() as tmp:
            live = LiveLatency(space, get_runtime("ort-cpu", RuntimeConfig()), tmp)
            uniq = list(dict.fromkeys(a for _, a in to_check))
            t0 = time.perf_counter()
            measured = dict(zip(uniq, live.evaluate(uniq), strict=True))
            log(f"live ORT latency of {len(uniq)} cells in {time.perf_counter() - t0:.1f} s")
        for r in sweep:
            r["live_ort_latency_ms"] = float(measured[space.parse(r["arch"])])
        for row, i in zip(rec["search"]["evolution"]["front"], front, strict=True):
            if evo_archs[i] in measured:
                row["live_ort_latency_ms"] = float(measured[evo_archs[i]])
        lut_v = np.array([float(lat_src.evaluate([a])[0]) for a in uniq])
        live_v = np.array([measured[a] for a in uniq])
        rec["latency"]["live_check"] = {
            "runtime": "ort-cpu, 1 thread, batch 1, default protocol", "n": len(uniq),
            "lut_mean_abs_rel_error": float(np.nanmean(np.abs(lut_v - live_v) / live_v)),
            **rank_corr(lut_v, live_v)}
    rec["total_s"] = time.perf_counter() - t_start
    atomic_write_text(args.out, json.dumps(rec, indent=1) + "\n")
    log(f"wrote {args.out} ({rec['total_s']:.0f} s)")

