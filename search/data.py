"""Where the public benchmark tables and hwnas's caches live.

The tables ship inside the package (:mod:`hwnas.search.tables`); ``--data DIR`` on the command
line, else the ``HWNAS_DATA`` environment variable, names a folder of your own that overrides them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .tables.files import ENV_VAR, bundled_dir, override_dir

__all__ = ["ENV_VAR", "CACHE_ENV_VAR", "cache_root", "resolve_data_dir"]

CACHE_ENV_VAR = "HWNAS_CACHE"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The table folder in use: ``explicit`` (``--data``), else ``HWNAS_DATA``, else the bundled
    copy.

    Raises:
        DataNotFoundError: ``explicit`` or ``HWNAS_DATA`` names no table folder (says which).
    """
    found = override_dir(explicit)
    return found[0] if found is not None else bundled_dir()


def cache_root() -> Path:
    """Folder of hwnas's caches (model statistics, exported networks).

    ``$HWNAS_CACHE``, else ``$XDG_CACHE_HOME/hwnas``, else ``~/.cache/hwnas``.
    """
    root = os.environ.get(CACHE_ENV_VAR)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwnas"
