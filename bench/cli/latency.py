"""``hwnas latency plan`` / ``hwnas latency adapt``: few-shot latency tables for a new device.

``plan`` lists the architectures to measure (HELP's reference set first); ``adapt`` reads their
measured latencies and writes a predicted device table for every architecture of the space's public
table, which ``--device predicted.csv`` then uses like any measured one. The meta-trained encoder
is cached under ``hwnas.search.cache_root()/latency_meta`` keyed by space, source devices, seed,
algorithm and version, so later runs adapt in seconds.
"""

from __future__ import annotations

from pathlib import Path

import click

from .app import ListingGroup
from .inputs import read_shots, refuse_same_file
from .options import META_STEPS, SEED, SHOTS, SPACE, InFile, NameList, OutFile
from .ui import progress

__all__ = ["latency"]


def _sources(source_devices: list[str] | None) -> list[str] | None:
    # parsed by NameList: None (the default) or at least one name, each once
    return list(source_devices) if source_devices else None


@click.group(cls=ListingGroup)
def latency() -> None:
    """Predict a new device's latency table from a few measurements (HELP-style transfer)."""


@latency.command()
@click.option("--space", "space_name", required=True, type=SPACE,
              help="Search space (nb201, fbnet, ofa).")
@click.option("--shots", type=SHOTS, default=20, show_default=True,
              help="Architectures to measure, reference set included.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--source-devices", type=NameList(), default=None,
              help="Comma-separated source devices "
              "(default: every public device of the space).")
@click.option("--out", type=OutFile(), required=True)
def plan(space_name: str, shots: int, seed: int, source_devices: list[str] | None,
         out: Path) -> None:
    """Write the architectures to measure on a new device (columns index, arch)."""
    from hwnas.latency.table import atomic_write_text
    from hwnas.meta.device import device_context, plan_device

    context = device_context(space_name, _sources(source_devices))
    if shots > len(context.tables):
        raise click.BadParameter(f"{shots} > {len(context.tables)} architectures in the "
                                 f"{space_name} table; valid: 1..{len(context.tables)}",
                                 param_hint="--shots")
    frame = plan_device(context, shots, seed)
    atomic_write_text(out, frame.to_csv(index=False))
    click.echo(f"wrote {out}: {len(frame)} architectures to measure ({len(context.reference)} "
               "reference + D-optimal); add a latency_ms column and pass it to "
               "'hwnas latency adapt --shots'")


@latency.command()
@click.option("--space", "space_name", required=True, type=SPACE,
              help="Search space (nb201, fbnet, ofa).")
@click.option("--shots", "shots_file", type=InFile(), required=True,
              help="CSV with index (or arch) and latency_ms columns.")
@click.option("--out", type=OutFile(), required=True,
              help="The predicted device table (not the --shots file).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--algo", type=click.Choice(["ridge", "maml", "metasgd"]), default="ridge",
              show_default=True, help="Head adaptation while meta-training.")
@click.option("--source-devices", type=NameList(), default=None,
              help="Comma-separated source devices "
              "(default: every public device of the space).")
@click.option("--meta-steps", type=META_STEPS, default=150, show_default=True)
def adapt(space_name: str, shots_file: Path, out: Path, seed: int, algo: str,
          source_devices: list[str] | None, meta_steps: int) -> None:
    """Predict the latency of every architecture of the table from measured shots."""
    import numpy as np

    from hwnas.latency.table import atomic_write_text
    from hwnas.meta.device import adapt_device, device_context
    from hwnas.search.tables import load_tables

    refuse_same_file(shots_file, out, "--shots")
    # the shots first: a bad file is refused before the source devices are featurised
    idx, lat = read_shots(shots_file, load_tables(space_name), "latency_ms")
    context = device_context(space_name, _sources(source_devices))
    with progress(f"meta-training on {len(context.features.sources)} devices") as advance:
        frame, pred = adapt_device(context, idx, lat, seed=seed, algo=algo,
                                   meta_steps=meta_steps,
                                   progress=lambda done, total: advance(done, total, ""))
    atomic_write_text(out, frame.to_csv(index=False))
    top = np.argsort(pred.weights_)[::-1][:2]
    click.echo(f"wrote {out}: predicted latency of {len(frame)} {space_name} architectures from "
               f"{len(idx)} shots (main heads: "
               + ", ".join(f"{pred.candidates_[i]} {pred.weights_[i]:.2f}" for i in top) + ")")
