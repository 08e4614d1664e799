"""A disk cache of parameter counts and FLOPs, so that a network is built and counted once.

SQLite (one file, WAL journal) keyed by space, canonical architecture string, number of classes
and the space's ``build_version``; safe for concurrent readers and writers.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from hwnas.search import Architecture, ModelStats, Space, cache_root, model_stats

__all__ = ["StatsCache", "default_cache_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_stats (
    space TEXT NOT NULL, arch TEXT NOT NULL, num_classes INTEGER NOT NULL, build TEXT NOT NULL,
    params INTEGER NOT NULL, flops_m REAL NOT NULL,
    PRIMARY KEY (space, arch, num_classes, build)
)
"""


def default_cache_path() -> Path:
    """The statistics file in :func:`hwnas.search.cache_root`."""
    return cache_root() / "model_stats.sqlite"


class StatsCache:
    """Parameter counts and MACs of built networks, computed on a miss and kept on disk.

    Example:
        >>> from hwnas.search import get_space
        >>> s = get_space("nb201")
        >>> cache = StatsCache("/tmp/hwnas-doc/stats.sqlite")  # doctest: +SKIP
        >>> cache.get(s, s.sample(0)).params  # doctest: +SKIP
        ...
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_cache_path()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(_SCHEMA)
        return con

    def get(self, space: Space, arch: Architecture, num_classes: int | None = None) -> ModelStats:
        """Statistics of one architecture."""
        return self.get_many(space, [arch], num_classes)[0]

    def get_many(
        self, space: Space, archs: Sequence[Architecture], num_classes: int | None = None
    ) -> list[ModelStats]:
        """Statistics of many architectures; misses are computed and stored in one transaction."""
        classes = num_classes or space.num_classes
        keys = [space.format(a) for a in archs]
        con = self._connect()
        try:
            found: dict[str, ModelStats] = {}
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for arch, params, flops in con.execute(
                    f"SELECT arch, params, flops_m FROM model_stats WHERE space=? AND "
                    f"num_classes=? AND build=? AND arch IN ({marks})",
                    (space.name, classes, space.build_version, *chunk),
                ):
                    found[arch] = ModelStats(int(params), float(flops))
            missing = [(k, a) for k, a in dict(zip(keys, archs, strict=True)).items()
                       if k not in found]
            fast = getattr(space, "fast_stats", None)  # exact shortcut where a space has one
            if fast is not None and missing:
                new = list(zip([k for k, _ in missing],
                               fast([a for _, a in missing], classes), strict=True))
            else:
                new = [(k, model_stats(space, a, classes)) for k, a in missing]
            if new:
                with con:
                    con.executemany(
                        "INSERT OR REPLACE INTO model_stats VALUES (?, ?, ?, ?, ?, ?)",
                        [(space.name, k, classes, space.build_version, s.params, s.flops_m)
                         for k, s in new],
                    )
                found.update(new)
        finally:
            con.close()
        return [found[k] for k in keys]
