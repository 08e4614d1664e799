"""``hwnas deploy``: measure a search's front on this machine, rebuild it, write the networks."""

from __future__ import annotations

from pathlib import Path

import click

from .options import REMOTE_DEADLINE, TEXT, TOKEN_FILE, FiniteFloatRange, OutDir
from .ui import print_table, progress

__all__ = ["deploy"]


@click.command()
@click.argument("source", type=click.Path(path_type=Path), metavar="RUN_OR_COMPARE_DIR")
@click.option("--device", required=True, type=TEXT,
              help="Where to measure: a runtime of this machine, bare or as local:RUNTIME "
                   "(ort-cpu, ort-cpu-int8, ov-cpu, ov-cpu-int8, torch-cpu; ort-cuda and "
                   "torch-cuda where a GPU is).")
@click.option("--top", type=click.IntRange(min=1, max=10_000), default=10, show_default=True,
              help="Networks to measure in all: the search's front, then the next "
                   "non-dominated layers (NSGA-II's survival rule: a layer that does not fit is "
                   "cut by crowding distance, so a front larger than K is thinned evenly).")
@click.option("--out", type=OutDir(), required=True,
              help="Folder for deployable.csv/.md, models/*.onnx, deploy.json, report.md and "
                   "the scatter (a new folder, or one an earlier deploy wrote).")
@click.option("--problem", type=TEXT, default=None,
              help="With a compare folder of several problems: which one.")
@click.option("--store", type=OutDir(), default=None,
              help="Profile folder the measurements are kept in (resumable; the same store as "
                   "hwnas profile) [default: results/devices/local-RUNTIME].")
@click.option("--remote", "remotes", multiple=True, metavar="URL",
              help="Measure on device agents (hwnas agent serve) instead of this machine; "
                   "repeat for a farm of one device. --device then names the runtime.")
@TOKEN_FILE
@REMOTE_DEADLINE
@click.option("--batch", type=click.IntRange(min=1, max=65536), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=1, show_default=True,
              help="Intra-op threads.")
@click.option("--graph-opt", type=click.Choice(["disable", "basic", "extended", "all"]),
              default="all", show_default=True, help="ONNX Runtime graph optimisation level.")
@click.option("--rounds", type=click.IntRange(min=1, max=100), default=1, show_default=True,
              help="Passes over the networks; latency = median of the rounds' paired ratios.")
@click.option("--precision", type=FiniteFloatRange(min=0, min_open=True, max=1), default=0.02,
              show_default=True, help="Target relative half-width of the median's 95% CI.")
@click.option("--max-runs", type=click.IntRange(min=1, max=10**6), default=200,
              show_default=True)
def deploy(source: Path, device: str, top: int, out: Path, problem: str | None,
           store: Path | None, remotes: tuple[str, ...], token_file: Path | None,
           remote_deadline: float, batch: int, threads: int, graph_opt: str, rounds: int,
           precision: float, max_runs: int) -> None:
    """Measure the front of a search (and its nearest runners-up) on this machine or on device
    agents (--remote), rebuild the front from the measured latencies, and write the deployable
    networks with a report.

    Measurements go into a resumable profile store: a rerun after an interruption measures
    only what is missing. The protocol options are hwnas profile's, so a device folder profiled
    with the same options can serve as --store.
    """
    from hwnas.latency import MeasurementProtocol, RuntimeConfig

    from ..deploy import TargetOptions, resolve_target
    from ..deploy import deploy as run_deploy

    # the same protocol as hwnas profile builds from the same options: one store serves both
    protocol = MeasurementProtocol(rounds=rounds, target_precision=precision,
                                   max_runs=max(max_runs, 20), min_runs=min(20, max_runs))
    options = TargetOptions(RuntimeConfig(batch=batch, intra_op_threads=threads,
                                          graph_optimization=graph_opt), protocol, store,
                           remote=remotes, token_file=token_file,
                           remote_deadline=remote_deadline)
    if token_file is not None and not remotes:
        raise click.UsageError("--token-file is for --remote URL; give the agents' URLs")
    target = resolve_target(device, options)
    with progress(f"measuring on {target.name}") as advance:
        try:
            result = run_deploy(source, device, out, top=top, problem=problem,
                                progress=advance, target=target)
        except KeyboardInterrupt:
            where = getattr(target, "store", "the store")
            click.echo(f"hwnas: interrupted; measurements so far are in {where}; run the same "
                       "command again to resume", err=True)
            raise SystemExit(130) from None
    c = result.record["comparison"]
    click.echo(f"wrote {result.out}: deployable.csv/.md ({c['measured_front_size']} networks "
               f"on the measured front of {c['measured']} measured, {c['failed']} failed), "
               f"models/, deploy.json, report.md")
    front = result.table[result.table["deploy"] == "front"]
    print_table(["accuracy", "p50 ms", "p90 ms", "params", "model"],
                [[_num(r.accuracy, ".2f"), _num(r.latency_p50_ms, ".3f"),
                  _num(r.latency_p90_ms, ".3f"), f"{int(r.params):,}", r.model]
                 for r in front.itertuples()])
    if c.get("spearman") is not None:
        click.echo(f"predicted vs measured: Spearman {c['spearman']:.3f}, median |error| "
                   f"{c['median_abs_rel_error']:.1%}")
    click.echo(f"front: {len(c['kept'])} kept, {len(c['fell_off'])} fell off, "
               f"{len(c['joined'])} joined")
    rows = result.store_rows
    if rows is not None:
        click.echo(f"store: {getattr(target, 'store', '')} ({rows[1] - rows[0]} new "
                   f"measurements, {rows[1]} in all)")
    for w in result.record["warnings"]:
        click.echo(f"warning: {w}", err=True)


def _num(x: float, fmt: str) -> str:
    return "" if x != x else format(x, fmt)  # NaN (no accuracy objective): blank
