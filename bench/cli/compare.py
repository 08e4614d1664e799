"""``hwnas compare``: a grid of searches (problems x strategies x seeds) from a TOML config."""

from __future__ import annotations

from pathlib import Path

import click

from ..devices import results_dir
from .options import InFile, OutDir, safe_component
from .ui import progress

__all__ = ["compare"]


@click.command()
@click.argument("config_path", metavar="CONFIG.toml", type=InFile("config"))
@click.option("--out", type=OutDir(), default=None,
              help="Output folder [default: results/compare/CONFIG-NAME].")
@click.option("--executor", type=click.Choice(["process", "ray", "serial"]), default=None,
              help="Where runs execute [default: the config's, else process].")
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
              help="Parallel runs for the process executor [default: the config's].")
def compare(config_path: Path, out: Path | None, executor: str | None,
            workers: int | None) -> None:
    """Run a grid of searches (problems x strategies x seeds) from a TOML config; resumable."""
    from ..compare import RunsFailedError, load_config, run_compare

    config = load_config(config_path)  # every problem x strategy checked before anything runs
    if out is None:
        if not safe_component(config_path.stem):
            raise click.BadParameter(f"the config's name {config_path.stem!r} cannot name a "
                                     "folder; give --out", param_hint="CONFIG.toml")
        out = results_dir() / "compare" / config_path.stem
    # the data folder reaches the workers through HWNAS_DATA, set by the group's --data
    try:
        with progress(f"compare {config_path.stem}") as advance:
            manifest = run_compare(config, out, None, executor, workers, progress=advance)
    except RunsFailedError as e:  # the other runs are written and scored: list the failures
        for r in e.manifest.get("failed", [])[:20]:
            click.echo(f"  failed: {r['run']}: {r['error']}", err=True)
        raise
    counts = manifest["counts"]
    click.echo(f"{len(manifest['runs'])} runs: {counts['done']} run, {counts['skipped']} already "
               f"finished, {counts['locked']} being run by another process, {counts['failed']} "
               f"failed ({manifest['seconds']:.0f} s)")
    for r in manifest["runs"]:
        if r["status"] == "failed":
            click.echo(f"  failed: {r['run']}: {r['error']}", err=True)
    click.echo(f"wrote {out}/runs/, evaluations.parquet, indicators.parquet, compare.json; "
               f"report: hwnas report {out} --out {out}/report")
