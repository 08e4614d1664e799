"""Few-shot latency transfer on HELP's device splits: ours vs baselines vs published figures.

For every split (HELP's nb201/fbnet/ofa meta-train/valid/test devices, and two cross-family nb201
splits), every test device and 5 seeds: 20 shots from the device (HELP's 10 reference
architectures + 10 more), Spearman's rho over every other architecture of the table. Two shot
protocols: ``random`` (the 10 extra drawn at random, as HELP) and ``planned`` (the 10 extra from
``hwnas latency plan``'s D-optimal design). Methods see the same shots.

Usage::

    .venv/bin/python bench/scripts/latency_transfer.py [--data DIR] [--splits nb201,fbnet,...]

Writes ``results/benchmarks/latency_transfer.json`` atomically and prints a Markdown table per
split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from hwnas.bench import load_tables
from hwnas.latency.table import atomic_write_text
from hwnas.meta import MAML
from hwnas.meta.encoders import onehot_features, structure_features
from hwnas.meta.latency import LatencyTask, MetaLatencyPredictor
from hwnas.meta.latency_features import LatencyFeatures, plan_shots, ridge_loo
from hwnas.search.tables import reference_indices

__all__ = [
    "rho", "stats_baseline", "finetune_baseline", "maml_baseline", "run_split", "markdown",
    "main"
]


def _names(text: str) -> list[str]:
    return text.split()


REPO = Path(__file__).resolve().parents[2]
NB_GPU = ["1080ti_1", "1080ti_32", "1080ti_256", "titanx_1", "titanx_32", "titanx_256",
          "titan_rtx_256", "titan_rtx_1", "2080ti_32", "2080ti_256", "titanxp_1", "titanxp_32"]
NB_OTHER = ["silver_4114", "silver_4210r", "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7",
            "gold_6240", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"]
SPLITS: dict[str, tuple[str, list[str], list[str], list[str]]] = {
    "nb201": ("nb201", _names("1080ti_1 1080ti_32 1080ti_256 silver_4114 silver_4210r samsung_a50 "
              "pixel3 essential_ph_1 samsung_s7"),
              _names("titanx_1 titanx_32 titanx_256 gold_6240"),
              _names("titan_rtx_256 gold_6226 fpga pixel2 raspi4 eyeriss")),
    "fbnet": ("fbnet", _names("1080ti_1 1080ti_32 1080ti_64 silver_4114 silver_4210r samsung_a50 "
              "pixel3 essential_ph_1 samsung_s7"), _names("titanx_1 titanx_32 titanx_64 gold_6240"),
              _names("fpga raspi4 eyeriss")),
    "ofa": ("ofa", _names("2080ti_1 2080ti_32 2080ti_64 titan_xp_1 titan_xp_32 titan_xp_64 "
            "v100_1 v100_32 v100_64"), _names("titan_rtx_1 titan_rtx_32"), ["titan_rtx_64"]),
    "nb201-nonGPU-to-GPU": ("nb201", NB_OTHER, [], ["titan_rtx_256", "titanx_256", "1080ti_1",
                                                    "titanxp_1"]),
    "nb201-GPU-to-nonGPU": ("nb201", NB_GPU, [], ["gold_6226", "fpga", "pixel2", "raspi4",
                                                  "eyeriss"]),
}
HELP = {"nb201": {"titan_rtx_256": 0.987, "gold_6226": 0.989, "pixel2": 0.802, "raspi4": 0.890,
                  "eyeriss": 0.940, "fpga": 0.985},
        "fbnet": {"raspi4": 0.887, "eyeriss": 0.943, "fpga": 0.892}}
HELP_MEAN = {"nb201": 0.932, "fbnet": 0.910}
SEEDS = range(5)


def rho(pred: np.ndarray, true: np.ndarray) -> float:
    return float(spearmanr(pred, true)[0])


def stats_baseline(space, archs) -> tuple[np.ndarray, np.ndarray]:
    """FLOPs and parameters: exact for nb201; additive per-layer counts for the chain spaces."""
    if space.name == "nb201":
        st = space.fast_stats(archs)
        return np.array([s.flops_m for s in st]), np.array([float(s.params) for s in st])
    if space.name == "fbnet":
        from hwnas.meta.encoders import fbnet_layer_costs

        cost = fbnet_layer_costs()
        g = np.array([a.genes for a in archs])
        tot = cost[np.arange(len(cost)), g].sum(axis=1)
        return tot[:, 0], tot[:, 1]
    return None, None  # ofa: building 5,000 networks is too slow for this script


def finetune_baseline(A: np.ndarray, src_logs: np.ndarray, seed: int):
    """Plain fine-tuning: an MLP on one-hot features pre-trained on the pooled source devices
    (mean standardised log-latency), then every weight fine-tuned on the shots (100 Adam steps)."""
    import copy

    torch.manual_seed(seed)
    x = torch.as_tensor(A)
    net = nn.Sequential(nn.Linear(A.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 1))
    z = (src_logs - src_logs.mean(0)) / src_logs.std(0)
    target = torch.as_tensor(z.mean(axis=1), dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    for _ in range(300):
        b = torch.as_tensor(rng.choice(len(A), 512))
        opt.zero_grad()
        ((net(x[b]).squeeze(1) - target[b]) ** 2).mean().backward()
        opt.step()

    def predict(sup: np.ndarray, t: np.ndarray) -> np.ndarray:
        tuned = copy.deepcopy(net)
        mu, sd = t.mean(), t.std()
        ys = torch.as_tensor((t - mu) / sd, dtype=torch.float32)
        opt = torch.optim.Adam(tuned.parameters(), lr=1e-3)
        for _ in range(100):
            opt.zero_grad()
            ((tuned(x[sup]).squeeze(1) - ys) ** 2).mean().backward()
            opt.step()
        with torch.no_grad():
            return tuned(x).squeeze(1).numpy() * sd + mu
    return predict


def maml_baseline(A: np.ndarray, src_logs: np.ndarray, ref: np.ndarray, seed: int):
    """MAML without hardware embedding (HELP's MAML baseline): an MLP on one-hot features whose
    initialisation is meta-learned over the source devices; adapted by 10 steps."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(A.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 1))
    maml = MAML(net, inner_lr=0.05, first_order=True)
    opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    x = torch.as_tensor(A)
    rng = np.random.default_rng(seed)
    z = torch.as_tensor((src_logs - src_logs.mean(0)) / src_logs.std(0), dtype=torch.float32)
    for _ in range(150):
        opt.zero_grad()
        for d in range(z.shape[1]):
            sup = torch.as_tensor(np.concatenate([ref, rng.choice(len(A), 10)]))
            q = torch.as_tensor(rng.choice(len(A), 500))
            learner = maml.adapt(x[sup], z[sup, d:d + 1], steps=5)
            (((learner(x[q]) - z[q, d:d + 1]) ** 2).mean() / z.shape[1]).backward()
        opt.step()

    def predict(sup: np.ndarray, t: np.ndarray) -> np.ndarray:
        mu, sd = t.mean(), t.std()
        ys = torch.as_tensor((t - mu) / sd, dtype=torch.float32).unsqueeze(1)
        learner = maml.adapt(x[torch.as_tensor(sup)], ys, steps=10, first_order=True)
        with torch.no_grad():
            return learner(x).squeeze(1).numpy() * sd + mu
    return predict


def run_split(name: str, data: Path, meta_steps: int, log) -> dict:
    space_name, train, valid, test = SPLITS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = load_tables(space_name, data)
    ref = np.array(reference_indices(space_name, data))
    train = [d for d in train if d in tables.devices]
    src = tables.latency[train].to_numpy(np.float64)
    feats = LatencyFeatures(src, onehot_features(tables.space, tables.archs),
                            structure_features(tables.space, tables.archs), train)
    tasks = [LatencyTask(d, src[:, j], j) for j, d in enumerate(train)]
    flops, params = stats_baseline(tables.space, tables.archs)
    src_logs = np.log(src)
    evaluated = [d for d in valid + test if d in tables.devices]
    out: dict = {"space": space_name, "train": train, "valid": valid, "test": test, "devices": {}}
    metas = {}
    for seed in SEEDS:
        t0 = time.time()
        metas[seed] = MetaLatencyPredictor(feats, reference=ref, seed=seed,
                                           meta_steps=meta_steps).meta_fit(tasks)
        log(f"{name}: meta-trained seed {seed} in {time.time() - t0:.0f}s")
    mamls = {seed: maml_baseline(feats.A, src_logs, ref, seed) for seed in SEEDS}
    tuners = {seed: finetune_baseline(feats.A, src_logs, seed) for seed in SEEDS}
    for dev in evaluated:
        y = np.log(tables.latency[dev].to_numpy(np.float64))
        res: dict[str, list[float]] = {}
        for proto in ("random", "planned"):
            for seed in SEEDS:
                if proto == "random":
                    rng = np.random.default_rng(seed)
                    extra = rng.choice(np.setdiff1d(np.arange(len(y)), ref), 10, replace=False)
                    sup = np.concatenate([ref, extra])
                else:
                    sup = plan_shots(feats, 20, ref, seed)
                rest = np.setdiff1d(np.arange(len(y)), sup)
                pred = metas[seed].adapt(sup, np.exp(y[sup])).predict(np.arange(len(y)))
                res.setdefault(f"ours/{proto}", []).append(rho(pred[rest], y[rest]))
                res.setdefault(f"ridge/{proto}", []).append(
                    rho(ridge_loo(feats.S, y[sup], sup, 1.0)[0][rest], y[rest]))
                near = int(np.argmax([rho(src_logs[sup, j], y[sup]) for j in range(len(train))]))
                res.setdefault(f"nearest/{proto}", []).append(rho(src_logs[rest, near], y[rest]))
                res.setdefault(f"finetune/{proto}", []).append(
                    rho(tuners[seed](sup, y[sup])[rest], y[rest]))
                res.setdefault(f"maml-no-hw/{proto}", []).append(
                    rho(mamls[seed](sup, y[sup])[rest], y[rest]))
                if flops is not None:
                    res.setdefault(f"flops/{proto}", []).append(rho(flops[rest], y[rest]))
                    res.setdefault(f"params/{proto}", []).append(rho(params[rest], y[rest]))
        out["devices"][dev] = {"role": "valid" if dev in valid else "test",
                               **{k: {"mean": float(np.mean(v)), "per_seed": v}
                                  for k, v in res.items()}}
        log(f"{name}: {dev} ours/random {np.mean(res['ours/random']):.4f} "
            f"ours/planned {np.mean(res['ours/planned']):.4f} "
            f"ridge/random {np.mean(res['ridge/random']):.4f}")
    return out


def markdown(name: str, split: dict) -> str:
    methods = ["ours", "ridge", "nearest", "finetune", "maml-no-hw", "flops", "params"]
    anchors = HELP.get(name, {})
    lines = []
    for proto in ("random", "planned"):
        lines.append(f"\n### {name} ({proto} shots: 10 reference + 10 {proto}; rho, mean of 5 "
                     "seeds)\n")
        head = ["device", "role", *methods, "HELP"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        means: dict[str, list[float]] = {}
        for dev, r in split["devices"].items():
            row = [dev, r["role"]]
            for m in methods:
                v = r.get(f"{m}/{proto}")
                row.append("-" if v is None else f"{v['mean']:.3f}")
                if v is not None and r["role"] == "test":
                    means.setdefault(m, []).append(v["mean"])
            row.append(f"{anchors[dev]:.3f}" if dev in anchors else "-")
            lines.append("| " + " | ".join(row) + " |")
        row = ["**test mean**", ""] + [f"{np.mean(means[m]):.3f}" if m in means else "-"
                                       for m in methods]
        row.append(f"{HELP_MEAN[name]:.3f}" if name in HELP_MEAN else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="your own table folder (default: HWNAS_DATA, else the bundled tables)")
    p.add_argument("--splits", default=",".join(SPLITS))
    p.add_argument("--meta-steps", type=int, default=150)
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks"
                   / "latency_transfer.json")
    args = p.parse_args()
    torch.set_num_threads(1)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = {"protocol": "20 shots (HELP reference 10 + 10), Spearman rho over the rest, "
                           "5 seeds", "command": " ".join(sys.argv), "splits": {}}
    for name in args.splits.split(","):
        results["splits"][name] = run_split(name, args.data, args.meta_steps, log)
        atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
        print(markdown(name, results["splits"][name]), flush=True)
    print(f"\nwrote {args.out}")

