"""``hwnas latency plan`` / ``hwnas latency adapt``: few-shot latency tables for a new device.

``plan`` lists the architectures to measure (HELP's reference set first); ``adapt`` reads their
measured latencies and writes a predicted device table for every architecture of the space's public
table, which ``--device predicted.csv`` then uses like any measured one. The meta-trained encoder
is cached under ``hwnas.search.cache_root()/latency_meta`` keyed by space, source devices, seed,
algorithm and version, so later runs adapt in seconds.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import click

from hwnas.search import TableError, UnknownNameError, cache_root, list_spaces

from .inputs import read_shots, refuse_same_file
from .options import META_STEPS, SEED, SHOTS, SPACE, InFile, OutFile
from .ui import progress

__all__ = ["latency", "CACHE_VERSION"]

#: bump when the meta-training changes, so cached encoders are retrained
CACHE_VERSION = "2"


def _tables(space_name: str):
    from hwnas.search.tables.load import load_tables

    if space_name not in list_spaces():
        raise UnknownNameError("space", space_name, list_spaces())
    return load_tables(space_name)


def _context(tables, space_name: str, source_devices: str | None):
    import numpy as np

    from hwnas.meta.encoders import onehot_features, structure_features
    from hwnas.meta.latency_features import LatencyFeatures

    if source_devices:
        sources = list(dict.fromkeys(d.strip() for d in source_devices.split(",") if d.strip()))
        for d in sources:
            tables.check_device(d)
    else:
        sources = list(tables.devices)
    lat = tables.latency[sources].to_numpy(np.float64)
    usable = np.isfinite(lat).all(axis=0) & (lat > 0).all(axis=0)
    dropped = [d for d, ok in zip(sources, usable, strict=True) if not ok]
    if dropped:
        warnings.warn(f"source devices with missing or non-positive latencies left out: "
                      f"{', '.join(dropped)}", stacklevel=2)
    sources = [d for d, ok in zip(sources, usable, strict=True) if ok]
    if not sources:
        raise TableError(f"{space_name}: no usable source device")
    feats = LatencyFeatures(tables.latency[sources].to_numpy(np.float64),
                            onehot_features(tables.space, tables.archs),
                            structure_features(tables.space, tables.archs), sources)
    return tables, feats, _reference(tables, space_name)


def _reference(tables, space_name: str) -> list[int]:
    """HELP's reference architectures of the space (indices), checked against the table."""
    from hwnas.search.tables import reference_indices

    reference = reference_indices(space_name, tables.source_dir)
    if any(i >= len(tables) for i in reference):
        raise TableError(f"the {space_name} reference set holds indices outside "
                         f"0..{len(tables) - 1}")
    return reference


@click.group()
def latency() -> None:
    """Predict a new device's latency table from a few measurements (HELP-style transfer)."""


@latency.command()
@click.option("--space", "space_name", required=True, type=SPACE,
              help="Search space (nb201, fbnet, ofa).")
@click.option("--shots", type=SHOTS, default=20, show_default=True,
              help="Architectures to measure, reference set included.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--source-devices", default=None, help="Comma-separated source devices "
              "(default: every public device of the space).")
@click.option("--out", type=OutFile(), required=True)
def plan(space_name: str, shots: int, seed: int, source_devices: str | None, out: Path) -> None:
    """Write the architectures to measure on a new device (columns index, arch)."""
    import pandas as pd

    from hwnas.latency.table import atomic_write_text
    from hwnas.meta.latency_features import plan_shots

    tables = _tables(space_name)
    tables, feats, reference = _context(tables, space_name, source_devices)
    if shots > len(tables):
        raise click.BadParameter(f"{shots} > {len(tables)} architectures in the {space_name} "
                                 f"table; valid: 1..{len(tables)}", param_hint="--shots")
    chosen = plan_shots(feats, shots, reference, seed)
    frame = pd.DataFrame({"index": chosen, "arch": [str(tables.archs[i]) for i in chosen]})
    atomic_write_text(out, frame.to_csv(index=False))
    click.echo(f"wrote {out}: {len(chosen)} architectures to measure ({len(reference)} reference "
               "+ D-optimal); add a latency_ms column and pass it to 'hwnas latency adapt --shots'")


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
@click.option("--source-devices", default=None, help="Comma-separated source devices "
              "(default: every public device of the space).")
@click.option("--meta-steps", type=META_STEPS, default=150, show_default=True)
def adapt(space_name: str, shots_file: Path, out: Path, seed: int, algo: str,
          source_devices: str | None, meta_steps: int) -> None:
    """Predict the latency of every architecture of the table from measured shots."""
    import numpy as np
    import pandas as pd

    from hwnas.latency.table import atomic_write_text
    from hwnas.meta.latency import MIN_SHOTS, LatencyTask, MetaLatencyPredictor

    refuse_same_file(shots_file, out, "--shots")
    tables = _tables(space_name)
    # the shots first: a bad file is refused before the source devices are featurised
    idx, lat = read_shots(shots_file, tables, "latency_ms")
    tables, feats, reference = _context(tables, space_name, source_devices)
    if len(idx) < MIN_SHOTS:
        raise TableError(f"{shots_file}: {len(idx)} shots; adaptation needs at least {MIN_SHOTS}")
    meta = MetaLatencyPredictor(feats, algo=algo, reference=reference, seed=seed,
                                meta_steps=meta_steps)
    key = hashlib.sha256(json.dumps([space_name, feats.sources, seed, algo, meta_steps,
                                     CACHE_VERSION]).encode()).hexdigest()[:16]
    path = cache_root() / "latency_meta" / f"{space_name}-{algo}-s{seed}-{key}.npz"
    tasks = [LatencyTask(d, feats.source_latency_ms[:, j], j) for j, d in enumerate(feats.sources)]
    # a checked .npz, never unpickled: a corrupt or foreign entry is rebuilt (with a warning), and
    # a cache that cannot be written costs the next run the training only
    with progress(f"meta-training on {len(tasks)} devices") as advance:
        meta.meta_fit(tasks, progress=lambda done, total: advance(done, total, ""), cache=path)
    pred = meta.adapt(idx, lat)
    every = np.arange(len(tables))
    frame = pd.DataFrame({"index": every, "arch": [str(a) for a in tables.archs],
                          "latency_ms": pred.predict(every)})
    atomic_write_text(out, frame.to_csv(index=False))
    top = np.argsort(pred.weights_)[::-1][:2]
    click.echo(f"wrote {out}: predicted latency of {len(frame)} {space_name} architectures from "
               f"{len(idx)} shots (main heads: "
               + ", ".join(f"{pred.candidates_[i]} {pred.weights_[i]:.2f}" for i in top) + ")")
