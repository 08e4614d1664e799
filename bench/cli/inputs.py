"""Input files of the command line, read by one set of rules.

Shots (``latency adapt``, ``accuracy adapt``) and device-table paths given to ``--device`` are read
by :func:`hwnas.search.tables.read_values`, the one reader of "index or arch plus a value", so a
file that one command accepts no other refuses. ``--indices`` files are read here: integers only.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import click
import numpy as np

from hwnas.search import TableError

from .options import read_text

__all__ = ["read_indices", "read_shots", "check_device_path", "refuse_same_file"]

_INT = re.compile(r"[+-]?[0-9]+")


def read_indices(path: Path, size: int | None = None) -> list[int]:
    """Table indices from a CSV with an ``index`` column or one index per line (repeats dropped).

    Raises:
        click.BadParameter: undecodable file.
        TableError: no indices, a value that is not an integer written as one (``1.5``), or an
            index outside ``0..size-1``.
    """
    import pandas as pd

    text = read_text(path, "--indices")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # a CSV has a header row with commas or the 'index' column; anything else is one per line
    if lines and ("," in lines[0] or lines[0] == "index"):
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as e:
            raise TableError(f"--indices file {path}: not a CSV ({str(e).splitlines()[0]})") \
                from None
        if "index" not in frame.columns:
            raise TableError(f"--indices file {path}: needs an 'index' column or one index per "
                             "line")
        lines = [v.strip() for v in frame["index"].tolist()]
    for n, v in enumerate(lines):
        if not _INT.fullmatch(v):
            raise TableError(f"--indices file {path}: entry {n + 1} ({v[:40]!r}) is not an "
                             "integer; valid: integers such as 17")
    indices = [int(v) for v in lines]
    if not indices:
        raise TableError(f"--indices file {path}: no indices")
    if size is not None:
        for i in indices:
            if not 0 <= i < size:
                raise TableError(f"--indices file {path}: index {i} out of range; valid: "
                                 f"0..{size - 1}")
    return list(dict.fromkeys(indices))


def read_shots(path: Path, tables: Any, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Table indices and values of a shots file (``index`` or ``arch``, and ``column``).

    Raises:
        TableError, NotInTableError: any rule of :func:`read_values` broken (named by row).
    """
    from hwnas.search.tables import read_values

    read_text(path, "--shots")  # binary and Latin-1 files get the same one line everywhere
    values = read_values(path, tables.space, [column], tables.archs, what="shots file")
    if values.indices is not None:
        idx = values.indices
    else:
        idx = np.array([tables.index_of(a) for a in values.archs], dtype=np.int64)
    return idx, values.values


def check_device_path(spec: str | None, tables: Any) -> None:
    """Read a ``--device`` that is a device-table path by the one reader's rules, so that query
    and search refuse what ``latency adapt`` refuses (rows outside the table, unparsable arch)."""
    if spec is None or spec.startswith(("live:", "lut:")) or tables is None:
        return
    path = Path(spec)
    if path.is_dir():
        if (path / "lut.json").is_file():
            return
        path = path / "latency_ms.csv"
    if not path.is_file():
        return
    from hwnas.latency import read_device_table

    read_text(path, "--device")
    read_device_table(path, tables.space, tables.archs)


def refuse_same_file(source: Path, out: Path, source_option: str) -> None:
    """Refuse an ``--out`` that is the input file itself (it would be overwritten)."""
    import os

    same = out.exists() and source.exists() and os.path.samefile(source, out)
    if same or out.resolve() == source.resolve():
        raise click.BadParameter(f"{str(out)!r} is the {source_option} file; valid: another "
                                 f"path, so the {source_option} file is kept", param_hint="--out")

