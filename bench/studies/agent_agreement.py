"""Does a profile through a device agent measure what a local profile measures?

The same seeded NB201 architectures are profiled on this machine twice over: by the local
:class:`~hwnas.latency.Profiler` and through one ``hwnas agent serve`` on loopback
(:class:`~hwnas.latency.farm.FarmProfiler`), with the same measurement protocol, the order
alternating between repeats (local first, then agent first, ...) so that a slow spell of the
host does not land on one side only. Reported: the median over architectures of the ratio
agent / local (each side's latency the median of its repeats; goal 1.00 +- 0.03), Spearman's rho
between the two (goal >= 0.98), and as the noise floor the same statistics between two local
repeats and between two agent repeats. Also the same for the per-measurement paired ratio
(latency / the reference timed in alternating chunks with it), which the host's state cancels
from, so it separates what the agent changes from how the host's speed moved between profiles
(each profile's table is that ratio x its own reference level). Exports are made beforehand, so
timings compare profiling, not exporting.

Usage:
    python bench/scripts/agent_agreement.py --archs 40 --seed 0 --repeats 2 \\
        --out results/benchmarks/agent_agreement.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwnas.bench import load_tables
from hwnas.latency import (
    MeasurementProtocol,
    Profiler,
    ProfileStore,
    Target,
    atomic_write_text,
    describe_environment,
    export_onnx,
    get_runtime,
    reference_arch,
)
from hwnas.latency.farm import AgentClient, FarmProfiler
from hwnas.search import get_space

__all__ = ["agreement", "main", "start_agent"]


def start_agent(token_file: Path, device: str = "loopback") -> tuple[subprocess.Popen, str]:
    """``hwnas agent serve`` on a free loopback port; returns the process and its URL."""
    log = token_file.with_name("agent.log")
    with log.open("a") as err:  # a file, not a pipe: a full pipe nobody reads stalls the agent
        proc = subprocess.Popen(
            [sys.executable, "-m", "hwnas.bench", "agent", "serve", "--host", "127.0.0.1",
             "--port", "0", "--token-file", str(token_file), "--device-name", device],
            stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise RuntimeError(f"the agent did not start: {line}{log.read_text()}")
    return proc, "http://" + line.split("http://")[1].split()[0]


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Median, p10 and p90 of b / a over architectures, and Spearman's rho."""
    ratio = b / a
    return {"median_ratio": float(np.median(ratio)), "p10_ratio": float(np.percentile(ratio, 10)),
            "p90_ratio": float(np.percentile(ratio, 90)),
            "spearman": float(spearmanr(a, b)[0])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="profiles per side (alternating)")
    ap.add_argument("--precision", type=float, default=0.02,
                    help="target relative CI half-width of each median")
    ap.add_argument("--max-runs", type=int, default=200)
    ap.add_argument("--out", type=Path,
                    default=Path("results/benchmarks/agent_agreement.json"))
    args = ap.parse_args(argv)
    if args.archs < 3 or args.repeats < 1:
        print("agent_agreement: error: need --archs >= 3 and --repeats >= 1", file=sys.stderr)
        return 2
    space = get_space("nb201")
    tables = load_tables("nb201")
    idx = np.random.default_rng(args.seed).choice(len(tables), args.archs, replace=False)
    targets = [Target(tables.archs[i], int(i)) for i in idx]
    for t in [*targets, Target(reference_arch(space))]:
        export_onnx(space, t.arch)
    protocol = MeasurementProtocol(target_precision=args.precision, max_runs=args.max_runs,
                                   min_runs=min(20, args.max_runs))
    runtime = get_runtime("ort-cpu")
    texts = [space.format(t.arch) for t in targets]
    with tempfile.TemporaryDirectory() as tmp:
        token = Path(tmp) / "token"
        token.write_text(os.urandom(16).hex() + "\n")
        proc, url = start_agent(token)
        try:
            client = AgentClient(url, token.read_text().strip())
            info = client.info()
            runs: dict[str, list[np.ndarray]] = {"local": [], "agent": []}
            # latency / interleaved reference, per measurement: free of the host's state
            paired: dict[str, list[np.ndarray]] = {"local": [], "agent": []}
            levels: dict[str, list[float]] = {"local": [], "agent": []}
            seconds: dict[str, list[float]] = {"local": [], "agent": []}
            for rep in range(args.repeats):
                for side in (("local", "agent") if rep % 2 == 0 else ("agent", "local")):
                    out = Path(tmp) / f"{side}{rep}"
                    t0 = time.perf_counter()
                    if side == "local":
                        table = Profiler(space, runtime, protocol, out, "here").run(targets)
                    else:
                        table = FarmProfiler(space, runtime, protocol, out, "here",
                                             [(client, info)]).run(targets)
                    seconds[side].append(time.perf_counter() - t0)
                    lat = table.frame.set_index("arch")["latency_ms"]
                    runs[side].append(lat.reindex(texts).to_numpy(np.float64))
                    with ProfileStore(out) as store:
                        rows = store.measurements().set_index("arch")
                    paired[side].append(rows["ratio"].reindex(texts).to_numpy(np.float64))
                    levels[side].append(float(table.meta["precision"]["reference_level_ms"]))
                    print(f"repeat {rep} {side}: {seconds[side][-1]:.0f} s, "
                          f"{int(lat.notna().sum())} architectures", flush=True)
            client.close()
        finally:
            proc.kill()
            proc.wait()
    local = np.median(np.vstack(runs["local"]), axis=0)
    agent = np.median(np.vstack(runs["agent"]), axis=0)
    keep = np.isfinite(local) & np.isfinite(agent)
    local_r = np.median(np.vstack(paired["local"]), axis=0)
    agent_r = np.median(np.vstack(paired["agent"]), axis=0)
    keep_r = np.isfinite(local_r) & np.isfinite(agent_r)
    result: dict[str, Any] = {
        "archs": args.archs, "seed": args.seed, "repeats": args.repeats,
        "protocol": protocol.to_dict(), "runtime": "ort-cpu", "measured": int(keep.sum()),
        "agent_vs_local": agreement(local[keep], agent[keep]),
        "paired_ratio_agent_vs_local": agreement(local_r[keep_r], agent_r[keep_r]),
        "reference_level_ms": levels,
        "goal": {"median_ratio": "1.00 +- 0.03", "spearman": ">= 0.98"},
        "seconds_per_profile": seconds,
        "environment": describe_environment(),
        "load_average": list(os.getloadavg()),
    }
    if args.repeats >= 2:  # the noise floor: the same side against itself
        for side in ("local", "agent"):
            a, b = runs[side][0], runs[side][1]
            ok = np.isfinite(a) & np.isfinite(b)
            result[f"{side}_repeat_vs_repeat"] = agreement(a[ok], b[ok])
    g = result["agent_vs_local"]
    print(f"agent / local: median ratio {g['median_ratio']:.3f} (p10 {g['p10_ratio']:.3f}, p90 "
          f"{g['p90_ratio']:.3f}), Spearman {g['spearman']:.4f} over {int(keep.sum())} "
          "architectures")
    g = result["paired_ratio_agent_vs_local"]
    print(f"latency / reference, agent / local: median ratio {g['median_ratio']:.3f} (p10 "
          f"{g['p10_ratio']:.3f}, p90 {g['p90_ratio']:.3f}), Spearman {g['spearman']:.4f}")
    print("reference level ms: " + ", ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}"
                                            for k, v in levels.items()))
    for side in ("local", "agent"):
        if f"{side}_repeat_vs_repeat" in result:
            n = result[f"{side}_repeat_vs_repeat"]
            print(f"{side} repeat 2 / repeat 1: median ratio {n['median_ratio']:.3f}, "
                  f"Spearman {n['spearman']:.4f}")
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0
