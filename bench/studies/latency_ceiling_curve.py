"""How many of its own measurements does a device's latency ceiling need? The ceiling as a curve.

The leave-one-device-out study (:mod:`latency_lodo`) scores each few-shot predictor beside the
device's *ceiling*: the better of two models (a ridge on the milliseconds, gradient-boosted trees
on the log-latency; :mod:`latency_ceiling`) fitted on 80% of the device's own table -- 4,000 to
12,500 measurements -- from the other devices' latencies and the architecture. A predictor with 20
shots that stays below that ceiling may be short of a method or short of data. This study fits
the same two models on ``n`` of the device's own measurements only (n = 20 ... 2,000, drawn at
random, 5 draws), scores them on every other architecture (Spearman's rho, Kendall's tau-b), and
lays the result beside the study's hwnas and ridge curves at 5 ... 100 shots:

- where the ceiling models at ``n`` own points rank no better than hwnas at ``n`` shots, hwnas
  already makes the most of what ``n`` measurements say about that device;
- the ``n`` at which the ceiling models pass hwnas's 100-shot figure says how much a user has to
  measure to do better than the transfer.

The models, features and sources are :func:`latency_lodo.device_ceiling`'s (every other device of
the space as a source); both are fitted at every ``n`` and the better *mean* is reported (which
flatters the ceiling, as the 5-fold one does). Which devices: every device of the study's JSON
whose 5-fold ceiling is below :data:`latency_lodo.LINEAR_ENOUGH` (above it there is no gap worth a
curve), or those named. A measurement, not a choice: nothing here sets a default.

Usage::

    nice -n 10 python bench/scripts/latency_ceiling_curve.py --jobs 2
        [--lodo results/benchmarks/latency_lodo.json] [--devices fbnet:essential_ph_1,...]
        [--sizes 20,50,100,200,500,1000,2000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from hwnas.latency.table import atomic_write_text

from . import latency_lodo as lodo

__all__ = ["SIZES", "REPEATS", "curve_devices", "device_curve", "markdown", "main"]

SIZES = (20, 50, 100, 200, 500, 1000, 2000)
REPEATS = 5


def curve_devices(lodo_result: dict, named: list[str] | None = None) -> list[tuple[str, str]]:
    """``(space, device)`` pairs: those ``named`` (``space:device``), else every device of the
    study's result whose 5-fold ceiling is below :data:`latency_lodo.LINEAR_ENOUGH`."""
    pairs = []
    for space, block in lodo_result["spaces"].items():
        for dev, rec in block["devices"].items():
            key = f"{space}:{dev}"
            if named is not None:
                if key in named:
                    pairs.append((space, dev))
            elif rec.get("ceiling", {}).get("best", 1.0) < lodo.LINEAR_ENOUGH:
                pairs.append((space, dev))
    return pairs


def _models() -> dict[str, Any]:
    return {"linear_ms": RidgeCV(alphas=np.logspace(-3, 3, 13)),
            "boosted_log": HistGradientBoostingRegressor(max_iter=300, random_state=0)}


def device_curve(space: str, device: str, sizes: tuple[int, ...] = SIZES,
                 repeats: int = REPEATS, data: Path | None = None) -> dict[str, Any]:
    """Both ceiling models fitted on ``n`` random own points of ``device`` for each ``n`` in
    ``sizes`` (``repeats`` draws, seeds 0..), scored on the rest: per model and ``n`` the rho and
    tau-b of each draw and their means."""
    sp = lodo._space(space, data)
    sources = [d for d in sp.devices if d != device]
    feats = sp.features(sources)
    src = feats.source_latency_ms
    y = sp.log_latency(device)
    X = {"boosted_log": np.hstack([feats.S, feats.C, feats.A]),
         "linear_ms": np.hstack([src / src.mean(axis=0), feats.C, feats.A])}
    target = {"boosted_log": y, "linear_ms": np.exp(y)}
    n_all = len(y)
    out: dict[str, Any] = {"n_archs": n_all, "sizes": {}}
    for n in sizes:
        if n >= n_all - 10:
            continue  # too few left to score on
        per: dict[str, dict[str, list[float]]] = {}
        for seed in range(repeats):
            own = np.random.default_rng(seed).choice(n_all, size=n, replace=False)
            rest = np.setdiff1d(np.arange(n_all), own)
            for name, model in _models().items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X[name][own], target[name][own])
                pred = model.predict(X[name][rest])
                rec = per.setdefault(name, {"rho": [], "tau": []})
                if np.ptp(pred) == 0:
                    # the trees' 20-sample leaves cannot split 20 points: one value for every
                    # architecture is no ranking at all, scored as 0 rather than undefined
                    rec["rho"].append(0.0)
                    rec["tau"].append(0.0)
                    continue
                rec["rho"].append(float(spearmanr(pred, y[rest])[0]))
                rec["tau"].append(float(kendalltau(pred, y[rest])[0]))
        summary = {name: {**v, "rho_mean": float(np.mean(v["rho"])),
                          "tau_mean": float(np.mean(v["tau"]))} for name, v in per.items()}
        best = max(summary, key=lambda m: summary[m]["rho_mean"])
        out["sizes"][str(n)] = {**summary, "best": summary[best]["rho_mean"],
                                "best_tau": summary[best]["tau_mean"], "best_model": best}
    return out


def _unit(job: tuple) -> tuple[tuple, dict, float]:
    t0 = time.time()
    space, device, sizes, repeats, data = job
    # one thread per worker: OpenMP trees in forked workers that each take every core ran
    # 50 times slower on a 2-core machine
    with threadpool_limits(1):
        res = device_curve(space, device, sizes, repeats, data)
    return job, res, time.time() - t0


def _lodo_mean(rec: dict, k: int, key: str) -> float | None:
    v = rec.get("curves", {}).get(str(k), {}).get(key)
    return None if v is None else v["mean"]


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def markdown(result: dict, lodo_result: dict) -> str:
    """Per device: the ceiling models' best mean rho at each size beside hwnas and ridge at the
    study's shot counts, the 5-fold ceiling, and the smallest size that passes hwnas at 100."""
    sizes = [int(s) for s in result["sizes_requested"]]
    shots = [k for k in lodo.SHOT_COUNTS if k in (20, 50, 100)]
    head = (["space", "device", "role"] + [f"hwnas@{k}" for k in shots]
            + [f"ridge@{k}" for k in shots] + [f"own@{n}" for n in sizes]
            + ["5-fold", "own n > hwnas@100"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    beats_at_20 = total = 0
    for key, rec in result["devices"].items():
        space, dev = key.split(":", 1)
        lr = lodo_result["spaces"][space]["devices"][dev]
        hw = {k: _lodo_mean(lr, k, "hwnas:default/rho") for k in shots}
        rg = {k: _lodo_mean(lr, k, "ridge/rho") for k in shots}
        own = {n: rec["sizes"].get(str(n), {}).get("best") for n in sizes}
        passing = [n for n in sizes if own[n] is not None and hw[100] is not None
                   and own[n] > hw[100]]
        total += 1
        beats_at_20 += own.get(20) is not None and hw[20] is not None and hw[20] >= own[20]
        lines.append("| " + " | ".join(
            [space, dev, lr.get("role", "-")] + [_f(hw[k]) for k in shots]
            + [_f(rg[k]) for k in shots] + [_f(own[n]) for n in sizes]
            + [_f(lr.get("ceiling", {}).get("best")),
               str(passing[0]) if passing else f"> {sizes[-1]}"]) + " |")
    lines += ["", f"hwnas with 20 shots ranks at least as well as the better ceiling model fitted "
                  f"on 20 own measurements on {beats_at_20}/{total} devices."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry: fit the curves over ``--jobs`` processes, print Markdown, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lodo", type=Path, default=lodo.REPO / "results/benchmarks/latency_lodo.json",
                   help="the leave-one-device-out study's JSON (its curves and ceilings)")
    p.add_argument("--devices", help="comma-separated space:device pairs (default: every device "
                   "whose 5-fold ceiling is below 0.995)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)),
                   help="comma-separated numbers of own measurements")
    p.add_argument("--repeats", type=int, default=REPEATS)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--data", type=Path, help="your own table folder (default: the bundled tables)")
    p.add_argument("--out", type=Path,
                   default=lodo.REPO / "results/benchmarks/latency_ceiling_curve.json")
    args = p.parse_args(argv)
    try:
        lodo_result = json.loads(args.lodo.read_text())
        lodo_result["spaces"]
        sizes = tuple(int(s) for s in args.sizes.split(",") if s)
        if not sizes or min(sizes) < 5 or args.repeats < 1 or args.jobs < 1:
            raise ValueError("sizes must be >= 5, --repeats and --jobs >= 1")
    except (OSError, KeyError, TypeError, ValueError) as err:
        print(f"error: {err} (--lodo: a latency_lodo.py JSON; --sizes: e.g. 20,50,100)",
              file=sys.stderr)
        return 2
    named = (None if not args.devices
             else list(dict.fromkeys(d.strip() for d in args.devices.split(",") if d.strip())))
    pairs = curve_devices(lodo_result, named)
    if named is not None and len(pairs) != len(named):
        known = {f"{s}:{d}" for s, b in lodo_result["spaces"].items() for d in b["devices"]}
        print(f"error: not in {args.lodo.name}: {', '.join(sorted(set(named) - known))} "
              f"(valid: space:device, e.g. fbnet:essential_ph_1)", file=sys.stderr)
        return 2
    t0 = time.time()
    jobs = [(s, d, sizes, args.repeats, args.data) for s, d in pairs]
    devices: dict[str, Any] = {}
    with get_context("fork").Pool(args.jobs) as pool:
        for i, (job, res, secs) in enumerate(pool.imap_unordered(_unit, jobs), 1):
            devices[f"{job[0]}:{job[1]}"] = res
            print(f"  {i}/{len(jobs)} {job[0]}:{job[1]} in {secs:.0f}s", file=sys.stderr)
    order = {f"{s}:{d}": i for i, (s, d) in enumerate(pairs)}
    result = {"benchmark": "latency_ceiling_curve", "lodo": args.lodo.name,
              "sizes_requested": list(sizes), "repeats": args.repeats,
              "command": " ".join(["python", "bench/scripts/latency_ceiling_curve.py",
                                   *(argv if argv is not None else sys.argv[1:])]),
              "wall_seconds": time.time() - t0,
              "devices": dict(sorted(devices.items(), key=lambda kv: order[kv[0]]))}
    text = markdown(result, lodo_result)
    result["report_markdown"] = text
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
