"""``hwnas profile``: measure architectures on this machine (or through device agents,
``--remote``) into a device table, or build an operator lookup table (``--lut``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import click

from hwnas.search import DataNotFoundError, get_space
from hwnas.search.tables import load_tables

from ..core.runs import check_out_folder
from ..devices import profile_folder, results_dir
from .inputs import read_indices
from .options import (
    NAME,
    REMOTE_DEADLINE,
    SEED,
    SPACE,
    TOKEN_FILE,
    FiniteFloatRange,
    InFile,
    OutDir,
)
from .ui import progress

__all__ = ["profile", "DEFAULT_ROUNDS"]

#: one paired round: the README's benchmark of protocols finds it as reproducible as two
#: (Spearman 0.9945 vs 0.9907 between repeated profiles) at twice the speed
DEFAULT_ROUNDS = 1


@click.command()
@click.option("--space", "space_name", required=True, type=SPACE, help="nb201, fbnet or ofa.")
@click.option("--runtime", "runtime_name", default="ort-cpu", show_default=True,
              help="ort-cpu, ort-cpu-int8, ov-cpu, ov-cpu-int8, ort-cuda, ort-cuda-fp16, torch-cpu "
                   "or torch-cuda. No FP16 on the CPU: ONNX Runtime's CPU provider runs an FP16 "
                   "model through casts in FP32 kernels.")
@click.option("--name", required=True, type=NAME,
              help="Device name (a folder under results/devices: letters, digits, '.', '_', '-').")
@click.option("--archs", "n_archs", type=click.IntRange(min=1, max=10**7), default=None,
              help="Profile N architectures drawn with --seed [default: 100].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--indices", "indices_file", type=InFile(), default=None,
              help="CSV with an 'index' column, or one index per line.")
@click.option("--batch", type=click.IntRange(min=1, max=65536), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=1, show_default=True,
              help="Intra-op threads.")
@click.option("--graph-opt", type=click.Choice(["disable", "basic", "extended", "all"]),
              default="all", show_default=True, help="ONNX Runtime graph optimisation level.")
@click.option("--rounds", type=click.IntRange(min=1, max=100), default=DEFAULT_ROUNDS,
              show_default=True,
              help="Passes over the architectures; latency = median of the rounds' paired "
                   "ratios.")
@click.option("--precision", type=FiniteFloatRange(min=0, min_open=True, max=1), default=0.02,
              show_default=True, help="Target relative half-width of the median's 95% CI.")
@click.option("--max-runs", type=click.IntRange(min=1, max=10**6), default=200,
              show_default=True)
@click.option("--cpu", "cpus", default=None,
              help="Pin the profiler to these CPU cores (e.g. '1' or '0,1').")
@click.option("--lut", is_flag=True,
              help="Build an operator lookup table instead: every kernel of the space measured "
                   "once, the overhead fitted on --archs whole networks [default: 24].")
@click.option("--out", type=OutDir(), default=None,
              help="Output folder [default: results/devices/NAME for ort-cpu, batch 1, 1 thread, "
                   "else results/devices/NAME@RUNTIME[-bBATCH][-tTHREADS]; results/luts/NAME].")
@click.option("--remote", "remotes", multiple=True, metavar="URL",
              help="Measure on the hwnas agent at URL (http://HOST:PORT) instead of here; "
                   "repeat for a farm. Agents of several devices: one table per device in "
                   "OUT/DEVICE.")
@TOKEN_FILE
@REMOTE_DEADLINE
def profile(space_name: str, runtime_name: str, name: str, n_archs: int | None, seed: int,
            indices_file: Path | None, batch: int, threads: int, graph_opt: str, rounds: int,
            precision: float, max_runs: int, cpus: str | None, lut: bool,
            out: Path | None, remotes: tuple[str, ...], token_file: Path | None,
            remote_deadline: float) -> None:
    """Measure architectures on this machine, or on device agents (--remote), into a device
    table (resumable), or build an operator lookup table (--lut).

    The table holds the architectures asked for by this command; measurements of earlier
    requests stay in the folder's profile.sqlite and are reused when asked for again.
    """
    from hwnas.latency import MeasurementProtocol, Profiler, RuntimeConfig, get_runtime
    from hwnas.latency.store import ProfileLock

    if n_archs is not None and indices_file is not None:
        raise click.UsageError("give --archs N or --indices FILE, not both")
    if remotes:
        urls, token = _remote_setup(remotes, token_file, runtime_name, lut, cpus)
    elif token_file is not None:
        raise click.UsageError("--token-file is for --remote URL; give the agents' URLs")
    space = get_space(space_name)
    config = RuntimeConfig(batch=batch, intra_op_threads=threads, graph_optimization=graph_opt)
    runtime = get_runtime(runtime_name, config)
    if not remotes:  # an agent runs the runtime there, not here
        runtime.require()
    protocol = MeasurementProtocol(rounds=rounds, target_precision=precision,
                                   max_runs=max(max_runs, 20), min_runs=min(20, max_runs))
    if cpus is not None:
        _pin(cpus)
    if lut:
        _build_lut(space_name, runtime_name, name, n_archs, seed, indices_file, config,
                   protocol, out)
        return
    targets = _targets(space_name, n_archs, seed, indices_file)
    out = out or profile_folder(name, runtime_name, batch, threads)
    check_out_folder(out, "profile.sqlite")
    if remotes:
        _profile_remote(space, runtime, protocol, out, name, urls, token, targets,
                        remote_deadline)
        return
    profiler = Profiler(space, runtime, protocol, out, name, table="request")
    with ProfileLock(out), progress(f"profiling {name}") as advance:
        try:
            table = profiler.run(targets, progress=advance)
        except KeyboardInterrupt:
            click.echo(f"hwnas: interrupted; measurements so far are in {out}; run the same "
                       "command again to resume", err=True)
            raise SystemExit(130) from None
    _report(table, out)


def _report(table: Any, out: Path) -> None:
    meta = table.meta
    prec, counts = meta["precision"], meta["counts"]
    extra = counts["stored_architectures"] - counts["architectures"]
    click.echo(f"wrote {out / 'latency_ms.csv'} ({counts['architectures']} "
               f"architectures, {counts['failed']} failed) and {out / 'meta.json'}"
               + (f"; {extra} more architectures of earlier requests stay in "
                  f"{out / 'profile.sqlite'}" if extra > 0 else ""))
    if prec.get("median_round_spread") is not None:
        click.echo(f"precision: median spread between rounds {prec['median_round_spread']:.1%}")
    ref = prec.get("reference")
    if ref:
        flag = "  (drift flagged)" if ref["drift_flagged"] else ""
        click.echo(f"reference: {ref['measurements']} measurements, {ref['min_ms']:.3f}-"
                   f"{ref['max_ms']:.3f} ms, max drift {ref['max_drift']:.1%}{flag}")


def _remote_setup(remotes: tuple[str, ...], token_file: Path | None, runtime_name: str,
                  lut: bool, cpus: str | None) -> tuple[list[str], str]:
    """Check the --remote options before anything is exported: URLs, token, runtime."""
    from hwnas.latency.farm import backend_for, check_url, read_token

    if lut:
        raise click.UsageError("--lut builds a lookup table on this machine; it cannot be "
                               "combined with --remote")
    if cpus is not None:
        raise click.UsageError("--cpu pins this machine's profiler; with --remote, pin the "
                               "agent instead (e.g. taskset -c 1 hwnas agent serve ...)")
    urls = [check_url(u) for u in remotes]
    backend_for(runtime_name)
    return urls, read_token(token_file)


def _profile_remote(space: Any, runtime: Any, protocol: Any, out: Path, name: str,
                    urls: list[str], token: str, targets: list, deadline: float) -> None:
    from hwnas.latency.farm import profile_remote

    with progress(f"profiling {name} on {len(urls)} agent(s)") as advance:
        try:
            results = profile_remote(space, runtime, protocol, out, name, urls, token, targets,
                                     table="request", progress=advance, deadline=deadline)
        except KeyboardInterrupt:
            click.echo(f"hwnas: interrupted; measurements so far are in {out}; run the same "
                       "command again to resume", err=True)
            raise SystemExit(130) from None
    for r in results:
        if len(results) > 1:
            click.echo(f"device {r.device}:")
        _report(r.table, r.out_dir)
        rows = r.table.meta["remote"]["measurements_by_agent"]
        click.echo("measured by " + ", ".join(f"{a} ({n})" for a, n in sorted(rows.items())))


def _build_lut(space_name: str, runtime_name: str, name: str, n_archs: int | None, seed: int,
               indices_file: Path | None, config: Any, protocol: Any, out: Path | None) -> None:
    from hwnas.latency.lut import LUT_RUNTIMES, LUTError, OperatorLUT, build_lut, list_lut_spaces

    if space_name not in list_lut_spaces():
        raise LUTError(f"no operator lookup table for space {space_name!r}; valid: "
                       f"{', '.join(list_lut_spaces())}")
    if runtime_name not in LUT_RUNTIMES:
        raise click.BadParameter(f"{runtime_name!r}; the lookup table models ONNX Runtime's CPU "
                                 f"kernels: valid: {', '.join(LUT_RUNTIMES)}",
                                 param_hint="--runtime")
    if config.graph_optimization != "all":
        raise click.BadParameter(f"{config.graph_optimization!r}; the lookup table models the "
                                 "optimised graph: valid: all", param_hint="--graph-opt")
    if indices_file is not None:
        calibration: Any = [t.arch for t in _targets(space_name, None, seed, indices_file)]
    else:
        calibration = n_archs or 24
    out = out or results_dir() / "luts" / name
    if (out / "lut.json").is_file():  # never replace one runtime's table by another's
        OperatorLUT.load(out, runtime=runtime_name)
    with progress(f"lookup table {name}") as advance:
        try:
            table = build_lut(space_name, config, protocol, calibration_archs=calibration,
                              seed=seed, device=name, runtime=runtime_name,
                              progress=lambda done, total: advance(done, total, ""))
        except KeyboardInterrupt:
            click.echo("hwnas: interrupted; no table written", err=True)
            raise SystemExit(130) from None
    table.save(out)
    a, b = table.coef_
    cal = table.metadata["calibration"]
    click.echo(f"wrote {out / 'kernels.csv'} ({len(table)} kernels) and {out / 'lut.json'}")
    click.echo(f"fit on {len(cal['archs'])} networks: latency = {a:.3f} x kernel sum + "
               f"{b:.3f} ms (mean relative error {cal['mape']:.1%}); use it as "
               f"--device lut:{out}")


def _pin(cpus: str) -> None:
    valid = sorted(os.sched_getaffinity(0))
    parts = [c.strip() for c in cpus.split(",")]
    # isdecimal, not isdigit: int() refuses digits such as '²' that isdigit accepts
    cores = {int(c) for c in parts} if all(c.isdecimal() for c in parts) else set()
    if not cores or not cores <= set(valid):
        raise click.BadParameter(f"{cpus!r} is not a comma-separated list of this process's "
                                 f"cores; valid: core numbers among {valid}",
                                 param_hint="--cpu")
    try:
        os.sched_setaffinity(0, cores)
    except OSError as e:
        raise click.BadParameter(f"{cpus!r}: {e.strerror}; valid: core numbers among {valid}",
                                 param_hint="--cpu") from None


def _targets(space_name: str, n: int | None, seed: int, indices_file: Path | None) -> list:
    import numpy as np

    from hwnas.latency import Target

    space = get_space(space_name)
    try:
        tables = load_tables(space_name)
    except DataNotFoundError:
        if indices_file is not None:
            raise
        tables = None
    if indices_file is not None:
        indices = read_indices(indices_file, len(tables))
        return [Target(tables.arch_at(i), i) for i in indices]
    n = n or 100
    rng = np.random.default_rng(seed)
    if tables is not None:
        if n > len(tables):
            raise click.BadParameter(f"{n} > {len(tables)} architectures in the {space_name} "
                                     "table", param_hint="--archs")
        return [Target(tables.archs[i], int(i)) for i in rng.choice(len(tables), n, replace=False)]
    warnings.warn("no public tables: drawing architectures from the space, without indices",
                  stacklevel=1)
    archs: dict = {}
    while len(archs) < n:
        archs.setdefault(space.sample(rng))
    return [Target(a) for a in archs]
