"""A latency table for a new device from a few measurements: which architectures to measure, and
the predicted table once they are measured (HELP, Lee et al., NeurIPS 2021: a hardware embedding
from reference architectures plus fast adaptation; see :mod:`hwnas.meta.latency`).

``hwnas latency plan`` / ``adapt`` and the quickstart call these functions. The meta-trained
predictor is cached under ``cache_root()/latency_meta`` as a checked ``.npz`` (never unpickled),
keyed by space, source devices, seed, algorithm, meta-steps and :data:`CACHE_VERSION`, so later
adaptations take seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hwnas.search import HwnasError, TableError, cache_root
from hwnas.search.tables import BenchmarkTables, load_tables, reference_indices

from .encoders import onehot_features, structure_features
from .latency import MIN_SHOTS, LatencyTask, MetaLatencyPredictor
from .latency_features import LatencyFeatures, plan_shots

__all__ = ["CACHE_VERSION", "DeviceContext", "device_context", "plan_device", "adapt_device"]

#: bump when the meta-training changes, so cached predictors are retrained
CACHE_VERSION = "2"
Progress = Callable[[int, int], None]


@dataclass
class DeviceContext:
    """The public tables of a space, featurised for latency transfer."""

    tables: BenchmarkTables
    features: LatencyFeatures
    reference: list[int]
    dropped: list[str]


def device_context(space: str, source_devices: Sequence[str] | None = None,
                   data_dir: str | os.PathLike[str] | None = None) -> DeviceContext:
    """Features of every architecture of ``space``'s table from the source devices' latencies.

    Args:
        source_devices: public devices to learn from (default: all of the space's); devices with
            missing or non-positive latencies are left out (listed in ``dropped``, and warned).

    Raises:
        UnknownNameError: an unknown space or device.
        TableError: no usable source device, or a malformed reference set.
    """
    tables = load_tables(space, data_dir)
    sources = list(dict.fromkeys(source_devices)) if source_devices else list(tables.devices)
    for d in sources:
        tables.check_device(d)
    lat = tables.latency[sources].to_numpy(np.float64)
    usable = np.isfinite(lat).all(axis=0) & (lat > 0).all(axis=0)
    dropped = [d for d, ok in zip(sources, usable, strict=True) if not ok]
    if dropped:
        warnings.warn("source devices with missing or non-positive latencies left out: "
                      + ", ".join(dropped), stacklevel=2)
    sources = [d for d, ok in zip(sources, usable, strict=True) if ok]
    if not sources:
        raise TableError(f"{space}: no usable source device")
    feats = LatencyFeatures(tables.latency[sources].to_numpy(np.float64),
                            onehot_features(tables.space, tables.archs),
                            structure_features(tables.space, tables.archs), sources)
    reference = reference_indices(space, tables.source_dir)
    if any(i >= len(tables) for i in reference):
        raise TableError(f"the {space} reference set holds indices outside 0..{len(tables) - 1}")
    return DeviceContext(tables, feats, reference, dropped)


def plan_device(context: DeviceContext, shots: int = 20, seed: int = 0) -> pd.DataFrame:
    """The architectures to measure on a new device: HELP's reference set, then D-optimal picks
    over the source latencies' 5 leading principal components and the structure
    (:func:`~hwnas.meta.latency_features.plan_shots`; columns ``index``, ``arch``).

    Raises:
        HwnasError: ``shots`` outside 1..table size, or a negative seed.
    """
    n = len(context.tables)
    if not 1 <= shots <= n:
        raise HwnasError(f"shots must be in 1..{n} (the table's architectures), got {shots}")
    if seed < 0:
        raise HwnasError(f"seed must be >= 0, got {seed}")
    chosen = plan_shots(context.features, shots, context.reference, seed)
    return pd.DataFrame({"index": chosen,
                         "arch": [str(context.tables.archs[i]) for i in chosen]})


def adapt_device(context: DeviceContext, indices: np.ndarray, latency_ms: np.ndarray,
                 seed: int = 0, algo: str = "ridge", meta_steps: int = 150,
                 progress: Progress | None = None, cache: bool | Path = True
                 ) -> tuple[pd.DataFrame, object]:
    """Predict every architecture's latency on a device measured at ``indices``.

    Args:
        indices, latency_ms: the measured shots (table indices, milliseconds).
        cache: ``True`` for the default cache folder, a folder, or ``False`` for none.

    Returns:
        the predicted device table (``index``, ``arch``, ``latency_ms``) and the adapted predictor
        (its ``weights_`` and ``candidates_`` say which heads carry the prediction).

    Raises:
        TableError: fewer than the minimum number of shots.
    """
    feats, tables = context.features, context.tables
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) < MIN_SHOTS:
        raise TableError(f"{len(indices)} shots; adaptation needs at least {MIN_SHOTS}")
    meta = MetaLatencyPredictor(feats, algo=algo, reference=context.reference, seed=seed,
                                meta_steps=meta_steps)
    path = None
    if cache:
        key = hashlib.sha256(json.dumps([tables.space.name, feats.sources, seed, algo,
                                         meta_steps, CACHE_VERSION]).encode()).hexdigest()[:16]
        folder = cache if isinstance(cache, Path) else cache_root() / "latency_meta"
        path = folder / f"{tables.space.name}-{algo}-s{seed}-{key}.npz"
    tasks = [LatencyTask(d, feats.source_latency_ms[:, j], j) for j, d in enumerate(feats.sources)]
    meta.meta_fit(tasks, progress=progress, cache=path)
    pred = meta.adapt(indices, np.asarray(latency_ms, dtype=np.float64))
    every = np.arange(len(tables))
    frame = pd.DataFrame({"index": every, "arch": [str(a) for a in tables.archs],
                          "latency_ms": pred.predict(every)})
    return frame, pred
