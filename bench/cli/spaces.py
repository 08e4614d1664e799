"""``hwnas spaces``: the search spaces and their public tables."""

from __future__ import annotations

import click

from hwnas.search import get_space, list_spaces
from hwnas.search.tables import EXPECTED_ROWS

from .ui import echo_json, print_table, size_text

__all__ = ["spaces"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
def spaces(as_json: bool) -> None:
    """List the search spaces: name, kind, size, and the public table's rows."""
    rows = []
    for name in list_spaces():
        s = get_space(name)
        rows.append({
            "name": name,
            "kind": s.kind,
            "size": s.size,
            "choices": len(s.genes),
            "input": "x".join(map(str, s.input_shape(s.sample(0)))) if name != "ofa"
            else "3x128..224",
            "table_rows": EXPECTED_ROWS[name],
        })
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["space", "kind", "size", "choices", "input", "public table"],
        [[r["name"], r["kind"], size_text(r["size"]), r["choices"], r["input"], r["table_rows"]]
         for r in rows],
    )
