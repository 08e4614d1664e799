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
from pathlib import Path

import click

from hwnas.search import TableError, UnknownNameError, cache_root, list_spaces

__all__ = ["latency", "CACHE_VERSION"]

#: bump when the meta-training changes, so cached encoders are retrained
CACHE_VERSION = "2"


def _context(space_name: str, source_devices: str | None):
    import numpy as np

    from hwnas.meta.encoders import onehot_features, structure_features
    from hwnas.meta.latency_features import LatencyFeatures
    from hwnas.search.tables.load import load_tables

    if space_name not in list_spaces():
        raise UnknownNameError("space", space_name, list_spaces())
    tables = load_tables(space_name)
    if source_devices:
        sources = [d.strip() for d in source_devices.split(",") if d.strip()]
        for d in sources:
            tables.check_device(d)
    else:
        sources = list(tables.devices)
    lat = tables.latency[sources].to_numpy(np.float64)
    usable = np.isfinite(lat).all(axis=0) & (lat > 0).all(axis=0)
    dropped = [d for d, ok in zip(sources, usable, strict=True) if not ok]
    if dropped:
        import warnings

        warnings.warn(f"source devices with missing or non-positive latencies left out: "
                      f"{', '.join(dropped)}", stacklevel=2)
    sources = [d for d, ok in zip(sources, usable, strict=True) if ok]
    if not sources:
        raise TableError(f"{space_name}: no usable source device")
    feats = LatencyFeatures(tables.latency[sources].to_numpy(np.float64),
                            onehot_features(tables.space, tables.archs),
                            structure_features(tables.space, tables.archs), sources)
    ref_path = tables.source_dir / "help_reference_architectures.json"
    reference: list[int] = []
    if ref_path.is_file():
        reference = [int(i) for i in json.loads(ref_path.read_text()).get(space_name, [])]
    return tables, feats, reference


@click.group()
def latency() -> None:
    """Predict a new device's latency table from a few measurements (HELP-style transfer)."""


@latency.command()
@click.option("--space", "space_name", required=True, help="Search space (nb201, fbnet, ofa).")
@click.option("--shots", type=int, default=20, show_default=True,
              help="Architectures to measure, reference set included.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--source-devices", default=None, help="Comma-separated source devices "
              "(default: every public device of the space).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def plan(space_name: str, shots: int, seed: int, source_devices: str | None, out: Path) -> None:
    """Write the architectures to measure on a new device (columns index, arch)."""
    import pandas as pd

    from hwnas.latency.table import atomic_write_text
    from hwnas.meta.latency_features import plan_shots

    tables, feats, reference = _context(space_name, source_devices)
    if shots < 1:
        raise click.BadParameter(f"{shots}; needs >= 1", param_hint="--shots")
    chosen = plan_shots(feats, shots, reference, seed)
    frame = pd.DataFrame({"index": chosen, "arch": [str(tables.archs[i]) for i in chosen]})
    atomic_write_text(out, frame.to_csv(index=False))
    click.echo(f"wrote {out}: {len(chosen)} architectures to measure ({len(reference)} reference "
               "+ D-optimal); add a latency_ms column and pass it to 'hwnas latency adapt --shots'")


@latency.command()
@click.option("--space", "space_name", required=True, help="Search space (nb201, fbnet, ofa).")
@click.option("--shots", "shots_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="CSV with index (or arch) and latency_ms columns.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--algo", type=click.Choice(["ridge", "maml", "metasgd"]), default="ridge",
              show_default=True, help="Head adaptation while meta-training.")
@click.option("--source-devices", default=None, help="Comma-separated source devices "
              "(default: every public device of the space).")
@click.option("--meta-steps", type=int, default=150, show_default=True)
def adapt(space_name: str, shots_file: Path, out: Path, seed: int, algo: str,
          source_devices: str | None, meta_steps: int) -> None:
    """Predict the latency of every architecture of the table from measured shots."""
    import numpy as np
    import pandas as pd

    from hwnas.latency.table import atomic_write_text
    from hwnas.meta.latency import MIN_SHOTS, LatencyTask, MetaLatencyPredictor

    from .cli import _progress

    tables, feats, reference = _context(space_name, source_devices)
    idx, lat = _read_shots(shots_file, tables)
    if len(idx) < MIN_SHOTS:
        raise TableError(f"{shots_file}: {len(idx)} shots; adaptation needs at least {MIN_SHOTS}")
    meta = MetaLatencyPredictor(feats, algo=algo, reference=reference, seed=seed,
                                meta_steps=meta_steps)
    key = hashlib.sha256(json.dumps([space_name, feats.sources, seed, algo, meta_steps,
                                     CACHE_VERSION]).encode()).hexdigest()[:16]
    path = cache_root() / "latency_meta" / f"{space_name}-{algo}-s{seed}-{key}.npz"
    tasks = [LatencyTask(d, feats.source_latency_ms[:, j], j) for j, d in enumerate(feats.sources)]
    # a checked .npz, never unpickled: a corrupt or foreign entry is rebuilt (with a warning)
    with _progress(f"meta-training on {len(tasks)} devices") as advance:
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


def _read_shots(path: Path, tables) -> tuple:
    import numpy as np
    import pandas as pd

    from hwnas.search import ArchitectureError, NotInTableError

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise TableError(f"shots file {path} not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise TableError(f"cannot read shots file {path}: {str(e).splitlines()[0]}") from None
    if "latency_ms" not in frame.columns or not ({"index", "arch"} & set(frame.columns)):
        raise TableError(f"shots file {path} needs an 'index' (or 'arch') column and a "
                         f"'latency_ms' column; it has {', '.join(map(str, frame.columns))}")
    lat = pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(np.float64)
    bad = int((~np.isfinite(lat) | (lat <= 0)).sum())
    if bad:
        raise TableError(f"shots file {path}: {bad} latencies are missing, non-finite or not "
                         "positive")
    if "index" in frame.columns:
        idx = pd.to_numeric(frame["index"], errors="coerce").to_numpy(np.float64)
        if np.isnan(idx).any() or (idx != np.round(idx)).any():
            raise TableError(f"shots file {path}: the index column must hold integers")
        idx = idx.astype(np.int64)
        out_of_range = idx[(idx < 0) | (idx >= len(tables))]
        if out_of_range.size:
            raise NotInTableError(f"shots file {path}: index {int(out_of_range[0])} outside the "
                                  f"{tables.space.name} table (valid: 0..{len(tables) - 1})")
    else:
        try:
            idx = np.array([tables.index_of(tables.space.parse(str(a))) for a in frame["arch"]])
        except ArchitectureError as e:
            raise TableError(f"shots file {path}: {e}") from None
    if len(set(idx.tolist())) != len(idx):
        raise TableError(f"shots file {path}: an architecture appears more than once")
    return idx, lat
