"""Multi-fidelity accuracy transfer on NAS-Bench-201: K full results + cheap results + proxies.

Protocol (leave one task out, fixed before any figure was looked at):

- **Target** = one accuracy column of the nb201 table; **sources** = the columns of every other
  dataset (the target's whole dataset is removed, as in ``accuracy_transfer.py``).
- **Low fidelity** of a target = the columns of *its own dataset* with fewer training epochs
  (:func:`low_fidelity_columns`): for ``cifar10_test_200ep`` the two 12-epoch CIFAR-10 columns,
  for ``cifar100_test_200ep`` the two 12-epoch CIFAR-100 columns. The 12-epoch targets have none
  (12 epochs is the table's lowest budget; their val/test sister column is the same budget, or for
  CIFAR-100/ImageNet16 the same trained network on the other half of the test images: a leak, not
  a cheaper result), so they get sources (and, on the proxy subset, proxies) only.
- **Coverage** of the low-fidelity results: ``all`` (every architecture) or ``500`` (500 random
  architectures per seed, independent of the shots).
- **Shots**: K random architectures with their full-budget accuracy, K = 5, 10, 20, 50, 100,
  seeds 0..4.
- **Zero-cost proxies** (SynFlow, jacob_cov, NASWOT; :mod:`hwnas.meta.accuracy_proxies`) on a
  seeded subset of 3,000 architectures (all 15,625 take about 2 hours on one core here). The table
  carries no CIFAR or ImageNet16 images and none can be downloaded on this machine: the proxies
  are computed on scikit-learn's digits (one fixed 64-image training minibatch, the networks
  built for 1x8x8 inputs and 10 classes), *not* on the target's data. The proxy table scores
  every method on that subset (its members in the target's true top 10%).
- **Scores**: Spearman rho over all architectures and within the target's true top 10%.
- **Methods**: ``mf`` = the multi-fidelity predictor with its second stage (structure head,
  top-region forest, safeguard); ``mf-first-stage`` = map and heads alone (the method before the
  second stage); ``mf-nomap`` = heads on the raw cheap results; ``nearest``.
- **Baselines**: the best single source column (chosen in hindsight on the true target: an upper
  bound for any one-source choice), the nearest source (chosen on the shots), the target's own
  low-fidelity columns alone (mean normal score; full coverage), each proxy alone, and the
  **ceiling**: an extremely randomised forest on structure + one-hot + the public source columns
  (``ceiling``; with the low-fidelity columns too: ``ceiling+lf``) fitted to 12,500 of the
  target's own labels, 5-fold, scored on the out-of-fold predictions.
- **Validation tasks** (where the method and its settings were chosen): ``cifar100_test_200ep``
  and ``imagenet16_val_12ep``; the other six are reported as test tasks.

Usage:
    .venv/bin/python bench/scripts/accuracy_multifidelity.py [--seeds 5] [--proxy-n 3000]

Writes ``results/benchmarks/accuracy_multifidelity.json`` atomically and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

__all__ = ["VALIDATION_TASKS", "ceiling", "low_fidelity_columns", "main", "print_tables",
           "proxy_subset"]

REPO = Path(__file__).resolve().parents[2]
#: the seeded subset on which zero-cost proxies are computed (all 15,625 are too slow here)
PROXY_SUBSET_SEED = 0
#: tasks the method was chosen on (fixed before looking); the rest are test tasks
VALIDATION_TASKS = ("cifar100_test_200ep", "imagenet16_val_12ep")
KS = (5, 10, 20, 50, 100)
PARTIAL = 500


def proxy_subset(tables, n: int, seed: int = PROXY_SUBSET_SEED, dataset: str = "digits",
                 progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """SynFlow, jacob_cov and NASWOT of ``n`` seeded random nb201 architectures on ``dataset``
    (a fixed 64-image training minibatch), cached: :func:`hwnas.bench.cli.accuracy.proxy_table`,
    the one ``hwnas accuracy adapt --proxies`` uses."""
    from hwnas.bench.cli.accuracy import proxy_table

    return proxy_table(tables, n, seed, dataset, progress=progress)


def time_proxies(tables, n: int, seed: int = 1, dataset: str = "digits") -> dict:
    """Seconds per architecture of building the network and of each proxy (median over ``n``
    seeded random nb201 architectures, one thread, the proxies' 64-image minibatch)."""
    import torch

    from hwnas.bench.live.datasets import get_dataset
    from hwnas.bench.live.training import build_for_task
    from hwnas.meta.accuracy_proxies import (
        jacob_cov_score,
        minibatch,
        naswot_score,
        synflow_score,
    )

    splits = get_dataset(dataset, seed=0)
    images = minibatch(splits.train, 64, 0)
    idx = np.random.default_rng(seed).choice(len(tables), n, replace=False)
    steps = {"build": lambda m: None,
             "synflow": lambda m: synflow_score(m, tuple(images.shape[1:])),
             "jacob_cov": lambda m: jacob_cov_score(m, images),
             "naswot": lambda m: naswot_score(m, images)}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for i in idx:
        for name, step in steps.items():
            t0 = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                model = build_for_task(tables.space, tables.archs[int(i)], splits)
            step(model)
            times[name].append(time.perf_counter() - t0)
    build = float(np.median(times["build"]))
    out = {"n": n, "data": splits.name, "threads": torch.get_num_threads(),
           "build_s": round(build, 4)}
    for name in ("synflow", "jacob_cov", "naswot"):
        out[f"{name}_s"] = round(float(np.median(times[name])) - build, 4)
    out["all_three_s"] = round(sum(out[f"{p}_s"] for p in ("synflow", "jacob_cov", "naswot"))
                               + 2 * build, 4)
    out["all_15625_hours"] = round(out["all_three_s"] * len(tables) / 3600, 2)
    return out


def low_fidelity_columns(target: str, tasks: Sequence[str]) -> list[str]:
    """The target dataset's columns trained for fewer epochs than the target."""
    from hwnas.meta.accuracy_features import dataset_of
    from hwnas.meta.accuracy_multifidelity import epochs_of

    e = epochs_of(target)
    return [t for t in tasks if t != target and dataset_of(t) == dataset_of(target)
            and e is not None and (epochs_of(t) or e) < e]


def rho_pair(score: np.ndarray, y: np.ndarray, top: np.ndarray) -> tuple[float, float]:
    return float(spearmanr(score, y)[0]), float(spearmanr(score[top], y[top])[0])


def ceiling(X: np.ndarray, y: np.ndarray, top: np.ndarray, seed: int = 0) -> dict:
    """5-fold extremely randomised forest on ``X`` fitted to the target's own labels (12,500 of
    15,625 per fold); Spearman of the out-of-fold predictions."""
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.model_selection import KFold

    oof = np.empty(len(y))
    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
        forest = ExtraTreesRegressor(n_estimators=100, min_samples_leaf=2, max_features=0.5,
                                     n_jobs=1, random_state=seed).fit(X[train], y[train])
        oof[test] = forest.predict(X[test])
    ra, rt = rho_pair(oof, y, top)
    return {"rho_all": ra, "rho_top10": rt, "train_labels": int(len(y) * 4 // 5)}


def _summary(values: list[tuple[float, float]]) -> dict:
    arr = np.asarray(values)
    return {"rho_all": float(arr[:, 0].mean()), "rho_top10": float(arr[:, 1].mean()),
            "rho_all_std": float(arr[:, 0].std()), "rho_top10_std": float(arr[:, 1].std())}


def _target(acc: pd.DataFrame, tasks: list[str], target: str, A: np.ndarray, C: np.ndarray,
            args, rows: np.ndarray | None = None, proxies: np.ndarray | None = None) -> dict:
    """Every method on one target (on ``rows`` of the table when given: the proxy subset)."""
    from hwnas.meta.accuracy_baselines import NearestSourcePredictor
    from hwnas.meta.accuracy_features import AccuracyFeatures, normal_scores, source_tasks
    from hwnas.meta.accuracy_multifidelity import (
        MultiFidelityPredictor,
        fit_fidelity_map,
        fit_top_model,
    )

    subset = rows is not None
    rows = np.arange(len(acc)) if rows is None else rows
    src = source_tasks(target, tasks, exclude="dataset")
    lf_names = low_fidelity_columns(target, tasks)
    sub = acc.iloc[rows]
    feats = AccuracyFeatures(sub[src].to_numpy(np.float64), A[rows], C[rows], src)
    y = sub[target].to_numpy(np.float64)
    n = len(y)
    top = y >= np.quantile(y, 0.9)
    lf = sub[lf_names].to_numpy(np.float64) if lf_names else None
    t0 = time.perf_counter()
    fmap = fit_fidelity_map(feats, lf_names) if lf is not None else None
    top_model = fit_top_model(feats) if fmap is not None else None
    out: dict = {"target": target, "sources": src, "low_fidelity": lf_names, "n": int(n),
                 "validation": target in VALIDATION_TASKS,
                 "fidelity_map_and_top_model_s": round(time.perf_counter() - t0, 1)}
    per_src = {s: rho_pair(feats.S[:, j], y, top) for j, s in enumerate(src)}
    best = max(per_src, key=lambda s: per_src[s][1])
    out["best_source"] = {"name": best, "rho_all": per_src[best][0],
                          "rho_top10": per_src[best][1]}
    out["per_source"] = {s: {"rho_all": a, "rho_top10": b} for s, (a, b) in per_src.items()}
    if lf is not None:
        a, b = rho_pair(normal_scores(lf).mean(axis=1), y, top)
        out["lf_alone"] = {"rho_all": a, "rho_top10": b}
    if proxies is not None:
        from hwnas.meta.accuracy_proxies import PROXIES

        out["proxy_alone"] = {p: dict(zip(("rho_all", "rho_top10"),
                                          rho_pair(proxies[:, j], y, top), strict=True))
                              for j, p in enumerate(PROXIES)}
    coverages = ["all", str(PARTIAL)] if lf is not None and not subset else ["all"]
    variants: dict[str, dict] = {}
    every = np.arange(n)
    ks = [k for k in args.ks if k < n]
    for cov in coverages:
        scores: dict[str, dict[int, list]] = {}
        for seed in range(args.seeds):
            lf_seed = lf
            if lf is not None and cov != "all":
                lf_seed = np.full_like(lf, np.nan)
                keep = np.random.default_rng(1000 + seed).choice(n, int(cov), replace=False)
                lf_seed[keep] = lf[keep]
            # the second stage named explicitly, whatever the library's defaults
            preds = {"mf": MultiFidelityPredictor(feats, lf_seed, proxies,
                                                  fidelity_map=fmap or False,
                                                  top_model=top_model or False,
                                                  structure_head=True, safeguard=0.5,
                                                  low_fidelity_names=lf_names),
                     # the first stage alone (map + heads): the method before the second stage
                     "mf-first-stage": MultiFidelityPredictor(
                         feats, lf_seed, proxies, fidelity_map=fmap or False,
                         low_fidelity_names=lf_names, structure_head=False, top_model=False,
                         safeguard=0.0),
                     "mf-nomap": MultiFidelityPredictor(feats, lf_seed, proxies,
                                                        fidelity_map=False),
                     "nearest": NearestSourcePredictor(feats)}
            if proxies is not None:
                preds["mf-noproxy"] = MultiFidelityPredictor(feats, lf_seed, None,
                                                             fidelity_map=fmap or False,
                                                             top_model=top_model or False,
                                                             structure_head=True, safeguard=0.5,
                                                             low_fidelity_names=lf_names)
            rng = np.random.default_rng(seed)
            for k in ks:
                shots = rng.choice(n, k, replace=False) if k < n else every
                for name, p in preds.items():
                    p.fit(shots, y[shots])
                    scores.setdefault(name, {}).setdefault(k, []).append(
                        rho_pair(p.predict_score(every), y, top))
        variants[cov] = {name: {str(k): _summary(v) for k, v in by_k.items()}
                         for name, by_k in scores.items()}
    out["coverage"] = variants
    if not subset and not args.no_ceiling:
        out.update(target_ceilings(acc, tasks, target, A, C))
    return out


def target_ceilings(acc: pd.DataFrame, tasks: list[str], target: str, A: np.ndarray,
                    C: np.ndarray) -> dict:
    """``ceiling`` (structure + one-hot + sources) and, where the target has low-fidelity
    columns, ``ceiling+lf``; each cached under ``cache_root()/accuracy`` (minutes per forest
    here), so a separate ``--ceiling-only`` process can compute them beside the main run."""
    from hwnas.latency import atomic_write_text
    from hwnas.meta.accuracy_features import source_tasks
    from hwnas.search import cache_root

    src = source_tasks(target, tasks, exclude="dataset")
    lf_names = low_fidelity_columns(target, tasks)
    y = acc[target].to_numpy(np.float64)
    top = y >= np.quantile(y, 0.9)
    base = np.hstack([C, A, acc[src].to_numpy(np.float64)])
    kinds = {"ceiling": base}
    if lf_names:
        kinds["ceiling+lf"] = np.hstack([base, acc[lf_names].to_numpy(np.float64)])
    out = {}
    for kind, X in kinds.items():
        path = cache_root() / "accuracy" / f"ceiling_nb201_{target}_{kind}_et100_5fold_v1.json"
        if path.is_file():
            out[kind] = json.loads(path.read_text())
            continue
        t0 = time.perf_counter()
        out[kind] = ceiling(X, y, top)
        out[kind]["seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(path, json.dumps(out[kind]) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="public tables (default: HWNAS_DATA)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--ks", default=",".join(map(str, KS)))
    ap.add_argument("--tasks", default=None, help="comma-separated targets (default: every column)")
    ap.add_argument("--proxy-n", type=int, default=3000, help="0: skip the proxy table")
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--time-proxies", type=int, default=0, metavar="N",
                    help="only time the proxies on N architectures (writes --out)")
    ap.add_argument("--ceiling-only", action="store_true",
                    help="only compute (and cache) the targets' ceilings")
    ap.add_argument("--out", type=Path,
                    default=REPO / "results/benchmarks/accuracy_multifidelity.json")
    args = ap.parse_args()
    args.ks = [int(k) for k in args.ks.split(",")]
    import torch

    from hwnas.bench import load_tables
    from hwnas.latency import atomic_write_text, describe_environment
    from hwnas.meta.accuracy_proxies import PROXIES
    from hwnas.meta.encoders import onehot_features, structure_features

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    tables = load_tables("nb201", args.data)
    acc, tasks = tables.accuracy, list(tables.tasks)
    targets = args.tasks.split(",") if args.tasks else tasks
    A = onehot_features(tables.space, tables.archs).astype(np.float64)
    C = structure_features(tables.space, tables.archs)
    if args.time_proxies:
        record = {"benchmark": "accuracy_proxy_cost", "space": "nb201",
                  **time_proxies(tables, args.time_proxies),
                  "environment": describe_environment()}
        atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
        print(json.dumps(record, indent=2))
        return
    if args.ceiling_only:
        for target in targets:
            print(target, target_ceilings(acc, tasks, target, A, C), flush=True)
        return
    full = []
    for target in targets:
        t0 = time.perf_counter()
        full.append(_target(acc, tasks, target, A, C, args))
        full[-1]["seconds"] = round(time.perf_counter() - t0, 1)
    proxy_rows, proxy_cost = [], None
    if args.proxy_n:
        t0 = time.perf_counter()
        frame = proxy_subset(tables, args.proxy_n)
        proxy_cost = time.perf_counter() - t0
        idx = frame["index"].to_numpy()
        P = frame[list(PROXIES)].to_numpy(np.float64)
        for target in targets:
            proxy_rows.append(_target(acc, tasks, target, A, C, args, rows=idx, proxies=P))
    record = {
        "benchmark": "accuracy_multifidelity", "space": "nb201", "seeds": args.seeds,
        "ks": args.ks, "partial_coverage": PARTIAL, "validation_tasks": list(VALIDATION_TASKS),
        "full_table": full,
        "proxy_subset": {"n": args.proxy_n, "seed": PROXY_SUBSET_SEED, "data": "digits (sklearn), "
                         "one 64-image training minibatch; NOT the target's CIFAR/ImageNet16 "
                         "images (not available offline)",
                         "load_or_compute_s": None if proxy_cost is None else round(proxy_cost, 1),
                         "rows": proxy_rows},
        "seconds": round(time.perf_counter() - t_start, 1),
        "environment": describe_environment(),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print_tables(record)
    print(f"\nwrote {args.out} ({record['seconds']} s)")


def _cell(d: dict | None) -> str:
    return "-" if d is None else f"{d['rho_all']:.3f} / {d['rho_top10']:.3f}"


def print_tables(record: dict, k: int = 20) -> None:
    ks = str(k)
    for label, rows, covs in (("full table", record["full_table"], ("all", str(PARTIAL))),
                              (f"proxy subset ({record['proxy_subset']['n']} architectures)",
                               record["proxy_subset"]["rows"], ("all",))):
        if not rows:
            continue
        for cov in covs:
            if not any(cov in r["coverage"] for r in rows):
                continue
            print(f"\n### {label}; low-fidelity coverage {cov}; K={k}, mean of "
                  f"{record['seeds']} seeds; rho all / rho top-10%\n")
            methods = sorted({m for r in rows if cov in r["coverage"]
                              for m in r["coverage"][cov]})
            head = ["target", *methods, "best source", "lf alone", "ceiling", "ceiling+lf"]
            if label != "full table":
                head = head[:-2] + ["synflow", "jacob_cov", "naswot"]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for r in rows:
                if cov not in r["coverage"]:
                    continue
                name = r["target"] + (" (validation)" if r["validation"] else "")
                cells = [name] + [_cell(r["coverage"][cov].get(m, {}).get(ks)) for m in methods]
                # the cheap results alone rank only where they exist: full coverage
                cells += [_cell(r["best_source"]) + f" ({r['best_source']['name']})",
                          _cell(r.get("lf_alone") if cov == "all" else None)]
                if label == "full table":
                    cells += [_cell(r.get("ceiling")), _cell(r.get("ceiling+lf"))]
                else:
                    cells += [_cell(r["proxy_alone"][p]) for p in ("synflow", "jacob_cov",
                                                                   "naswot")]
                print("| " + " | ".join(cells) + " |")
    for cov in ("all", str(PARTIAL)):
        rows = [r for r in record["full_table"] if cov in r["coverage"]]
        if not rows:
            continue
        print(f"\n### curves (full table, coverage {cov}): mf (nearest source) by K; rho all / "
              "rho top-10%\n")
        print("| target | " + " | ".join(f"K={k}" for k in record["ks"]) + " |")
        print("|" + "---|" * (1 + len(record["ks"])))
        for r in rows:
            mf, near = r["coverage"][cov]["mf"], r["coverage"][cov]["nearest"]
            print(f"| {r['target']} | " + " | ".join(
                f"{mf[str(k)]['rho_all']:.3f} / {mf[str(k)]['rho_top10']:.3f} "
                f"({near[str(k)]['rho_all']:.3f} / {near[str(k)]['rho_top10']:.3f})"
                if str(k) in mf else "-" for k in record["ks"]) + " |")
