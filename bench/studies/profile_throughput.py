"""Throughput of a fresh profile: the prefetching worker against the sequential path.

Side by side in one run, alternating the order in every repeat, on the same NB201 draw:
  * ``pipelined``: a fresh profile (empty export cache, empty store) with ``Profiler(prefetch=k)``
    for each look-ahead ``k`` asked for: a worker process exports the next architectures and
    measures their memory and sizes while one is timed;
  * ``sequential``: the same with ``prefetch=0`` (export, memory, session, timing in turn);
  * ``sequential_no_resources``: ``prefetch=0, resources=False``, the profiler as it was before
    memory and sizes were measured;
  * ``timed_loop``: the timing alone: exports already cached, no resources, ``prefetch=0`` (each
    architecture's session is still built, as in a resumed or repeated profile);
  * ``timed_loop_exporting_neighbour``: the same timed loop while another process exports NB201
    networks without pause: what sharing the CPU with export work costs the timing on this
    machine (two cores share caches, memory bandwidth and, on a VM, perhaps one physical core).
    A pipelined profile's worker exports for part of the profile only, so this is not a bound,
    but it says how much of the overhead is the machine's.

With ``--remote``, also through one ``hwnas agent serve`` on loopback, fresh exports each time:
  * ``remote_export_ahead``: :class:`~hwnas.latency.farm.FarmProfiler` as it is (a host thread
    exports ahead of the agent while it measures);
  * ``remote_inline``: the same with each export made just before its measurement (the thread
    off), as it was.
On loopback the host's exports share the CPU with the agent's timing; on a real device they
do not.

Each wall time is divided by the same repeat's ``timed_loop``; the medians over repeats are
reported. Repeatability: Spearman rho between the latency tables of two fresh profiles of the
same kind (every pair of repeats, median).

Usage:
    python bench/scripts/profile_throughput.py --archs 40 --seed 11 --repeats 3 \
        --out results/benchmarks/profile_throughput.json
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwnas.bench import load_tables
from hwnas.latency import (
    MeasurementProtocol,
    Profiler,
    Target,
    atomic_write_text,
    describe_environment,
    get_runtime,
)
from hwnas.latency.resources import model_file
from hwnas.search import get_space

__all__ = ["run_one", "main"]


def _targets(n: int, seed: int) -> list[Target]:
    tables = load_tables("nb201")
    rng = np.random.default_rng(seed)  # the draw hwnas profile --archs N --seed K makes
    return [Target(tables.archs[i], int(i)) for i in rng.choice(len(tables), n, replace=False)]


def run_one(targets: list[Target], protocol: MeasurementProtocol, cache: Path, out: Path,
            prefetch: int, resources: bool) -> tuple[float, dict[str, float]]:
    """Wall seconds of one profile into ``out`` with exports in ``cache``; its latencies."""
    os.environ["HWNAS_CACHE"] = str(cache)
    space = get_space("nb201")
    t0 = time.perf_counter()
    table = Profiler(space, get_runtime("ort-cpu"), protocol, out, "throughput",
                     table="request", prefetch=prefetch, resources=resources).run(targets)
    return time.perf_counter() - t0, table.latency_by_arch()


#: the neighbour: exports random NB201 networks into its own cache until killed
_NEIGHBOUR = """
import numpy as np
from hwnas.latency import export_onnx
from hwnas.search import get_space
space, rng = get_space("nb201"), np.random.default_rng(0)
while True:
    export_onnx(space, space.sample(rng))  # as the worker exports: checked
"""


@contextlib.contextmanager
def exporting_neighbour(cache: Path) -> Iterator[None]:
    """Another process exporting networks (into ``cache``) for as long as the block runs."""
    env = {**os.environ, "HWNAS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _NEIGHBOUR], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3.0)  # its imports done: it exports from the first timed call on
        yield
    finally:
        proc.kill()
        proc.wait()


def run_remote(targets: list[Target], protocol: MeasurementProtocol, cache: Path, out: Path,
               agent: tuple[Any, Any], export_ahead: bool) -> tuple[float, dict[str, float]]:
    """Wall seconds of one profile through ``agent`` (client, info); its latencies."""
    from hwnas.latency import reference_arch
    from hwnas.latency.farm import FarmProfiler

    os.environ["HWNAS_CACHE"] = str(cache)
    space = get_space("nb201")
    model_file(get_runtime("ort-cpu"), space, reference_arch(space))  # as the local warm-up
    profiler = FarmProfiler(space, get_runtime("ort-cpu"), protocol, out, "throughput",
                            [agent], table="request")
    if not export_ahead:
        profiler._export_ahead = lambda items, finished: None  # type: ignore[method-assign]
    t0 = time.perf_counter()
    table = profiler.run(targets)
    return time.perf_counter() - t0, table.latency_by_arch()


def _rho(a: dict[str, float], b: dict[str, float]) -> float:
    keys = sorted(set(a) & set(b))
    return float(spearmanr([a[k] for k in keys], [b[k] for k in keys])[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--prefetch", default="4", help="Comma-separated look-aheads to compare.")
    ap.add_argument("--max-runs", type=int, default=200,
                    help="The protocol's cap on timed calls (hwnas profile's default: 200).")
    ap.add_argument("--time-budget", type=float, default=780.0,
                    help="Start no repeat after this many seconds beyond 2 (a noisy host).")
    ap.add_argument("--remote", action="store_true",
                    help="Also profile through a loopback agent, with and without export-ahead.")
    ap.add_argument("--out", default="results/benchmarks/profile_throughput.json")
    args = ap.parse_args()

    targets = _targets(args.archs, args.seed)
    protocol = MeasurementProtocol(rounds=args.rounds, max_runs=args.max_runs,
                                   min_runs=min(40, args.max_runs))  # hwnas profile's defaults
    lookaheads = [int(k) for k in args.prefetch.split(",")]
    kinds: list[tuple[str, int, bool, bool]] = [  # name, prefetch, resources, fresh cache
        *((f"pipelined_k{k}", k, True, True) for k in lookaheads),
        ("sequential", 0, True, True),
        ("sequential_no_resources", 0, False, True),
        ("timed_loop", 0, False, False),
        ("timed_loop_exporting_neighbour", 0, False, False),
        *((("remote_export_ahead", 0, True, True), ("remote_inline", 0, True, True))
          if args.remote else ()),
    ]
    walls: dict[str, list[float]] = {k[0]: [] for k in kinds}
    tables: dict[str, list[dict[str, float]]] = {k[0]: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="hwnas-throughput-") as tmp, \
            contextlib.ExitStack() as stack:
        root = Path(tmp)
        warm = root / "warm-cache"  # for the timed loop: every network exported beforehand
        os.environ["HWNAS_CACHE"] = str(warm)
        space, runtime = get_space("nb201"), get_runtime("ort-cpu")
        for t in targets:
            model_file(runtime, space, t.arch)
        from hwnas.latency import reference_arch

        model_file(runtime, space, reference_arch(space))
        # imports and first-call costs paid once, outside every timed profile
        run_one(targets[:2], protocol, warm, root / "warmup", 2, True)
        agent = None
        if args.remote:
            from hwnas.latency.farm import AgentClient

            from .agent_agreement import start_agent

            token = root / "token"
            token.write_text(os.urandom(16).hex() + "\n")
            token.chmod(0o600)
            proc, url = start_agent(token)
            stack.callback(lambda: (proc.kill(), proc.wait()))
            client = stack.enter_context(AgentClient(url, token.read_text().strip()))
            agent = (client, client.info())
        started, last = time.perf_counter(), 0.0
        for r in range(args.repeats):
            elapsed = time.perf_counter() - started
            if r >= 2 and elapsed + last > args.time_budget:
                break
            t_repeat = time.perf_counter()
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]  # rotate the order
            for name, prefetch, resources, fresh in order:
                cache = root / f"cache-{name}-{r}" if fresh else warm
                busy = (exporting_neighbour(root / f"neighbour-{r}")
                        if name.endswith("_neighbour") else contextlib.nullcontext())
                with busy:
                    if name.startswith("remote_"):
                        wall, lat = run_remote(targets, protocol, cache, root / f"out-{name}-{r}",
                                               agent, name == "remote_export_ahead")
                    else:
                        wall, lat = run_one(targets, protocol, cache, root / f"out-{name}-{r}",
                                            prefetch, resources)
                walls[name].append(wall)
                tables[name].append(lat)
            last = time.perf_counter() - t_repeat
    loop = np.array(walls["timed_loop"])
    summary: dict[str, Any] = {}
    for name, *_ in kinds:
        w = np.array(walls[name])
        rhos = [_rho(a, b) for a, b in itertools.combinations(tables[name], 2)]
        summary[name] = {"wall_s": [round(x, 2) for x in w],
                         "median_wall_s": round(float(np.median(w)), 2),
                         "median_ratio_to_timed_loop": round(float(np.median(w / loop)), 3),
                         "spearman_between_repeats": [round(x, 4) for x in rhos],
                         "median_spearman": round(float(np.median(rhos)), 4) if rhos else None}
    report = {
        "command": (f"python bench/scripts/profile_throughput.py --archs {args.archs} --seed "
                    f"{args.seed} --repeats {args.repeats} --rounds {args.rounds} --prefetch "
                    f"{args.prefetch} --max-runs {args.max_runs} --time-budget "
                    f"{args.time_budget:g}" + (" --remote" if args.remote else "")),
        "space": "nb201", "runtime": "ort-cpu", "archs": args.archs, "seed": args.seed,
        "repeats": len(walls["timed_loop"]), "protocol": protocol.to_dict(),
        "ratio": "wall time / the same repeat's timed_loop wall time, median over repeats",
        "results": summary,
        "environment": describe_environment(),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out)
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    lines = ["| profile | median wall (s) | / timed loop | Spearman between repeats |",
             "| --- | --- | --- | --- |"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['median_wall_s']} | {s['median_ratio_to_timed_loop']} | "
                     f"{s['median_spearman']} |")
    atomic_write_text(out.with_suffix(".md"), f"`{report['command']}`\n\n" + "\n".join(lines)
                      + "\n")
    print("\n".join(lines))
