"""``hwnas query``: everything known about one architecture."""

from __future__ import annotations

import math
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import click

from hwnas.search import (
    DataNotFoundError,
    ModelStats,
    NotInTableError,
    Space,
    get_space,
    model_stats,
)
from hwnas.search.tables import load_tables

from ..cache import StatsCache
from ..devices import resolve_device
from .inputs import check_device_path
from .options import SPACE, TEXT, StrictInt
from .ui import echo_json

__all__ = ["query", "is_local_device", "model_stats_cached"]


def is_local_device(spec: str) -> bool:
    """A device that needs no public table: live, a lookup table or a table on disk."""
    return spec.startswith(("live:", "lut:")) or Path(spec).exists()


def model_stats_cached(space: Space, arch: Any) -> ModelStats:
    """Parameters and FLOPs through the disk cache; a cache that cannot be used (corrupt,
    read-only, a file where its folder should be) costs a warning and a recount, never the
    answer."""
    try:
        return StatsCache().get(space, arch)
    except (sqlite3.Error, OSError) as e:
        warnings.warn(f"the statistics cache cannot be used ({e}); counting without it",
                      stacklevel=1)
    fast = getattr(space, "fast_stats", None)
    return fast([arch], space.num_classes)[0] if fast is not None else model_stats(space, arch)


@click.command()
@click.option("--space", "space_name", required=True, type=SPACE, help="nb201, fbnet or ofa.")
@click.option("--index", type=StrictInt(0, 10**9), default=None,
              help="Index in the space's public table.")
@click.option("--arch", "arch_text", default=None, help="Canonical architecture string.")
@click.option("--task", type=TEXT, default=None, help="Only this accuracy column.")
@click.option("--device", type=TEXT, default=None, help="Only this device's latency.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def query(space_name: str, index: int | None, arch_text: str | None, task: str | None,
          device: str | None, as_json: bool) -> None:
    """Everything known about one architecture: params, FLOPs, accuracies, latencies."""
    if (index is None) == (arch_text is None):
        raise click.UsageError("give exactly one of --index N or --arch TEXT")
    space = get_space(space_name)
    arch = space.parse(arch_text) if arch_text is not None else None
    try:
        tables = load_tables(space_name)
    except DataNotFoundError:
        if arch is None or task or (device and not is_local_device(device)):
            raise
        tables = None
        warnings.warn("no public tables: showing size and FLOPs only", stacklevel=1)
    if tables is not None and task:
        tables.check_task(task)
    check_device_path(device, tables)
    source = resolve_device(device, space_name, tables) if device else None
    if arch is None:
        arch = tables.arch_at(index)
    idx = None
    if tables is not None:
        try:
            idx = tables.index_of(arch)
        except NotInTableError:
            if task or (device and device in tables.devices):
                raise
            warnings.warn(f"{space_name}: not in the public table of {len(tables)} "
                          "architectures: no accuracy or latency", stacklevel=1)
    stats = model_stats_cached(space, arch)
    out: dict[str, Any] = {
        "space": space_name, "index": idx, "arch": space.format(arch),
        "params": stats.params, "flops": round(stats.flops_m, 4),
        "flops_unit": "millions of multiply-accumulates",
        "accuracy": {}, "latency_ms": {},
    }
    if idx is not None:
        row = tables.row(idx)
        out["accuracy"] = {k: v for k, v in row["accuracy"].items() if task in (None, k)}
        if source is None:
            out["latency_ms"] = row["latency_ms"]
    if source is not None:
        value = float(source.evaluate([arch])[0])
        if not math.isfinite(value):
            raise NotInTableError(f"{device}: no latency for {space.format(arch)}")
        out["latency_ms"] = {device: value}
    if as_json:
        echo_json(out)
        return
    click.echo(f"space     {space_name}")
    click.echo(f"index     {'-' if idx is None else idx}")
    click.echo(f"arch      {out['arch']}")
    click.echo(f"params    {stats.params:,}")
    click.echo(f"flops     {stats.flops_m:.2f} M multiply-accumulates")
    for k, v in out["accuracy"].items():
        click.echo(f"accuracy  {k:<22} {v:8.2f} %")
    for k, v in out["latency_ms"].items():
        click.echo(f"latency   {k:<22} {v:10.4g} ms")
