"""Where the public tables are, and the one way their files are read.

A table folder holds one sub-folder per space (``nb201/``, ``fbnet/``, ``ofa/``) with an
architecture list and a latency table, either as the public CSV/JSON-lines files or as the compact
Parquet copy that ships inside the package (built by :mod:`hwnas.search.tables.bundle`). Both read
through :func:`read_frame`, so a user's own newer tables (``--data DIR`` or ``HWNAS_DATA``) and the
bundled copy are one code path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataNotFoundError, TableError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ENV_VAR", "GENE_PREFIX", "SPACE_DIRS", "bundled_dir", "override_dir", "read_frame",
           "table_root"]

ENV_VAR = "HWNAS_DATA"
#: columns of a bundled architecture table holding the parsed genes (not accuracies)
GENE_PREFIX = "gene_"
SPACE_DIRS = ("nb201", "fbnet", "ofa")


def bundled_dir() -> Path:
    """The folder of the tables shipped inside the package (``hwnas/search/tables/data``)."""
    return Path(__file__).resolve().parent / "data"


def override_dir(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, str] | None:
    """The user's own table folder, if one is given: ``explicit`` (``--data``), else
    ``HWNAS_DATA``; returns the folder and how it was named, or ``None`` for the bundled copy.

    Raises:
        DataNotFoundError: the named folder does not exist or holds none of the space folders.
    """
    env = os.environ.get(ENV_VAR)
    if explicit is not None:
        where, how = Path(explicit), "--data"
    elif env:
        where, how = Path(env), ENV_VAR
    else:
        return None
    if not where.is_dir():
        raise DataNotFoundError(
            f"{how} points at {str(where)!r}, which is not a directory; point it at a folder "
            f"holding {', '.join(d + '/' for d in SPACE_DIRS)} or unset it to use the bundled "
            "tables")
    if not any((where / d).is_dir() for d in SPACE_DIRS):
        raise DataNotFoundError(
            f"{how} points at {str(where)!r}, which holds none of "
            f"{', '.join(d + '/' for d in SPACE_DIRS)}; point it at the folder holding the "
            "tables or unset it to use the bundled tables")
    return where, how


def table_root(space: str, explicit: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The folder whose ``space/`` sub-folder is read, and where it came from (``bundled``,
    ``--data DIR`` or ``HWNAS_DATA=DIR``). A user's folder without this space falls back to the
    bundled copy, so a folder of newer nb201 tables does not hide fbnet and ofa.
    """
    found = override_dir(explicit)
    if found is not None and (found[0] / space).is_dir():
        return found[0], f"{found[1]} {found[0]}"
    return bundled_dir(), "bundled"


def read_frame(folder: Path, stem: str, columns: list[str] | None = None) -> tuple[pd.DataFrame,
                                                                                   Path]:
    """Read ``folder/stem`` as Parquet, CSV or JSON lines (the first that exists, in that order).

    Returns:
        the table and the path read.

    Raises:
        TableError: no such file, or one that cannot be parsed (says which and why).
    """
    import pandas as pd  # here, so that importing hwnas.search stays light

    for suffix in (".parquet", ".csv", ".jsonl"):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            break
    else:
        raise TableError(f"missing table {folder / stem}.parquet (or .csv, .jsonl)")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path, columns=columns)
        elif suffix == ".csv":
            frame = pd.read_csv(path, usecols=columns)
        else:
            frame = pd.DataFrame(_read_jsonl(path))
            if columns is not None:
                frame = frame[columns]
    except TableError:
        raise
    except (OSError, ValueError, KeyError, UnicodeDecodeError, pd.errors.ParserError) as e:
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TableError(f"cannot read {path}: {text}") from None
    except Exception as e:  # pyarrow raises its own error types for corrupt files
        raise TableError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    return frame, path


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TableError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise TableError(f"{path}:{n}: a row must be a JSON object")
            rows.append(row)
    return rows
