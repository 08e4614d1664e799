"""``hwnas compare``, ``hwnas report`` and ``hwnas quickstart``: grids of runs and their reports."""

from __future__ import annotations

from pathlib import Path

import click

from .devices import results_dir

__all__ = ["compare", "report", "quickstart"]


@click.command()
@click.argument("config_path", metavar="CONFIG.toml",
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: results/compare/CONFIG-NAME].")
@click.option("--executor", type=click.Choice(["process", "ray", "serial"]), default=None,
              help="Where runs execute [default: the config's, else process].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Parallel runs for the process executor [default: the config's].")
@click.pass_context
def compare(ctx: click.Context, config_path: Path, out: Path | None, executor: str | None,
            workers: int | None) -> None:
    """Run a grid of searches (problems x strategies x seeds) from a TOML config; resumable."""
    from .cli import _progress
    from .compare import load_config, run_compare

    config = load_config(config_path)
    out = out or results_dir() / "compare" / config_path.stem
    data = ctx.obj.get("data") if ctx.obj else None
    with _progress(f"compare {config_path.stem}") as advance:
        manifest = run_compare(config, out, None if data is None else str(data), executor,
                               workers, progress=advance)
    counts = manifest["counts"]
    click.echo(f"{len(manifest['runs'])} runs: {counts['done']} run, {counts['skipped']} already "
               f"finished, {counts['locked']} being run by another process, {counts['failed']} "
               f"failed ({manifest['seconds']:.0f} s)")
    for r in manifest["runs"]:
        if r["status"] == "failed":
            click.echo(f"  failed: {r['run']}: {r['error']}", err=True)
    click.echo(f"wrote {out}/runs/, evaluations.parquet, indicators.parquet, compare.json; "
               f"report: hwnas report {out} --out {out}/report")


@click.command()
@click.argument("inputs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path), metavar="RUN_OR_COMPARE_DIR...")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for report.html, report.md and the figures.")
@click.option("--predictions", "predictions", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A predictor benchmark JSON (bench/scripts/latency_transfer.py) to include.")
@click.option("--scatter", "scatter", multiple=True, nargs=2,
              type=click.Path(dir_okay=False, path_type=Path), metavar="PREDICTED MEASURED",
              help="Two tables (CSV: index or arch, latency_ms or accuracy) to plot predicted "
                   "against measured (repeatable).")
@click.pass_context
def report(ctx: click.Context, inputs: tuple[Path, ...], out: Path,
           predictions: tuple[Path, ...], scatter: tuple[tuple[Path, Path], ...]) -> None:
    """Write an HTML and a Markdown report of compare folders or search runs."""
    from .report import build_report

    data = ctx.obj.get("data") if ctx.obj else None
    paths = build_report(list(inputs), out, None if data is None else str(data),
                         predictions=list(predictions), scatter=list(scatter))
    click.echo(f"wrote {paths['html']} and {paths['md']} ({paths['figures']} figures)")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: results/quickstart].")
@click.option("--archs", "n_archs", type=click.IntRange(min=20), default=60, show_default=True,
              help="NB201 architectures to profile on this machine.")
@click.option("--budget", type=click.IntRange(min=10), default=150, show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True)
def quickstart(out: Path | None, n_archs: int, budget: int,
               seeds: int) -> None:
    """Profile this machine, search NB201 for it with three strategies, and report."""
    from .cli import _progress
    from .quickstart import run_quickstart

    out = out or results_dir() / "quickstart"
    summary = run_quickstart(out, None, n_archs=n_archs, budget=budget, seeds=seeds,
                             echo=lambda m: click.echo(m, err=True), progress=_progress)
    click.echo(f"report: {summary['report']}")
    for line in summary["lines"]:
        click.echo(line)
