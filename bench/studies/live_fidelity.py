"""Does low-fidelity training rank NB-201 architectures like the longer reference training?

For the first ``--archs`` architectures of :func:`hwnas.bench.live.training.benchmark_archs` (a
fixed permutation of NB-201 indices, shared with the one-shot benchmark) on scikit-learn's digits:

- the **reference**: full width (C=16), the full training set, ``--ref-epochs`` epochs (default
  4 x the low-fidelity epochs) of the default :class:`~hwnas.bench.live.training.TrainRecipe`
  (batch 32);
- low fidelities: the reference's own accuracy after fewer epochs (the curve prefix: free), and
  separate ``--epochs``-epoch trainings (``E`` is ``--epochs`` or else sized from one measured
  epoch so the whole script fits ``--minutes`` on one thread) of the default recipe, with a
  quarter of the training set, a quarter of the width, and both; with ``--supernet-scores`` (the
  one-shot benchmark's per-architecture CSV), the weight-sharing supernet's accuracy too;
- per fidelity, Kendall's tau and Spearman's rho against the reference's final validation
  accuracy, the overlap of the top 10 %, and the median seconds per evaluation;
- early stopping (learning-curve rule, top-k) applied to the reference runs in list order. The
  rule only reads the curve prefix and training is deterministic, so replaying the recorded
  curves gives exactly the epochs a run with early stopping would have trained;
- weight inheritance: for ``--pairs`` (parent, one-edit child) pairs, the epochs the child needs
  to reach the parent's accuracy trained from scratch and from the parent's weights.

Writes ``--out`` (JSON: setup, sizes, figures) and a per-architecture CSV next to it (joinable on
``index``); per-run rows go to ``<out>.partial.jsonl`` as they finish, so a rerun resumes (rows
carry their recipe's key: those of another recipe are retrained, not reused). The JSON's
``sizes`` gives each fidelity's training images, channels, epochs and SGD steps.

    python bench/scripts/live_fidelity.py --archs 100 --epochs 3 --ref-epochs 12 \
        --supernet-scores results/benchmarks/supernet_scores.csv \
        --out results/benchmarks/live_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["main"]


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=128)
    p.add_argument("--out", default="results/benchmarks/live_fidelity.json")
    p.add_argument("--minutes", type=float, default=30.0, help="time budget the sizes fit")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of the low-fidelity runs (default: sized)")
    p.add_argument("--ref-epochs", type=int, default=None,
                   help="epochs of the reference run (default: 4 x --epochs)")
    p.add_argument("--supernet-scores", default=None,
                   help="CSV with index and supernet_val_acc (oneshot_benchmark.py's output)")
    p.add_argument("--pairs", type=int, default=6, help="inheritance (parent, child) pairs")
    p.add_argument("--topk", type=int, default=10, help="early stopping: beat the k-th best")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    import pandas as pd
    from scipy.stats import kendalltau, spearmanr

    from hwnas.bench.live.datasets import get_dataset
    from hwnas.bench.live.training import (
        EarlyStopping,
        PeerStopping,
        TrainRecipe,
        benchmark_archs,
        epochs_to_reach,
        train_architecture,
    )
    from hwnas.latency import atomic_write_text
    from hwnas.search import get_space

    space, splits = get_space("nb201"), get_dataset("digits", seed=args.seed)
    indices = benchmark_archs(args.archs)
    archs = [space[i] for i in indices]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.jsonl")
    done: dict[tuple[int, str], dict] = {}

    t_script = time.perf_counter()
    # Size the reference: one measured epoch per full-width and quarter-width training.
    probe = train_architecture(space, archs[0], splits, TrainRecipe(epochs=1, seed=args.seed),
                               keep_state=False)
    probe_q = train_architecture(space, archs[0], splits,
                                 TrainRecipe(epochs=1, width=0.25, seed=args.seed),
                                 keep_state=False)
    t_full, t_quarter = probe.seconds, probe_q.seconds
    # per low-fidelity epoch: N x (reference [ratio x full] + full + quarter-width + quarter-data
    # [~ full/4] + both [~ q/4])
    # plus 2 x pairs full-width inheritance trainings (the parents are reference runs whose
    # weights are kept); 10 % kept for slack.
    ratio = (args.ref_epochs / args.epochs) if args.ref_epochs and args.epochs else 4
    per_epoch = (args.archs * (ratio * t_full + t_full + t_quarter + t_full / 4 + t_quarter / 4)
                 + 2 * args.pairs * t_full)
    sized = int(0.9 * args.minutes * 60 // per_epoch)
    epochs = args.epochs or max(3, min(20, sized))
    _log(f"one epoch: {t_full:.2f} s full width, {t_quarter:.2f} s quarter width; "
         f"low-fidelity epochs {epochs} (budget-sized {sized})")

    ref_epochs = args.ref_epochs or 4 * epochs
    if ref_epochs <= epochs:
        p.error(f"--ref-epochs ({ref_epochs}) must exceed the low-fidelity epochs ({epochs})")
    _log(f"reference: {ref_epochs} epochs")
    # The reference is the longer run every cheaper fidelity is ranked against; "epochsN" is the
    # default recipe at the low-fidelity epoch count (its own cosine schedule, not a prefix).
    variants = {
        "reference": TrainRecipe(epochs=ref_epochs, seed=args.seed),
        f"epochs{epochs}": TrainRecipe(epochs=epochs, seed=args.seed),
        "width0.25": TrainRecipe(epochs=epochs, width=0.25, seed=args.seed),
        "data0.25": TrainRecipe(epochs=epochs, train_fraction=0.25, seed=args.seed),
        "width0.25+data0.25": TrainRecipe(epochs=epochs, width=0.25, train_fraction=0.25,
                                          seed=args.seed),
    }
    # Resume only rows trained with the same recipe (a row carries its recipe's key; rows from
    # another recipe, or from before keys were recorded, are retrained).
    low = f"epochs{epochs}"
    keys = {name: r.key() for name, r in variants.items()}
    keys["inherit"] = keys[low]
    by_key = {k: name for name, k in keys.items() if name != "inherit"}
    if partial.exists():
        stale = 0
        for line in partial.read_text().splitlines():
            row = json.loads(line)
            # a training run is matched by its recipe, whatever the variant was called then
            name = "inherit" if row["variant"] == "inherit" else by_key.get(row.get("recipe_key"))
            if name is not None and row.get("recipe_key") == keys[name]:
                done[(row["index"], name)] = {**row, "variant": name}
            else:
                stale += 1
        _log(f"resuming: {len(done)} runs already in {partial} ({stale} of other recipes ignored)")
    parents: dict[int, dict] = {}
    with partial.open("a") as log:
        for name, recipe in variants.items():
            for n, (i, a) in enumerate(zip(indices, archs, strict=True)):
                if (i, name) in done:
                    continue
                keep = name == low and n < args.pairs  # parents for inheritance
                r = train_architecture(space, a, splits, recipe, keep_state=keep)
                if keep:
                    parents[i] = r.state_dict
                row = {"index": i, "arch": space.format(a), "variant": name,
                       "recipe_key": keys[name], **r.record()}
                done[(i, name)] = row
                log.write(json.dumps(row) + "\n")
                log.flush()
                if n % 16 == 0 or n == len(indices) - 1:
                    _log(f"{name}: {n + 1}/{len(indices)} val {r.val_accuracy:.1f} "
                         f"({r.seconds:.1f} s)")

    ref = np.array([done[(i, "reference")]["val_accuracy"] for i in indices])
    fidelities: dict[str, dict] = {}
    top = max(1, math.ceil(0.1 * len(indices)))
    ref_top = set(np.argsort(-ref, kind="stable")[:top])

    n_train = len(splits.train)

    def size(r: TrainRecipe) -> dict:
        """What one evaluation of a fidelity trains: images, channels, epochs, SGD steps."""
        images = n_train if r.train_fraction >= 1 else min(n_train, max(
            r.batch_size, int(round(r.train_fraction * n_train))))
        return {"train_images": images, "channels_c": max(1, int(round(16 * r.width))),
                "epochs": r.epochs, "batch_size": r.batch_size,
                "sgd_steps": r.epochs * math.ceil(images / r.batch_size)}

    def compare(name: str, scores: np.ndarray, seconds: list[float], epochs_: int,
                recipe: dict) -> None:
        tau = kendalltau(scores, ref).statistic
        rho = spearmanr(scores, ref).statistic
        overlap = len(ref_top & set(np.argsort(-scores, kind="stable")[:top])) / top
        fidelities[name] = {"kendall_tau": float(tau), "spearman_rho": float(rho),
                            "top10pct_overlap": overlap, "median_seconds": float(
                                np.median(seconds)) if seconds else None, "epochs": epochs_,
                            "recipe": recipe,
                            "mean_val_accuracy": float(np.mean(scores))}

    ref_rows = [done[(i, "reference")] for i in indices]
    for e in sorted({1, epochs, ref_epochs // 2, ref_epochs - 1} - {0}):
        if e >= ref_epochs:
            continue
        # a prefix costs its share of the reference run's time
        compare(f"reference@epoch{e}", np.array([r["val_curve"][e - 1] for r in ref_rows]),
                [r["seconds"] * e / r["epochs_run"] for r in ref_rows], e,
                {"note": f"the reference run's validation accuracy after epoch {e} of "
                         f"{ref_epochs}",
                 "size": {**size(variants["reference"]), "epochs": e,
                          "sgd_steps": e * size(variants["reference"])["sgd_steps"]
                          // ref_epochs}})
    for name, recipe in variants.items():
        rows = [done[(i, name)] for i in indices]
        compare(name, np.array([r["val_accuracy"] for r in rows]), [r["seconds"] for r in rows],
                recipe.epochs, {**recipe.__dict__, "size": size(recipe)})
    if args.supernet_scores:
        sn = pd.read_csv(args.supernet_scores).set_index("index")["supernet_val_acc"]
        missing = [i for i in indices if i not in sn.index]
        if missing:
            p.error(f"{args.supernet_scores} lacks {len(missing)} of the {len(indices)} "
                    "architectures; run oneshot_benchmark.py with at least as many")
        compare("supernet", sn.loc[indices].to_numpy(dtype=float), [], 0,
                {"note": f"weight-sharing supernet accuracy, from {args.supernet_scores}"})
    _log("fidelities: " + json.dumps({k: round(v["kendall_tau"], 3)
                                      for k, v in fidelities.items()}))

    # Early stopping replayed on the reference curves, in list order: the library's default
    # rule (a 10-point margin of optimism, 3 epochs before any stop) and an aggressive one.
    final_top = set(np.argsort(-ref, kind="stable")[:args.topk])
    rules = {"default": (EarlyStopping(k=args.topk), f"EarlyStopping(k={args.topk})"),
             "aggressive": (EarlyStopping(k=args.topk, min_epochs=2, window=1, margin=0.0),
                            f"EarlyStopping(k={args.topk}, min_epochs=2, window=1, margin=0)"),
             "peers": (PeerStopping(k=args.topk), f"PeerStopping(k={args.topk})")}
    early = {}
    for key, (rule, text) in rules.items():
        stops = []
        for r in ref_rows:
            curve = r["val_curve"]
            run = next((e for e in range(1, len(curve) + 1)
                        if rule.should_stop(curve[:e], ref_epochs)), len(curve))
            if run < len(curve):
                rule.stopped_ += 1
                rule.epochs_saved_ += len(curve) - run
                stops.append(r["index"])
            else:
                rule.finish(curve)
        early[key] = {"rule": text, "runs": len(ref_rows), "stopped": rule.stopped_,
                      "epochs_saved": rule.epochs_saved_,
                      "epochs_total": ref_epochs * len(ref_rows),
                      "fraction_saved": rule.epochs_saved_ / (ref_epochs * len(ref_rows)),
                      "true_topk_stopped": [indices[j] for j in sorted(final_top)
                                            if indices[j] in stops]}
    _log(f"early stopping: {early}")

    # Weight inheritance: parent = a benchmark architecture, child = one random mutation.
    rng = np.random.default_rng(args.seed)
    pairs = []
    recipe = variants[low]
    for j in range(args.pairs):
        parent = archs[j]
        child = space.mutate(parent, rng)
        key = (indices[j], "inherit")
        if key in done:
            pairs.append(done[key])
            continue
        if indices[j] not in parents:  # resumed after the reference phase: train it again
            parents[indices[j]] = train_architecture(space, parent, splits, recipe).state_dict
        scratch = train_architecture(space, child, splits, recipe, keep_state=False)
        inh = train_architecture(space, child, splits, recipe, init_state=parents[indices[j]],
                                 keep_state=False)
        target = done[(indices[j], low)]["val_accuracy"]
        row = {"index": indices[j], "variant": "inherit", "recipe_key": keys["inherit"],
               "parent": space.format(parent),
               "child": space.format(child), "parent_val": target,
               "tensors_inherited": inh.inherited,
               "scratch_curve": scratch.val_curve, "inherit_curve": inh.val_curve,
               "scratch_epochs_to_parent": epochs_to_reach(scratch.val_curve, target),
               "inherit_epochs_to_parent": epochs_to_reach(inh.val_curve, target)}
        done[key] = row
        pairs.append(row)
        with partial.open("a") as log:
            log.write(json.dumps(row) + "\n")
        _log(f"inherit {j + 1}/{args.pairs}: scratch {row['scratch_epochs_to_parent']} "
             f"inherit {row['inherit_epochs_to_parent']} epochs")

    def summary(key: str) -> dict:
        vals = [r[key] for r in pairs]
        reached = [v for v in vals if v is not None]
        return {"reached": len(reached), "of": len(vals),
                "median_epochs_when_reached": float(np.median(reached)) if reached else None,
                # never reached counts as epochs + 1: a lower bound on what it would need
                "mean_epochs_unreached_as_E+1": float(np.mean(
                    [v if v is not None else epochs + 1 for v in vals]))}

    inheritance = {"pairs": len(pairs), "epochs": epochs,
                   "scratch": summary("scratch_epochs_to_parent"),
                   "inherited": summary("inherit_epochs_to_parent"),
                   "mean_epoch1_val_scratch": float(np.mean([r["scratch_curve"][0]
                                                             for r in pairs])),
                   "mean_epoch1_val_inherited": float(np.mean([r["inherit_curve"][0]
                                                               for r in pairs])),
                   "details": pairs}
    _log(f"inheritance: scratch {inheritance['scratch']} inherited {inheritance['inherited']}")

    table = pd.DataFrame({"index": indices, "arch": [space.format(a) for a in archs]})
    for name in variants:
        table[f"{name}_val"] = [done[(i, name)]["val_accuracy"] for i in indices]
        table[f"{name}_test"] = [done[(i, name)]["test_accuracy"] for i in indices]
        table[f"{name}_seconds"] = [done[(i, name)]["seconds"] for i in indices]
    for e in range(1, ref_epochs):
        table[f"reference_val_epoch{e}"] = [r["val_curve"][e - 1] for r in ref_rows]
    atomic_write_text(out.with_suffix(".csv"), table.to_csv(index=False))
    import platform

    result = {
        "benchmark": "live_fidelity", "dataset": splits.describe(), "space": "nb201",
        "archs": args.archs, "arch_list": "numpy.random.default_rng(2026).permutation(15625)"
        f"[:{args.archs}]", "seed": args.seed, "threads": torch.get_num_threads(),
        "sizes": {"archs": len(indices), "train_images": n_train,
                  "val_images": len(splits.val), "test_images": len(splits.test),
                  "per_fidelity": {k: v["recipe"]["size"] for k, v in fidelities.items()
                                   if "size" in v["recipe"]}},
        "sizing": {"minutes_budget": args.minutes, "epochs_from": "--epochs"
                   if args.epochs else "budget", "one_epoch_full_s": t_full,
                   "one_epoch_quarter_width_s": t_quarter, "low_fidelity_epochs": epochs,
                   "reference_epochs": ref_epochs,
                   "budget_sized_epochs": sized},
        "fidelities": fidelities, "early_stopping": early, "inheritance": inheritance,
        "wall_seconds": time.perf_counter() - t_script,  # this invocation (resumed rows: 0)
        # every training behind the figures, whichever invocation ran it
        "training_seconds_total": float(sum(r.get("seconds", 0.0) for r in done.values())),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(out, json.dumps(result, indent=2))
    _log(f"wrote {out} and {out.with_suffix('.csv')} in {result['wall_seconds']:.0f} s")
    return 0

