"""``hwnas quickstart``: profile this machine, search NB201 for it, report, and deploy the front
measured here."""

from __future__ import annotations

from pathlib import Path

import click

from ..devices import results_dir
from .options import OutDir
from .ui import progress

__all__ = ["quickstart"]


@click.command()
@click.option("--out", type=OutDir(), default=None,
              help="Output folder [default: results/quickstart].")
@click.option("--archs", "n_archs", type=click.IntRange(min=20, max=15625), default=60,
              show_default=True, help="NB201 architectures to profile on this machine.")
@click.option("--budget", type=click.IntRange(min=10, max=15625), default=150,
              show_default=True)
@click.option("--seeds", type=click.IntRange(min=1, max=100), default=3, show_default=True)
def quickstart(out: Path | None, n_archs: int, budget: int, seeds: int) -> None:
    """Profile this machine, search NB201 for it with three strategies, report, and measure the
    recommended networks here (hwnas deploy: deploy/ holds them as ONNX files)."""
    from ..quickstart import run_quickstart

    out = out or results_dir() / "quickstart"
    summary = run_quickstart(out, None, n_archs=n_archs, budget=budget, seeds=seeds,
                             echo=lambda m: click.echo(m, err=True), progress=progress)
    click.echo(f"report: {summary['report']}")
    for line in summary["lines"]:
        click.echo(line)
