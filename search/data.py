"""Where the public benchmark tables live.

The tables are never copied into the repository; hwnas finds them through an explicit directory
(``--data`` on the command line), else the ``HWNAS_DATA`` environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataNotFoundError

__all__ = ["ENV_VAR", "CACHE_ENV_VAR", "cache_root", "resolve_data_dir"]

ENV_VAR = "HWNAS_DATA"
CACHE_ENV_VAR = "HWNAS_CACHE"

_SPACE_DIRS = ("nb201", "fbnet", "ofa")


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding the public tables (``nb201/``, ``fbnet/``, ``ofa/``).

    Args:
        explicit: a directory given by the caller; wins over ``HWNAS_DATA``.

    Raises:
        DataNotFoundError: saying exactly where hwnas looked and how to point it at the tables.

    Example:
        >>> resolve_data_dir("../shared/data")  # doctest: +SKIP
        PosixPath('../shared/data')
    """
    env = os.environ.get(ENV_VAR)
    if explicit is not None:
        where, how = Path(explicit), "--data"
    elif env:
        where, how = Path(env), f"{ENV_VAR}"
    else:
        raise DataNotFoundError(
            "the public benchmark tables were not found: no --data DIR given and "
            f"{ENV_VAR} is not set; point it at the folder holding nb201/, fbnet/ and ofa/ "
            f"(e.g. export {ENV_VAR}=../shared/data)"
        )
    if not where.is_dir():
        raise DataNotFoundError(
            f"the public benchmark tables were not found: {how} points at {str(where)!r}, "
            "which is not a directory; point it at the folder holding nb201/, fbnet/ and ofa/"
        )
    if not any((where / d).is_dir() for d in _SPACE_DIRS):
        raise DataNotFoundError(
            f"{how} points at {str(where)!r}, which holds none of {', '.join(_SPACE_DIRS)}/; "
            "point it at the folder holding the public tables"
        )
    return where


def cache_root() -> Path:
    """Folder of hwnas's caches (model statistics, exported networks).

    ``$HWNAS_CACHE``, else ``$XDG_CACHE_HOME/hwnas``, else ``~/.cache/hwnas``.
    """
    root = os.environ.get(CACHE_ENV_VAR)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwnas"
