"""How long loading every table takes, from the bundled Parquet copy and from a CSV folder,
measured side by side (alternating, medians over repeats: this machine's CPU speed drifts)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from .files import SPACE_DIRS, bundled_dir
from .load import _load, load_tables

__all__ = ["time_loading"]


def _load_all(folder: str | None) -> float:
    _load.cache_clear()  # a cold load each time: nothing kept from the previous repeat
    t0 = time.perf_counter()
    for space in SPACE_DIRS:
        load_tables(space, folder)
    return time.perf_counter() - t0


def time_loading(csv_folder: str | os.PathLike[str], repeats: int = 7) -> dict[str, Any]:
    """Seconds to load all three spaces' tables, from ``csv_folder`` (the public CSV form) and
    from the bundled copy, alternating which goes first.

    Returns:
        per copy the median and all samples, and ``ratio`` = CSV median / bundled median (> 1:
        the bundled copy is faster).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    csv_folder = str(Path(csv_folder))
    samples: dict[str, list[float]] = {"csv": [], "bundled": []}
    for r in range(repeats):
        order = [("csv", csv_folder), ("bundled", str(bundled_dir()))]
        for name, folder in order if r % 2 == 0 else order[::-1]:
            samples[name].append(_load_all(folder))
    _load.cache_clear()
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {"repeats": repeats, "csv_folder": csv_folder,
            "csv": {"median_s": med["csv"], "samples_s": samples["csv"]},
            "bundled": {"median_s": med["bundled"], "samples_s": samples["bundled"]},
            "ratio": med["csv"] / med["bundled"]}
