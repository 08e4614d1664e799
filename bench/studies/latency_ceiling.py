"""How well can a device's latencies be ranked at all? The noise ceiling of each latency table.

For every test device of HELP's splits, two models are fitted on 80% of the device's *own*
measurements -- about 12,500 on NB201, against the 20 a few-shot predictor sees -- and rank the
other 20% (5 folds, out-of-fold predictions, Spearman's rho over every architecture):

- a gradient-boosted model (scikit-learn's ``HistGradientBoostingRegressor``) of the
  log-latency, from the source devices' log-latencies, the structural counts and the one-hot genes;
- a linear model of the milliseconds (``RidgeCV``), from the source devices' milliseconds, the
  structural counts and the one-hot genes: latency as a sum of costs, which is what CPUs and
  accelerators are close to.

What the better of the two misses is what the table's measurement noise, ties and resolution
leave unexplained: a few-shot figure above it (or a published one) is not reproducible on this
table.

Usage::

    python bench/scripts/latency_ceiling.py [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from hwnas.bench import load_tables
from hwnas.latency.table import atomic_write_text
from hwnas.meta.encoders import onehot_features, structure_features
from hwnas.meta.latency_features import LatencyFeatures

from .latency_transfer import HELP, SPLITS

__all__ = ["ceiling", "ceiling_predictions", "main"]

REPO = Path(__file__).resolve().parents[2]


def ceiling_predictions(X: np.ndarray, y: np.ndarray, model, seed: int = 0) -> np.ndarray:
    """``model``'s 5-fold out-of-fold predictions of ``y`` from ``X`` (shuffled folds)."""
    return cross_val_predict(model, X, y, cv=KFold(5, shuffle=True, random_state=seed))


def ceiling(X: np.ndarray, y: np.ndarray, model, seed: int = 0) -> float:
    """Spearman's rho of ``model``'s 5-fold out-of-fold predictions of ``y`` from ``X``."""
    return float(spearmanr(ceiling_predictions(X, y, model, seed), y)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    p.add_argument("--splits", default="nb201,fbnet,ofa")
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks"
                   / "latency_ceiling.json")
    args = p.parse_args()
    out: dict = {"method": "5-fold out-of-fold predictions from the device's own measurements; "
                           "boosted_log: HistGradientBoosting(max_iter=300) of the log-latency "
                           "from source log-latencies, structure, one-hot; linear_ms: RidgeCV of "
                           "the milliseconds from source milliseconds, structure, one-hot; best: "
                           "the higher", "command": " ".join(sys.argv), "splits": {}}
    lines = ["| split | device | boosted (log) | linear (ms) | HELP (published) |",
             "|---|---|---:|---:|---:|"]
    for name in args.splits.split(","):
        space_name, train, _, test = SPLITS[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables = load_tables(space_name, args.data)
        train = [d for d in train if d in tables.devices]
        src = tables.latency[train].to_numpy(np.float64)
        feats = LatencyFeatures(src, onehot_features(tables.space, tables.archs),
                                structure_features(tables.space, tables.archs), train)
        X = np.hstack([feats.S, feats.C, feats.A])
        X_ms = np.hstack([src / src.mean(axis=0), feats.C, feats.A])
        res = {}
        for dev in test:
            t0 = time.time()
            y = tables.latency[dev].to_numpy(np.float64)
            boosted = HistGradientBoostingRegressor(max_iter=300, random_state=0)
            r = {"boosted_log": ceiling(X, np.log(y), boosted),
                 "linear_ms": ceiling(X_ms, y, RidgeCV(alphas=np.logspace(-3, 3, 13)))}
            res[dev] = {**r, "best": max(r.values())}
            help_ = HELP.get(name, {}).get(dev)
            lines.append(f"| {name} | {dev} | {r['boosted_log']:.4f} | {r['linear_ms']:.4f} | "
                         f"{'-' if help_ is None else f'{help_:.3f}'} |")
            print(f"{name} {dev}: {r} ({time.time() - t0:.0f}s)", file=sys.stderr)
        out["splits"][name] = {"train": train, "test": res}
        atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {args.out}")

