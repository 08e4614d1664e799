"""``hwnas devices``: every known device table, public and profiled, with its source."""

from __future__ import annotations

import warnings

import click

from hwnas.search import DataNotFoundError, TableError, get_space, list_spaces
from hwnas.search.tables import SOURCES, load_tables

from ..devices import find_profiled
from .options import SPACE
from .ui import echo_json, print_table

__all__ = ["devices"]


@click.command()
@click.option("--space", "space_names", multiple=True, type=SPACE,
              help="Only this space (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
def devices(space_names: tuple[str, ...], as_json: bool) -> None:
    """List every known device table, with its source."""
    for name in space_names:
        get_space(name)  # unknown names fail before any table is read
    rows = []
    wanted = space_names or tuple(list_spaces())
    for p in find_profiled():
        if p.space in wanted:
            rows.append({"space": p.space, "device": p.device, "rows": p.rows,
                         "median_ms": p.median_ms, "source": f"profiled: {p.path}",
                         "copy": "profiled"})
    public = []
    for name in wanted:
        try:
            public.append(load_tables(name))
        except DataNotFoundError:
            if not rows:
                raise
            warnings.warn("no public tables: listing profiled devices only", stacklevel=1)
            break
        except TableError as e:
            if space_names:  # asked for by name: its tables must load
                raise
            warnings.warn(f"skipping {name}: {e}", stacklevel=1)
    for tables in public:
        name = tables.space.name
        for dev in tables.devices:
            lat = tables.latency[dev]
            rows.append({
                "space": name, "device": dev, "rows": int(lat.notna().sum()),
                "median_ms": float(lat.median()), "source": f"public: {SOURCES[name]}",
                "copy": tables.origin,
            })
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["space", "device", "rows", "median ms", "source", "copy"],
        [[r["space"], r["device"], r["rows"], f"{r['median_ms']:.3g}", r["source"], r["copy"]]
         for r in rows],
    )
