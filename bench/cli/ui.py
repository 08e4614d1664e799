"""What the command line prints: tables, JSON and the progress bar (stderr)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["echo_json", "print_table", "progress", "size_text"]


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, allow_nan=False))


def size_text(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3e}".replace("e+", "e")


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, box=None, header_style="bold")
    for r in rows:
        table.add_row(*map(str, r))
    # a pipe gets whole lines (no wrapping at 80 columns); a terminal gets rich's layout
    Console(width=None if sys.stdout.isatty() else 400).print(table)


class progress:
    """A rich progress bar with ETA on stderr; yields the callback ``advance(done, total, what)``.

    The bar starts on the first report, so that errors before any work come without a bar.
    """

    def __init__(self, label: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.task = self.bar.add_task(label, total=None)

    def __enter__(self):
        def advance(done: int, total: int, _what: str = "") -> None:
            if not self.bar.live.is_started:
                self.bar.start()
            self.bar.update(self.task, completed=done, total=total)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar.live.is_started:
            self.bar.stop()
