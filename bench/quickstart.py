"""``hwnas quickstart``: the whole product on this machine in a few minutes.

1. Plan 20 NB201 architectures to measure (HELP's reference set first; ``hwnas latency plan``) and
   add others drawn at random, which check the predictor (:func:`hwnas.meta.device.plan_device`).
2. Profile them all on this machine with ONNX Runtime (CPU, 1 thread, batch 1): a real device
   table, ``OUT/device/latency_ms.csv``.
3. Adapt the meta-learned latency predictor to this machine from the 20 planned measurements
   (:func:`hwnas.meta.device.adapt_device`): a predicted table for all 15,625 architectures,
   checked (Spearman) against the other measured ones.
4. Compare three strategies x seeds on NB201 CIFAR-10 accuracy x this machine's latency x
   parameters (``hwnas compare``): two baselines and ``auto``, what a search gets by default
   (here the surrogate with the public tables' other tasks and devices as priors), and write the
   report (``hwnas report``).
5. Deploy (``hwnas deploy``): measure the pooled front and its nearest runners-up
   (:data:`DEPLOY_TOP` networks) here, rebuild the front from the measured latencies, and write
   the recommended networks (table, ONNX files, predicted vs measured) to ``OUT/deploy``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["run_quickstart", "STRATEGIES", "DEPLOY_TOP"]

#: two baselines beside what a search gets by default
STRATEGIES = ("random", "nsga2", "auto")
SHOTS = 20
#: networks the deploy step measures: small, so the quickstart stays quick
DEPLOY_TOP = 6
Echo = Callable[[str], None]


def _plan(out: Path, n_archs: int, context: Any, echo: Echo) -> tuple[list[int], list[int]]:
    """Indices to adapt from (HELP's plan) and indices to check the prediction on."""
    from hwnas.latency import atomic_write_text
    from hwnas.meta.device import plan_device

    plan = plan_device(context, SHOTS, seed=0)
    atomic_write_text(out / "plan.csv", plan.to_csv(index=False))
    planned = [int(i) for i in plan["index"]]
    rng = np.random.default_rng(0)
    taken = set(planned)
    others = [int(i) for i in rng.permutation(len(context.tables)) if int(i) not in taken]
    return planned, others[: max(0, n_archs - len(planned))]


def run_quickstart(out: str | Path, data_dir: str | None = None, n_archs: int = 60,
                   budget: int = 150, seeds: int = 3, echo: Echo = lambda m: None,
                   progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Run the quickstart into ``out``; returns the report path and a three-line summary.

    Args:
        progress: ``progress(label)`` returns a context manager yielding ``advance(done, total,
            what)`` (the CLI's progress bar); ``None``: no progress.
    """
    import contextlib

    from scipy.stats import spearmanr

    from hwnas.latency import MeasurementProtocol, Profiler, RuntimeConfig, Target, get_runtime
    from hwnas.meta.device import adapt_device, device_context
    from hwnas.search import get_space
    from hwnas.search.tables.load import load_tables

    from .compare import CompareConfig, run_compare
    from .report import build_report

    bar = progress or (lambda label: contextlib.nullcontext(lambda *a: None))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = load_tables("nb201", data_dir)  # says where it looked and how to set HWNAS_DATA
    space = get_space("nb201")

    echo("quickstart 1/5: planning which architectures to measure")
    context = device_context("nb201", data_dir=data_dir)
    planned, others = _plan(out, n_archs, context, echo)
    targets = [Target(tables.arch_at(i), i) for i in [*planned, *others]]

    echo(f"quickstart 2/5: profiling {len(targets)} NB201 networks on this machine "
         "(ONNX Runtime, CPU, 1 thread, batch 1)")
    runtime = get_runtime("ort-cpu", RuntimeConfig())
    runtime.require()
    profiler = Profiler(space, runtime, MeasurementProtocol(), out / "device", "this-machine")
    with bar("profiling this machine") as advance:
        table = profiler.run(targets, progress=advance)
    measured = table.frame.dropna(subset=["latency_ms"])
    lat_line = (f"this machine: {len(measured)} NB201 networks measured, median "
                f"{measured['latency_ms'].median():.2f} ms "
                f"({measured['latency_ms'].min():.2f}-{measured['latency_ms'].max():.2f} ms)")

    echo("quickstart 3/5: adapting the latency predictor from "
         f"{min(len(planned), SHOTS)} measurements")
    device = str(out / "device" / "latency_ms.csv")
    shots = measured[measured["index"].isin(planned)]
    check = measured[measured["index"].isin(others)]
    predicted = out / "predicted_latency.csv"
    _write(out / "shots.csv", shots[["index", "latency_ms"]])
    if len(shots) >= 3:
        with bar("meta-training the latency predictor") as advance:
            frame, _ = adapt_device(context, shots["index"].to_numpy(),
                                    shots["latency_ms"].to_numpy(),
                                    progress=lambda done, total: advance(done, total, ""))
        _write(predicted, frame)
        pred = frame.set_index("index")["latency_ms"]
        lat_line += f"; predictor adapted from {len(shots)} of them"
        if len(check) >= 3:
            rho = float(spearmanr(pred.loc[check["index"]], check["latency_ms"]).statistic)
            lat_line += f" ranks the other {len(check)} with Spearman {rho:.3f}"
        else:
            lat_line += " (too few others measured to check it: raise --archs)"
        device = str(predicted)
    else:
        echo("quickstart: too few measured shots for a predicted table; the search uses the "
             "measured sample only (architectures outside it are skipped)")

    echo(f"quickstart 4/5: {len(STRATEGIES)} strategies x {seeds} seeds x {budget} evaluations")
    problem = {"space": "nb201", "task": "cifar10_test_200ep", "device": device,
               "objectives": ["accuracy", "latency", "params"], "constraints": []}
    config = CompareConfig({"nb201-this-machine": problem},
                           {s: {"name": s, "options": {}} for s in STRATEGIES},
                           list(range(seeds)), sorted({max(1, budget // 3), budget}),
                           executor="process", workers=2, source="quickstart")
    with bar("searching") as advance:
        manifest = run_compare(config, out / "compare", data_dir, progress=advance)
    pairs = []
    if device == str(predicted) and len(check) >= 3:
        # the scatter shows only networks the predictor did not adapt from
        pairs = [(predicted, _write(out / "measured_check.csv",
                                    check[["index", "latency_ms"]]))]
    paths = build_report([out / "compare"], out / "report", data_dir, scatter=pairs)

    echo(f"quickstart 5/5: measuring the {DEPLOY_TOP} best networks of the search on this "
         "machine (hwnas deploy)")
    deploy_line = _deploy(out, runtime, bar)

    scores = pd.read_parquet(out / "compare" / "indicators.parquet")
    last = scores[scores["budget"] == budget].groupby("strategy")["hv_ratio"].median()
    best = last.idxmax()
    lines = [
        lat_line,
        f"search: {manifest['counts']['done'] + manifest['counts']['skipped']} runs; best median "
        f"hypervolume ratio at {budget} evaluations: {best} {last[best]:.3f} ("
        + ", ".join(f"{s} {v:.3f}" for s, v in last.items() if s != best) + ")",
        deploy_line,
        f"everything is under {out}: device/, predicted_latency.csv, compare/, report/, "
        "deploy/",
    ]
    from hwnas.latency import atomic_write_text

    atomic_write_text(out / "summary.json",
                      json.dumps({"lines": lines, "report": str(paths["html"])}, indent=2) + "\n")
    return {"report": str(paths["html"]), "lines": lines}


def _deploy(out: Path, runtime: Any, bar: Callable[[str], Any]) -> str:
    """Step 5: the search's front measured here; returns the summary line."""
    from hwnas.latency import MeasurementProtocol

    from .deploy import LocalTarget, TargetOptions, deploy

    # a store of its own: device/latency_ms.csv stays the profile of step 2
    target = LocalTarget(runtime.name, TargetOptions(runtime.config, MeasurementProtocol(),
                                                     out / "device-deploy"))
    with bar("measuring the front here") as advance:
        result = deploy(out / "compare", target.name, out / "deploy", top=DEPLOY_TOP,
                        progress=advance, target=target)
    front = result.table[result.table["deploy"] == "front"]
    c = result.record["comparison"]
    line = (f"recommended for this machine: {len(front)} networks measured here "
            f"({front['latency_p50_ms'].min():.2f}-{front['latency_p50_ms'].max():.2f} ms"
            + (f", accuracy {front['accuracy'].min():.1f}-{front['accuracy'].max():.1f}%"
               if front["accuracy"].notna().any() else "") + ")")
    if c.get("spearman") is not None:
        line += f"; predicted vs measured Spearman {c['spearman']:.3f}"
    return line + f"; {out / 'deploy' / 'deployable.md'}"


def _write(path: Path, frame: pd.DataFrame) -> Path:
    from hwnas.latency import atomic_write_text

    atomic_write_text(path, frame.to_csv(index=False))
    return path
