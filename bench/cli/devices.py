"""``hwnas devices``: every known device table, public and profiled, with its source.

A profiled table is listed under its qualified name (``mycpu@ort-cpu-int8``: device, runtime,
and batch and threads where not 1), with the runtime, numeric precision, batch and threads its
``meta.json`` records; ``--device`` takes that name, or the bare name while one profile has it.
"""

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
    """List every known device table, with its source.

    Profiled devices are named DEVICE@RUNTIME (plus -bBATCH, -tTHREADS where not 1): pass that
    name to --device; the bare DEVICE works while only one profile of the space has it.
    """
    for name in space_names:
        get_space(name)  # unknown names fail before any table is read
    rows = []
    wanted = space_names or tuple(list_spaces())
    for p in find_profiled():
        if p.space in wanted:
            rows.append({"space": p.space, "device": p.device, "name": p.name,
                         "runtime": p.runtime, "precision": p.numeric_precision,
                         "batch": p.batch, "threads": p.threads, "rows": p.rows,
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
            # the public tables do not record runtime, precision, batch or threads per device
            rows.append({
                "space": name, "device": dev, "name": dev, "runtime": None, "precision": None,
                "batch": None, "threads": None, "rows": int(lat.notna().sum()),
                "median_ms": float(lat.median()), "source": f"public: {SOURCES[name]}",
                "copy": tables.origin,
            })
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["space", "device", "runtime", "precision", "batch", "threads", "rows", "median ms",
         "source", "copy"],
        [[r["space"], r["name"], *("-" if r[k] is None else r[k]
                                   for k in ("runtime", "precision", "batch", "threads")),
          r["rows"], f"{r['median_ms']:.3g}", r["source"], r["copy"]] for r in rows],
    )
