"""Few-shot accuracy transfer on NAS-Bench-201: leave one task out, K trained shots.

For every accuracy column of the nb201 table (the held-out *test task*), the predictor is
meta-trained on the other columns (the *source tasks*) and adapted to K shots of the test task.
Two source variants:

- ``dataset`` (the honest headline): every column of the test task's dataset is left out
  (holding out ``cifar10_test_200ep`` also removes ``cifar10_val_12ep`` and ``cifar10_test_12ep``).
- ``column``: only the test column is left out; its sister columns leak the answer (upper bound).

Shots: ``random`` (K drawn with the seed) or ``planned`` (strata of the source-consensus ranking,
half of them inside its top 10%; source information only). Scores: Spearman rho over all 15,625
architectures and within the test task's true top 10%, mean (and std) over seeds.

Methods: ``meta`` (ours: :class:`hwnas.meta.MetaAccuracyPredictor`, LOO-weighted ensemble of heads
incl. the meta-learned embedding), ``meta-src`` (the same ensemble without the learned embedding:
an ablation), ``nearest`` (the source task whose ranking agrees best with the shots), ``scratch``
(ridge on one-hot + structure from the K shots alone), ``synflow`` (zero-cost proxy, no shots; on a
random subset of architectures, see ``--synflow-n``).

Usage:
    .venv/bin/python bench/scripts/accuracy_transfer.py [--seeds 5] [--shots 20]

Writes ``results/benchmarks/accuracy_transfer.json`` atomically and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from hwnas.bench import load_tables
from hwnas.latency import atomic_write_text, describe_environment
from hwnas.meta.accuracy import AccuracyTask, MetaAccuracyPredictor
from hwnas.meta.accuracy_baselines import (
    NearestSourcePredictor,
    ScratchAccuracyPredictor,
)
from hwnas.meta.accuracy_features import AccuracyFeatures, plan_shots, source_tasks
from hwnas.meta.accuracy_proxies import synflow
from hwnas.meta.encoders import onehot_features, structure_features
from hwnas.search import cache_root

__all__ = ["rho_pair", "synflow_subset", "main", "print_tables"]

REPO = Path(__file__).resolve().parents[2]
METHODS = ("meta", "meta-src", "nearest", "scratch")
SRC_ONLY = ("src@0.3", "src@1", "src@3", "src+struct@1", "src+onehot@1")


def rho_pair(score: np.ndarray, y: np.ndarray, top: np.ndarray) -> tuple[float, float]:
    return float(spearmanr(score, y)[0]), float(spearmanr(score[top], y[top])[0])


def synflow_subset(tables, n: int, seed: int) -> pd.DataFrame:
    """log10 SynFlow of ``n`` random architectures, cached under ``cache_root()/accuracy``."""
    path = cache_root() / "accuracy" / f"synflow_nb201_n{n}_s{seed}.csv"
    if path.is_file():
        return pd.read_csv(path)
    idx = np.sort(np.random.default_rng(seed).choice(len(tables), n, replace=False))
    vals = synflow(tables.space, [tables.archs[i] for i in idx], seed=0)
    frame = pd.DataFrame({"index": idx, "log10_synflow": vals})
    atomic_write_text(path, frame.to_csv(index=False))
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                       help="public tables (default: HWNAS_DATA)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--shots", type=int, default=20)
    ap.add_argument("--meta-steps", type=int, default=150)
    ap.add_argument("--variants", default="dataset,column")
    ap.add_argument("--selections", default="random,planned")
    ap.add_argument("--synflow-n", type=int, default=1000, help="0: skip SynFlow")
    ap.add_argument("--out", type=Path, default=REPO / "results/benchmarks/accuracy_transfer.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    tables = load_tables("nb201", args.data)
    acc, tasks = tables.accuracy, tables.tasks
    A = onehot_features(tables.space, tables.archs)
    C = structure_features(tables.space, tables.archs)
    syn = synflow_subset(tables, args.synflow_n, 0) if args.synflow_n else None

    results: list[dict] = []
    for variant in args.variants.split(","):
        for test in tasks:
            src = source_tasks(test, tasks, exclude=variant)
            feats = AccuracyFeatures(acc[src].to_numpy(np.float64), A, C, src)
            meta_tasks = [AccuracyTask(s, acc[s].to_numpy(np.float64), feats.hidden_for(s))
                          for s in src]
            t0 = time.perf_counter()
            meta = MetaAccuracyPredictor(feats, meta_steps=args.meta_steps, seed=0)
            meta.meta_fit(meta_tasks)
            meta_s = time.perf_counter() - t0
            meta_src = MetaAccuracyPredictor(feats, candidates=SRC_ONLY, seed=0)
            y = acc[test].to_numpy(np.float64)
            top = y >= np.quantile(y, 0.9)
            every = np.arange(len(y))
            for selection in args.selections.split(","):
                scores: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
                top_shots = []
                for seed in range(args.seeds):
                    rng = np.random.default_rng(seed)
                    shots = (rng.choice(len(y), args.shots, replace=False) if selection == "random"
                             else plan_shots(feats, args.shots, seed))
                    top_shots.append(int(top[shots].sum()))
                    fitted = {"meta": meta.adapt(shots, y[shots]),
                              "meta-src": meta_src.adapt(shots, y[shots]),
                              "nearest": NearestSourcePredictor(feats).fit(shots, y[shots]),
                              "scratch": ScratchAccuracyPredictor(feats).fit(shots, y[shots])}
                    for m, p in fitted.items():
                        scores[m].append(rho_pair(p.predict_score(every), y, top))
                row = {"variant": variant, "test_task": test, "selection": selection,
                       "sources": src, "shots": args.shots, "seeds": args.seeds,
                       "meta_fit_s": round(meta_s, 2), "shots_in_true_top10": top_shots}
                for m, v in scores.items():
                    arr = np.asarray(v)
                    row[m] = {"rho_all": float(arr[:, 0].mean()),
                              "rho_top10": float(arr[:, 1].mean()),
                              "rho_all_std": float(arr[:, 0].std()),
                              "rho_top10_std": float(arr[:, 1].std())}
                results.append(row)
    synflow_rows = []
    if syn is not None:
        i, v = syn["index"].to_numpy(), syn["log10_synflow"].to_numpy()
        for test in tasks:
            y = acc[test].to_numpy(np.float64)
            top = (y >= np.quantile(y, 0.9))[i]
            ra, rt = rho_pair(v, y[i], top)
            synflow_rows.append({"test_task": test, "rho_all": ra, "rho_top10": rt,
                                 "subset": int(len(i)), "subset_in_top10": int(top.sum())})
    record = {
        "benchmark": "accuracy_transfer", "space": "nb201", "shots": args.shots,
        "seeds": args.seeds, "meta_steps": args.meta_steps, "methods": list(METHODS),
        "results": results,
        "synflow": {"note": f"no shots; log10 SynFlow at initialisation (all-ones input, BN "
                            f"identity), on {args.synflow_n} random architectures (seed 0); "
                            "top-10% = the subset's members in the task's true top 10%",
                    "rows": synflow_rows},
        "seconds": round(time.perf_counter() - t_start, 1),
        "environment": describe_environment(),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print_tables(record)
    print(f"\nwrote {args.out} ({record['seconds']} s)")


def print_tables(record: dict) -> None:
    syn = {r["test_task"]: r for r in record["synflow"]["rows"]}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in record["results"]:
        groups.setdefault((r["variant"], r["selection"]), []).append(r)
    for (variant, selection), rows in groups.items():
        label = ("dataset held out (honest)" if variant == "dataset"
                 else "only the column held out (sister columns leak: upper bound)")
        print(f"\n### {label}; {selection} shots; K={record['shots']}, mean of "
              f"{record['seeds']} seeds; rho all / rho top-10%\n")
        head = ["test task", *METHODS] + (["synflow (subset)"] if syn else [])
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        means = {m: [] for m in METHODS}
        for r in rows:
            cells = [r["test_task"]]
            for m in METHODS:
                cells.append(f"{r[m]['rho_all']:.3f} / {r[m]['rho_top10']:.3f}")
                means[m].append((r[m]["rho_all"], r[m]["rho_top10"]))
            if syn:
                s = syn[r["test_task"]]
                cells.append(f"{s['rho_all']:.3f} / {s['rho_top10']:.3f}")
            print("| " + " | ".join(cells) + " |")
        cells = ["**mean**"] + [f"**{np.mean([a for a, _ in means[m]]):.3f} / "
                                f"{np.mean([b for _, b in means[m]]):.3f}**" for m in METHODS]
        if syn:
            cells.append(f"{np.mean([s['rho_all'] for s in syn.values()]):.3f} / "
                         f"{np.mean([s['rho_top10'] for s in syn.values()]):.3f}")
        print("| " + " | ".join(cells) + " |")

