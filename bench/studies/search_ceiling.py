"""How much of the NB201 Pareto front can a search find if it knew almost everything it can learn?

The search benchmark's problem is NB201 CIFAR-10 (200-epoch) accuracy x latency on a device. A
search that sees only its own evaluations has to learn accuracy from the architecture. This script
asks what that knowledge is worth at its best, and what the table's training noise leaves open:

- **Training noise.** Cells whose live parts are identical (the same :func:`graph_features` row:
  live operations, their pairs, the paths) compute the same function, yet each was trained on its
  own; the pooled standard deviation of accuracy within such groups (groups averaging above 90%)
  is noise no model of the architecture can predict. Per device, the number of architectures above
  chance level within 0.1 and 0.3 accuracy points of the true front (at their latency; a tie in
  latency goes to the more accurate one) says how many near-ties that noise has to separate.
- **A structural reference.** An extremely randomised forest (Geurts et al., Machine Learning 2006)
  on the same features the surrogate strategy sees is fitted on 80% of the table's *own*
  CIFAR-10 accuracies -- about 12,500, against the 300 or 1,000 a search has -- and predicts the
  other 20% (5 folds, out-of-fold). With these predictions and the device's **exact** latencies:

  - *greedy* asks, at each step, the architecture whose prediction beats the best evaluated
    accuracy at or below its latency by the most (adaptive);
  - *membership* believes accuracy ~ Normal(prediction, s), ``s`` in 0.1 / 0.2 / 0.4 points, and
    asks architectures in order of how often they are on the Pareto front of a sampled world
    (400 draws of every accuracy; static; the probability of Pareto optimality that
    Thompson-sampling multi-objective searches such as TSEMO, Bradford et al., J. Global
    Optimization 2018, sample from).

  The best policy per device and budget is reported, which flatters the reference. Its front
  recall at 300 and 1,000 evaluations is what near-complete structural knowledge buys; a strategy
  that learns from its own evaluations is not expected to pass it, though a better policy could.
- **The same with latency learned, not given.** A search knows a device's latencies only where it
  has measured them; the rest it predicts (from the other devices' latencies, its default prior
  set, and the structure). The second reference predicts the device's log-latency the same way,
  out of fold from 80% of its own table (a ridge on the standardised structure and every other
  device's log-latency, and gradient-boosted trees on the same; each model is tried and the best
  model and policy per budget reported), and runs the policies on both predictions: *greedy*
  compares a prediction with the evaluated staircase at its predicted latency (the staircase
  itself is built from measured values), *membership* samples both objectives (latency with the
  out-of-fold residual spread). On a device whose
  latencies other devices explain almost exactly the two references agree; where they do not
  (a phone's or a board's noise), this one says how much of the front any search that has to
  learn the latency can expect.

Like :mod:`search_oracle`, this is a diagnostic, not a strategy a user can run: it uses the table's
own accuracies. Deterministic (seeded folds and forest).

Usage::

    python bench/scripts/search_ceiling.py [--devices titan_rtx_256,...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hwnas.bench import load_tables
from hwnas.bench.harness import nb201_problem
from hwnas.latency.table import atomic_write_text
from hwnas.search.strategies.surrogate import PairwiseFeatures, graph_features

__all__ = ["out_of_fold", "latency_out_of_fold", "greedy_search", "membership_order",
           "front_gaps", "main"]

REPO = Path(__file__).resolve().parents[2]
TASK = "cifar10_test_200ep"
HELP_TEST_DEVICES = "titan_rtx_256,gold_6226,fpga,pixel2,raspi4,eyeriss"
BUDGETS = (300, 1000)
NOISE_SCALES = (0.1, 0.2, 0.4)


def out_of_fold(X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """5-fold out-of-fold predictions of an extremely randomised forest (200 trees)."""
    pred = np.empty(len(y))
    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
        forest = ExtraTreesRegressor(200, max_features=0.5, min_samples_leaf=2, random_state=seed,
                                     n_jobs=-1).fit(X[train], y[train])
        pred[test] = forest.predict(X[test])
    return pred


def latency_out_of_fold(X: np.ndarray, log_lat: np.ndarray, seed: int = 0
                        ) -> dict[str, np.ndarray]:
    """5-fold out-of-fold predictions of ``log_lat`` from ``X`` by two models: a ridge on
    standardised columns (penalty by efficient leave-one-out) and gradient-boosted trees;
    model name -> predictions."""
    folds = KFold(5, shuffle=True, random_state=seed)
    models = {"ridge": make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13))),
              "boosted trees": HistGradientBoostingRegressor(max_iter=300, random_state=seed)}
    return {name: cross_val_predict(model, X, log_lat, cv=folds)
            for name, model in models.items()}


def greedy_search(mu: np.ndarray, acc: np.ndarray, lat: np.ndarray, budget: int,
                  lat_pred: np.ndarray | None = None) -> np.ndarray:
    """Indices asked, in order, by a search that knows every latency: each step asks the
    architecture whose prediction beats the best evaluated accuracy at or below its latency by
    the most (with one spread for every prediction, the likeliest to beat it), the higher
    prediction among equals.

    With ``lat_pred`` (on ``lat``'s scale) the search knows only the predictions: a candidate is
    compared with the evaluated staircase at its predicted latency, and the staircase is built
    from the measured ``lat`` of what was evaluated.
    """
    lat_of = lat if lat_pred is None else lat_pred
    asked = np.zeros(len(mu), dtype=bool)
    order: list[int] = []
    best = np.full(len(mu), -np.inf)
    for _ in range(budget):
        score = mu - best
        score[asked] = -np.inf
        # ties (every architecture faster than all evaluated ones is a certain improvement) go to
        # the higher predicted accuracy: with exact predictions the search walks down the front
        i = int(np.lexsort((mu, score))[-1])
        asked[i] = True
        order.append(i)
        # the evaluated staircase (best accuracy among evaluated architectures no slower) rises
        # to acc[i] wherever i is no slower
        np.maximum(best, acc[i], out=best, where=lat_of >= lat[i])
    return np.array(order)


def membership_order(mu: np.ndarray, s: float, lat: np.ndarray, draws: int = 400,
                     seed: int = 0, lat_sd: float = 0.0) -> np.ndarray:
    """Indices by decreasing frequency of being on the Pareto front (max accuracy, min latency) when
    every accuracy is drawn from Normal(``mu``, ``s``) and latencies are exact -- or, with
    ``lat_sd > 0``, drawn from Normal(``lat``, ``lat_sd``) too (``lat`` then holds predictions)."""
    rng = np.random.default_rng(seed)
    # an architecture more than 6 s behind the best predicted accuracy of those clearly faster
    # (by 3 lat_sd; exact latencies: every faster one) is (practically) never on the front
    gap = front_gaps(mu, lat)
    if lat_sd > 0:
        by_lat = np.argsort(lat, kind="stable")
        best = np.maximum.accumulate(mu[by_lat])
        k = np.searchsorted(lat[by_lat], lat - 3 * lat_sd, "right")
        faster = np.where(k > 0, best[np.maximum(k - 1, 0)], -np.inf)
        cand = np.flatnonzero(mu > faster - 6 * s)
    else:
        cand = np.flatnonzero(gap < 6 * s)
    freq = np.zeros(len(mu))
    for _ in range(draws):
        a = mu[cand] + s * rng.standard_normal(len(cand))
        t = lat[cand] + lat_sd * rng.standard_normal(len(cand)) if lat_sd > 0 else lat[cand]
        # by latency, then accuracy (a tie in latency goes to the more accurate): a member beats
        # every architecture before it
        order = np.lexsort((-a, t))
        a = a[order]
        best_before = np.concatenate([[-np.inf], np.maximum.accumulate(a)[:-1]])
        freq[cand[order]] += a > best_before
    # architectures never on a sampled front follow, nearest the predicted front first
    return np.lexsort((gap, -freq))


def front_gaps(acc: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Accuracy points by which each architecture trails the best one no slower than it."""
    order = np.lexsort((-acc, lat))  # a tie in latency: the more accurate one first
    gap = np.empty(len(acc))
    gap[order] = np.maximum.accumulate(acc[order]) - acc[order]
    return gap


def _recall(front: np.ndarray, orders: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {policy: {str(b): float(np.isin(front, order[:b]).mean()) for b in BUDGETS}
            for policy, order in orders.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None,
                       help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    p.add_argument("--devices", default=HELP_TEST_DEVICES)
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks"
                   / "search_ceiling.json")
    args = p.parse_args()
    t0 = time.perf_counter()
    tables = load_tables("nb201", args.data)
    devices = [d for d in args.devices.split(",") if d]
    for d in devices:
        tables.check_device(d)
    archs = list(tables.archs)
    live = graph_features(tables.space, archs, 5000)
    X = np.concatenate([PairwiseFeatures(tables.space, 0)(archs), live], axis=1)
    acc = tables.get_accuracy(TASK, np.arange(len(archs)))

    _, group, size = np.unique(live, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    means = np.bincount(group, acc) / size
    dev2 = np.bincount(group, (acc - means[group]) ** 2)
    keep = (size >= 2) & (means > 90)
    noise_sd = float(np.sqrt(dev2[keep].sum() / (size[keep] - 1).sum()))
    print(f"training noise: pooled sd {noise_sd:.3f} points over {int(keep.sum())} groups of "
          "equivalent cells", file=sys.stderr)

    mu = out_of_fold(X, acc)
    top = acc > np.quantile(acc, 0.9)
    model = {"spearman": float(spearmanr(mu, acc)[0]),
             "spearman_top10pct": float(spearmanr(mu[top], acc[top])[0]),
             "residual_sd_top10pct": float(np.std(acc[top] - mu[top]))}
    print(f"forest, out of fold: rho {model['spearman']:.4f}, top 10% rho "
          f"{model['spearman_top10pct']:.3f}", file=sys.stderr)

    # the default prior set's latency columns: every device's log-latency (the target's own
    # column is dropped per device)
    log_lat = np.log(np.column_stack([tables.get_latency(d, np.arange(len(archs)))
                                      for d in tables.devices]))
    per_device = {}
    for d in devices:
        problem = nb201_problem(tables, d, TASK)
        lat, front = problem.F[:, 1], problem.front
        gap = front_gaps(acc, lat)
        learned = acc > acc.min()  # chance-level cells are exact ties, not training noise
        orders = {"greedy": greedy_search(mu, acc, lat, max(BUDGETS))}
        for s in NOISE_SCALES:
            orders[f"membership s={s}"] = membership_order(mu, s, lat)
        recall = _recall(front, orders)
        best = {str(b): max(r[str(b)] for r in recall.values()) for b in BUDGETS}

        # the reference flatters here too: each latency model's predictions under each policy,
        # the best per budget reported
        own = list(tables.devices).index(d)
        Xl = np.concatenate([X, np.delete(log_lat, own, axis=1)], axis=1)
        y = np.log(lat)
        latency_models, recall_learned = {}, {}
        for name, lat_mu in latency_out_of_fold(Xl, y).items():
            lat_sd = float(np.std(y - lat_mu))
            latency_models[name] = {"spearman": float(spearmanr(lat_mu, y)[0]),
                                    "residual_sd_log": lat_sd}
            orders = {f"{name}, greedy": greedy_search(mu, acc, y, max(BUDGETS), lat_pred=lat_mu)}
            for s in NOISE_SCALES:
                orders[f"{name}, membership s={s}"] = membership_order(mu, s, lat_mu,
                                                                       lat_sd=lat_sd)
            recall_learned.update(_recall(front, orders))
        best_learned = {str(b): max(r[str(b)] for r in recall_learned.values()) for b in BUDGETS}
        lat_rho = max(m["spearman"] for m in latency_models.values())
        per_device[d] = {"front_size": int(len(front)),
                         "within_0.1": int((learned & (gap <= 0.1)).sum()),
                         "within_0.3": int((learned & (gap <= 0.3)).sum()),
                         "recall_by_policy": recall, "recall_best": best,
                         "latency_models": latency_models,
                         "recall_by_policy_learned_latency": recall_learned,
                         "recall_best_learned_latency": best_learned}
        print(f"{d}: front {len(front)}, recall {best['300']:.2f} / {best['1000']:.2f}, "
              f"latency learned (rho {lat_rho:.4f}) {best_learned['300']:.2f} / "
              f"{best_learned['1000']:.2f}", file=sys.stderr, flush=True)
    out = {"benchmark": "search_ceiling", "task": TASK, "command": " ".join(sys.argv),
           "training_noise_sd": noise_sd, "training_noise_groups": int(keep.sum()),
           "model": model, "noise_scales": list(NOISE_SCALES),
           "budgets": list(BUDGETS), "devices": per_device,
           "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print("| device | front | within 0.1 / 0.3 points | reference recall @300 / @1000 | "
          "latency learned: rho | recall @300 / @1000 |")
    print("|---|---:|---:|---:|---:|---:|")
    for d, r in per_device.items():
        rl = r["recall_best_learned_latency"]
        print(f"| {d} | {r['front_size']} | {r['within_0.1']} / {r['within_0.3']} | "
              f"{r['recall_best']['300']:.2f} / {r['recall_best']['1000']:.2f} | "
              f"{max(m['spearman'] for m in r['latency_models'].values()):.4f} | "
              f"{rl['300']:.2f} / {rl['1000']:.2f} |")
    print(f"\nwrote {args.out}")

