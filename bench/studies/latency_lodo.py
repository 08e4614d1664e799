"""Few-shot latency transfer, leave one device out, over every public device of every space.

For each space (nb201, fbnet, ofa) and each of its public devices as the target, the sources are
*every other* device of the space. The target's shots are what ``hwnas latency plan`` asks for
(HELP's 10 reference architectures, then D-optimal picks; below 10 shots a prefix of the
reference set), 5 seeds (the seed draws the plan's candidate pool and the meta-training). Every
method sees the same shots and is scored on every other architecture of the table by Spearman's
rho and Kendall's tau-b (phone tables are rounded to 1 ms: many ties). Per device:

- ``hwnas``: :class:`hwnas.meta.MetaLatencyPredictor` adapted to the shots (the library defaults);
- ``ridge``: a ridge regression (penalty 1) of the target's log-latency on the source devices'
  standardised log-latencies, fitted to the same shots (the baseline of
  :mod:`hwnas.bench.studies.latency_transfer`);
- ``nearest``: the source device whose ranking agrees best with the shots, used as the ranking;
  ``closest``: the source device that really ranks the target best (an oracle: its name and rho);
- ``flops``: the FLOPs ranking (nb201, fbnet; none for ofa);
- ``ceiling``: the device's own-table ceiling (:mod:`hwnas.bench.studies.latency_ceiling`:
  5-fold out-of-fold predictions from 80% of its own table, features from the same sources; the
  boosted model only where the linear one ranks below 0.995, for time).

Meta-training once per target and seed is too slow for 60 targets on a shared 2-core machine
(nb201: ~33 s per meta-training of 150 steps on 23 sources), so the devices of a space are dealt
into 5 folds (sorted names, round robin) and the encoder is meta-trained once per fold and seed on
the devices *outside* the fold; each target of the fold then adapts with every other device as a
source (its features hold the other fold members too, its encoder never saw the target).

Validation devices (where methods and defaults were chosen; fixed before looking at any result):
HELP's meta-train and meta-valid devices of each space (``latency_transfer.SPLITS``); every other
device is held out. The report lists all devices and marks the validation ones.

Usage::

    nice -n 5 python bench/scripts/latency_lodo.py --jobs 2 [--spaces nb201,fbnet,ofa]
        [--devices validation|all] [--variants default,...] [--out FILE]

Writes the JSON (default ``results/benchmarks/latency_lodo.json``) atomically and prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV

from hwnas.bench import load_tables
from hwnas.latency.table import atomic_write_text
from hwnas.meta.encoders import onehot_features, structure_features
from hwnas.meta.latency import LatencyTask, MetaLatencyPredictor
from hwnas.meta.latency_features import LatencyFeatures, plan_shots, ridge_loo
from hwnas.search.tables import reference_indices

from .latency_ceiling import ceiling_predictions
from .latency_transfer import SPLITS, stats_baseline

__all__ = ["SPACES", "SHOT_COUNTS", "VARIANTS", "device_folds", "validation_devices",
           "evaluate_fold", "device_ceiling", "run", "markdown", "main"]

REPO = Path(__file__).resolve().parents[2]
SPACES = ("nb201", "fbnet", "ofa")
SHOT_COUNTS = (5, 10, 20, 50, 100)
MAIN_SHOTS = 20
SEEDS = tuple(range(5))
N_FOLDS = 5
#: the boosted ceiling model (minutes on fbnet's 200 one-hot columns under load) is fitted only
#: where the linear one ranks below this: above it the ceiling is within 0.005 of 1 anyway
LINEAR_ENOUGH = 0.995
#: adaptation-time settings compared on the validation devices (keyword arguments of
#: MetaLatencyPredictor that do not change meta-training); "default" is the library's default
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    # the defaults before this benchmark: no nearest-source head, D-optimal over every source
    "previous": {"nearest": False, "plan": {"components": None, "structure": False}},
    "no-nearest": {"nearest": False},
    # the adaptive-ridge heads (latency_features.adaptive_ridge_loo), now the default, and the
    # default before them
    "adaptive": {"adaptive": (4.0, 8.0, 16.0)},
    "no-adaptive": {"adaptive": ()},
    # the kernel-ridge heads (latency_features.kernel_ridge_loo), now the default, and the
    # default before them
    "kernel": {"kernel": (1.0, 2.0, 4.0, 8.0)},
    "no-kernel": {"kernel": ()},
    "nearest": {"nearest": True},
    "T0.5": {"temperature": 0.5},
    "T0.25": {"temperature": 0.25},
    "T2": {"temperature": 2.0},
    "no-nearest-T0.5": {"nearest": False, "temperature": 0.5},
    "nearest-rank": {"nearest_by": "rank"},
    "nearest-rank-T2": {"nearest_by": "rank", "temperature": 2.0},
    "nearest-rank-pc5": {"nearest_by": "rank", "plan": {"components": 5, "structure": False}},
    # the shot plan (the ridge baseline is refitted on each plan's shots: ridge:<variant>)
    # (the plan variants were compared while the default plan was D-optimal over every source
    # column without the structure: components None, structure False)
    "plan-pc5": {"plan": {"components": 5, "structure": False}},
    "plan-pc10": {"plan": {"components": 10, "structure": False}},
    "plan-struct": {"plan": {"components": None, "structure": True}},
    "plan-pc5-struct": {"plan": {"components": 5, "structure": True}},
}


def validation_devices(space: str) -> list[str]:
    """HELP's meta-train and meta-valid devices of ``space``: where methods are chosen."""
    _, train, valid, _ = SPLITS[space]
    return train + valid


def device_folds(devices: list[str], k: int = N_FOLDS) -> list[list[str]]:
    """The devices dealt into ``k`` folds: sorted names, round robin (fixed, seed-free)."""
    order = sorted(devices)
    return [order[i::k] for i in range(k) if order[i::k]]


@dataclass
class _Space:
    name: str
    tables: Any
    devices: list[str]
    A: np.ndarray
    C: np.ndarray
    ref: np.ndarray
    flops: np.ndarray | None

    def features(self, sources: list[str]) -> LatencyFeatures:
        src = self.tables.latency[sources].to_numpy(np.float64)
        return LatencyFeatures(src, self.A, self.C, sources)

    def log_latency(self, device: str) -> np.ndarray:
        return np.log(self.tables.latency[device].to_numpy(np.float64))


_CACHE: dict[tuple[str, str | None], _Space] = {}


def _space(name: str, data: Path | None) -> _Space:
    key = (name, None if data is None else str(data))
    if key not in _CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables = load_tables(name, data)
        lat = tables.latency[list(tables.devices)].to_numpy(np.float64)
        usable = np.isfinite(lat).all(axis=0) & (lat > 0).all(axis=0)
        devices = [d for d, ok in zip(tables.devices, usable, strict=True) if ok]
        flops, _ = stats_baseline(tables.space, tables.archs)
        _CACHE[key] = _Space(name, tables, devices,
                             onehot_features(tables.space, tables.archs),
                             structure_features(tables.space, tables.archs),
                             np.asarray(reference_indices(name, data), dtype=np.int64), flops)
    return _CACHE[key]


def _scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    return float(spearmanr(pred, true)[0]), float(kendalltau(pred, true)[0])


def _add(res: dict[str, list[float]], name: str, pred: np.ndarray, y: np.ndarray,
         rest: np.ndarray) -> None:
    r, t = _scores(pred[rest], y[rest])
    res.setdefault(f"{name}/rho", []).append(r)
    res.setdefault(f"{name}/tau", []).append(t)


def evaluate_fold(space: str, fold: int, data: Path | None, meta_steps: int,
                  variants: list[str], targets: list[str] | None,
                  cache: Path | None) -> dict[str, Any]:
    """Meta-train on the devices outside fold ``fold`` (once per seed), then evaluate every
    target of the fold (all of them, or those in ``targets``) with every other device as a
    source. Returns ``{device: record}`` and the fold's meta-training seconds."""
    sp = _space(space, data)
    members = device_folds(sp.devices)[fold]
    todo = [d for d in members if targets is None or d in targets]
    out: dict[str, Any] = {"devices": {}, "meta_seconds": 0.0}
    if not todo:
        return out
    outside = [d for d in sp.devices if d not in members]
    fold_feats = sp.features(outside)
    tasks = [LatencyTask(d, fold_feats.source_latency_ms[:, j], j) for j, d in enumerate(outside)]
    states = {}
    for seed in SEEDS:
        t0 = time.time()
        path = None if cache is None else cache / f"{space}-fold{fold}-s{seed}-m{meta_steps}.npz"
        meta = MetaLatencyPredictor(fold_feats, reference=sp.ref, seed=seed,
                                    meta_steps=meta_steps).meta_fit(tasks, cache=path)
        states[seed] = meta.state()
        out["meta_seconds"] += time.time() - t0
    n = len(sp.tables)
    for dev in todo:
        sources = [d for d in sp.devices if d != dev]
        feats = sp.features(sources)
        y = sp.log_latency(dev)
        src_logs = np.log(feats.source_latency_ms)
        preds = {v: MetaLatencyPredictor(feats, reference=sp.ref, meta_steps=meta_steps,
                                         **{a: b for a, b in VARIANTS[v].items() if a != "plan"})
                 for v in variants}
        rec: dict[str, Any] = {"fold": fold, "curves": {}}
        closest = [spearmanr(src_logs[:, j], y)[0] for j in range(len(sources))]
        rec["closest"] = {"device": sources[int(np.nanargmax(closest))],
                          "rho": float(np.nanmax(closest))}
        for k in SHOT_COUNTS:
            res: dict[str, list[float]] = {}
            for seed in SEEDS:
                plans = {v: VARIANTS[v].get("plan", {}) for v in variants}
                drawn = {json.dumps(p, sort_keys=True): plan_shots(feats, k, sp.ref, seed, **p)
                         for p in [{}, *plans.values()]}
                shots = {v: drawn[json.dumps(plans[v], sort_keys=True)] for v in variants}
                sup = drawn["{}"]
                rest = np.setdiff1d(np.arange(n), sup)
                for v in variants:
                    meta = preds[v]
                    meta.seed = seed
                    meta.load_state(states[seed])
                    s_v = shots[v]
                    r_v = np.setdiff1d(np.arange(n), s_v)
                    adapted = meta.adapt(s_v, np.exp(y[s_v]))
                    _add(res, f"hwnas:{v}", adapted.log_latency_, y, r_v)
                    if plans[v]:
                        _add(res, f"ridge:{v}", ridge_loo(feats.S, y[s_v], s_v, 1.0)[0], y, r_v)
                    if k == MAIN_SHOTS and v == variants[0]:
                        w = res.setdefault("weights", [])
                        w.append(dict(zip(adapted.candidates_,
                                          np.round(adapted.weights_, 3).tolist(), strict=True)))
                _add(res, "ridge", ridge_loo(feats.S, y[sup], sup, 1.0)[0], y, rest)
                if k == MAIN_SHOTS:
                    near = int(np.nanargmax([spearmanr(src_logs[sup, j], y[sup])[0]
                                             for j in range(len(sources))]))
                    _add(res, "nearest", src_logs[:, near], y, rest)
                    if sp.flops is not None:
                        _add(res, "flops", sp.flops, y, rest)
            rec["curves"][str(k)] = {m: (v if m == "weights" else
                                         {"mean": float(np.mean(v)), "per_seed": v})
                                     for m, v in res.items()}
        out["devices"][dev] = rec
    return out


def device_ceiling(space: str, device: str, data: Path | None) -> dict[str, float]:
    """The device's own-table ceiling (5-fold, :mod:`latency_ceiling`'s two models; the boosted
    one only where the linear one is below :data:`LINEAR_ENOUGH`), with the other devices as
    sources; rho and tau-b of the better model."""
    sp = _space(space, data)
    sources = [d for d in sp.devices if d != device]
    feats = sp.features(sources)
    src = feats.source_latency_ms
    y = sp.log_latency(device)
    X = np.hstack([feats.S, feats.C, feats.A])
    X_ms = np.hstack([src / src.mean(axis=0), feats.C, feats.A])
    linear = ceiling_predictions(X_ms, np.exp(y), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    r = {"linear_ms": _scores(linear, y)}
    if r["linear_ms"][0] < LINEAR_ENOUGH:
        boosted = ceiling_predictions(X, y, HistGradientBoostingRegressor(max_iter=300,
                                                                           random_state=0))
        r["boosted_log"] = _scores(boosted, y)
    best = max(r, key=lambda m: r[m][0])
    return {**{m: v[0] for m, v in r.items()}, "best": r[best][0], "best_tau": r[best][1],
            "best_model": best}


def _unit(job: tuple) -> tuple[tuple, Any, float]:
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    kind, *args = job
    res = evaluate_fold(*args) if kind == "fold" else device_ceiling(*args)
    return job, res, time.time() - t0


def run(spaces: list[str], data: Path | None, meta_steps: int, variants: list[str],
        which: str, jobs: int, cache: Path | None, ceilings: bool,
        log: Callable[[str], None]) -> dict[str, Any]:
    """Every fold and every ceiling of ``spaces`` over ``jobs`` processes; the results."""
    jobs_list: list[tuple] = []
    targets: dict[str, list[str] | None] = {}
    for s in spaces:
        sp = _space(s, data)
        targets[s] = ([d for d in sp.devices if d in validation_devices(s)]
                      if which == "validation" else None)
        for f in range(len(device_folds(sp.devices))):
            jobs_list.append(("fold", s, f, data, meta_steps, variants, targets[s], cache))
        if ceilings:
            jobs_list += [("ceiling", s, d, data) for d in sp.devices
                          if targets[s] is None or d in targets[s]]
    # the longest first (nb201 folds), so two workers finish together
    jobs_list.sort(key=lambda j: (j[0] != "fold", j[1] != "nb201"))
    out: dict[str, Any] = {s: {"devices": {}, "meta_seconds": 0.0} for s in spaces}
    ctx = get_context("fork")
    with ctx.Pool(jobs) as pool:
        for job, res, secs in pool.imap_unordered(_unit, jobs_list):
            s = job[1]
            if job[0] == "fold":
                for d, rec in res["devices"].items():
                    out[s]["devices"].setdefault(d, {}).update(rec)
                out[s]["meta_seconds"] += res["meta_seconds"]
                log(f"{s} fold {job[2]}: {len(res['devices'])} devices in {secs:.0f}s")
            else:
                out[s]["devices"].setdefault(job[2], {})["ceiling"] = res
                log(f"{s} {job[2]} ceiling {res['best']:.4f} in {secs:.0f}s")
    for s in spaces:
        val = set(validation_devices(s))
        out[s]["devices"] = {d: {"role": "validation" if d in val else "held-out", **r}
                             for d, r in sorted(out[s]["devices"].items())}
        out[s]["folds"] = device_folds(_space(s, data).devices)
    return out


def _mean(rec: dict, k: int, key: str) -> float | None:
    v = rec.get("curves", {}).get(str(k), {}).get(key)
    return None if v is None else v["mean"]


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _device_row(space: str, dev: str, r: dict, h: str, rkey: str) -> tuple[str, dict]:
    """One Markdown row at 20 shots and the numbers the summary needs."""
    c, cl = r.get("ceiling"), r.get("closest")
    hw, rg = _mean(r, MAIN_SHOTS, f"{h}/rho"), _mean(r, MAIN_SHOTS, f"{rkey}/rho")
    gap = None if c is None or hw is None else c["best"] - hw
    cells = [space, dev, r["role"], _f(hw), _f(rg), _f(_mean(r, MAIN_SHOTS, f"{h}/tau")),
             _f(_mean(r, MAIN_SHOTS, f"{rkey}/tau")), _f(_mean(r, MAIN_SHOTS, "nearest/rho")),
             "-" if cl is None else "{} ({:.3f})".format(cl["device"], cl["rho"]),
             _f(_mean(r, MAIN_SHOTS, "flops/rho")),
             "-" if c is None else "{:.3f} ({:.3f})".format(c["best"], c["best_tau"]), _f(gap)]
    return "| " + " | ".join(cells) + " |", {"hw": hw, "rg": rg, "gap": gap}


def markdown(results: dict[str, Any], variant: str) -> str:
    """The per-device table at 20 shots, the means per space and role, and the shot curves."""
    h = f"hwnas:{variant}"
    rkey = f"ridge:{variant}" if VARIANTS[variant].get("plan") else "ridge"
    lines = ["| space | device | role | hwnas rho | ridge rho | hwnas tau | ridge tau | nearest "
             "| closest source (rho) | flops | ceiling rho (tau) | ceiling - hwnas |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    summary = ["| space | devices | n | hwnas rho | ridge rho | margin | hwnas >= ridge "
               "| within 0.05 of ceiling |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    curves = ["| space | method | " + " | ".join(f"{k} shots" for k in SHOT_COUNTS) + " |",
              "|---|---|" + "---:|" * len(SHOT_COUNTS)]
    for s, res in results["spaces"].items():
        groups: dict[str, list[dict]] = {}
        for d, r in res["devices"].items():
            row, nums = _device_row(s, d, r, h, rkey)
            lines.append(row)
            if nums["hw"] is not None:
                for g in ("all", r["role"]):
                    groups.setdefault(g, []).append(nums)
        for g, rows in groups.items():
            hw = np.mean([x["hw"] for x in rows])
            rg = np.mean([x["rg"] for x in rows])
            wins = sum(x["hw"] >= x["rg"] for x in rows)
            gaps = [x["gap"] <= 0.05 for x in rows if x["gap"] is not None]
            summary.append(f"| {s} | {g} | {len(rows)} | {hw:.3f} | {rg:.3f} | {hw - rg:+.3f} | "
                           f"{wins}/{len(rows)} | "
                           + (f"{sum(gaps)}/{len(gaps)}" if gaps else "-") + " |")
        for label, key in (("hwnas rho", f"{h}/rho"), ("ridge rho", f"{rkey}/rho"),
                           ("hwnas tau", f"{h}/tau"), ("ridge tau", f"{rkey}/tau")):
            vals = [[_mean(r, k, key) for r in res["devices"].values()] for k in SHOT_COUNTS]
            curves.append(f"| {s} | {label} | " + " | ".join(
                _f(float(np.mean([x for x in v if x is not None])) if any(
                    x is not None for x in v) else None) for v in vals) + " |")
    return "\n".join([*lines, "", *summary, "", *curves])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    p.add_argument("--spaces", default=",".join(SPACES))
    p.add_argument("--devices", choices=["all", "validation"], default="all")
    p.add_argument("--variants", default="default",
                   help=f"comma-separated, the first is tabled (valid: {', '.join(VARIANTS)})")
    p.add_argument("--meta-steps", type=int, default=150)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-ceiling", action="store_true")
    p.add_argument("--ceiling-from", type=Path, default=None,
                   help="an earlier output of this script: its ceilings are reused (they depend "
                        "only on the tables: 5-fold with fixed seeds) instead of refitted")
    p.add_argument("--cache", type=Path, default=None,
                   help="folder for the fold meta-trainings (reused when they match)")
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks"
                   / "latency_lodo.json")
    args = p.parse_args()
    variants = args.variants.split(",")
    bad = [v for v in variants if v not in VARIANTS]
    spaces = args.spaces.split(",")
    if bad or any(s not in SPACES for s in spaces) or args.jobs < 1:
        print(f"bad --variants/--spaces/--jobs (variants: {', '.join(VARIANTS)}; spaces: "
              f"{', '.join(SPACES)})", file=sys.stderr)
        sys.exit(2)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.time()
    reused = None if args.ceiling_from is None else json.loads(args.ceiling_from.read_text())
    spaces_res = run(spaces, args.data, args.meta_steps, variants, args.devices, args.jobs,
                     args.cache, not args.no_ceiling and reused is None, log)
    if reused is not None:
        for s, res in spaces_res.items():
            for d, rec in res["devices"].items():
                old = reused["spaces"].get(s, {}).get("devices", {}).get(d, {}).get("ceiling")
                if old is not None:
                    rec["ceiling"] = old
    results = {"protocol": f"leave one device out; sources = every other device of the space; "
                           f"shots = hwnas latency plan (HELP reference + D-optimal), "
                           f"{list(SHOT_COUNTS)} shots, seeds {list(SEEDS)}; encoder "
                           f"meta-trained once per fold of {N_FOLDS} (devices outside the "
                           f"fold) and seed, {args.meta_steps} steps; rho = Spearman, tau = "
                           f"Kendall tau-b over every non-shot architecture",
               "command": " ".join(sys.argv),
               "ceilings": ("refitted" if reused is None else
                            f"reused from {args.ceiling_from.name}"),
               "variants": {v: VARIANTS[v] for v in variants},
               "validation": {s: validation_devices(s) for s in spaces},
               "wall_seconds": round(time.time() - t0, 1), "jobs": args.jobs,
               "spaces": spaces_res}
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    for v in variants:
        print(f"\n## variant {v}\n")
        print(markdown(results, v))
    print(f"\nwrote {args.out} in {time.time() - t0:.0f}s")
