"""Profiling a device: measure many architectures into a device table, resumably.

The host a profile runs on is rarely quiet: on shared or virtual CPUs the speed flips between
states lasting seconds (a fixed network's median was seen moving between 1.5 and 2.5 ms on this
project's CI machines). A single median per architecture inherits whichever state the host was in.
The profiler therefore (1) times a fixed *reference* architecture in alternating chunks with every
architecture and keeps the ratio of their medians — both see the same host state, so it cancels —
and reports ratio x the reference's median over the whole profile; (2) optionally measures in
several *rounds* separated in time; (3) records the reference's level over time and flags the
profile when it drifts; and (4) records the precision it reached (CI of each median, spread between
rounds) in the table's metadata. Unpaired measurement (``paired_reference=False``) keeps the
minimum of the round medians instead, since a slow state only ever adds time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Architecture, Space

from .environment import describe_environment
from .protocol import MeasurementProtocol, measure
from .runtime import Runtime, RuntimeUnavailableError
from .store import ProfileStore, StoreError
from .table import DeviceTable

__all__ = ["Profiler", "Target", "reference_arch", "aggregate"]

#: progress(done, total, last architecture)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Target:
    """One architecture to profile, with its table index where the space has one."""

    arch: Architecture
    index: int | None = None


def reference_arch(space: Space) -> Architecture:
    """The fixed reference architecture of a space (a seeded draw, the same everywhere)."""
    return space.sample(20211206)


class Profiler:
    """Measures architectures on one runtime into ``out_dir`` (store, table and metadata).

    Args:
        space: the search space.
        runtime: an available runtime.
        protocol: the measurement protocol.
        out_dir: the profile's folder; a rerun with the same settings resumes it.
        name: the device name written into the metadata.
        table: what ``latency_ms.csv`` holds: ``"store"``, every architecture in the store (a
            live source's table grows with each search), or ``"request"``, only the targets of
            the last :meth:`run` (``hwnas profile``: a rerun with another ``--archs`` draw
            reports what it was asked; measurements of earlier draws stay in the store and are
            reused when asked again). ``meta.json`` counts both.
    """

    TABLES = ("store", "request")

    def __init__(self, space: Space, runtime: Runtime, protocol: MeasurementProtocol,
                 out_dir: str | Path, name: str, table: str = "store"):
        if table not in self.TABLES:
            raise ValueError(f"table must be one of {self.TABLES}, got {table!r}")
        self.space, self.runtime, self.protocol = space, runtime, protocol
        self.out_dir, self.name, self.table = Path(out_dir), name, table
        self.reference = reference_arch(space)
        self.environment = describe_environment()
        self._reference_timer = None

    def settings(self) -> dict[str, Any]:
        """What must not change when a profile is resumed."""
        rt = self.runtime.describe()
        return {
            "space": self.space.name,
            "build_version": self.space.build_version,
            "runtime": {k: v for k, v in rt.items()
                        if k not in ("onnxruntime", "torch", "openvino")},
            # a key of its own: stores written before it existed still resume
            "numeric_precision": self.runtime.precision,
            "protocol": self.protocol.to_dict(),
            "reference": self.space.format(self.reference),
            "machine": {k: self.environment[k] for k in ("cpu_model", "gpu")},
        }

    def run(self, targets: Sequence[Target], progress: Progress | None = None) -> DeviceTable:
        """Measure every target in every round not yet in the store; write and return the table.

        Raises:
            RuntimeUnavailableError: the runtime cannot run here.
            StoreError: the store cannot be written or holds a profile with other settings.
        """
        self.runtime.require()
        with ProfileStore(self.out_dir) as store:
            store.bind_settings(self.settings())
            total = len(targets) * self.protocol.rounds
            done_count = sum(len(store.done(r) & {self.space.format(t.arch) for t in targets})
                             for r in range(1, self.protocol.rounds + 1))
            if progress:
                progress(done_count, total, "")
            for round_ in range(1, self.protocol.rounds + 1):
                done = store.done(round_)
                since_reference = None
                for position, t in enumerate(targets):
                    text = self.space.format(t.arch)
                    if text in done:
                        continue
                    # paired measurement already times the reference with every architecture
                    if not self.protocol.paired_reference and (
                            since_reference is None
                            or since_reference >= self.protocol.reference_every):
                        self._measure_reference(store, round_, position)
                        since_reference = 0
                    self._measure_one(store, t, text, round_)
                    done.add(text)
                    since_reference = (since_reference or 0) + 1
                    done_count += 1
                    if progress:
                        progress(done_count, total, text)
            wanted = {self.space.format(t.arch) for t in targets}
            return self.write(store, wanted if self.table == "request" else None)

    def _measure_reference(self, store: ProfileStore, round_: int, position: int) -> None:
        try:
            m = measure(self.runtime.timer(self.space, self.reference), self.protocol)
        except (StoreError, RuntimeUnavailableError):
            raise
        except Exception:  # a reference that cannot run leaves no drift record, nothing else
            return
        store.add_reference(round_, position, m.median_ms)

    def _paired_timer(self):
        if not self.protocol.paired_reference:
            return None
        if self._reference_timer is None:  # one session for the whole profile
            self._reference_timer = self.runtime.timer(self.space, self.reference)
        return self._reference_timer

    def _measure_one(self, store: ProfileStore, t: Target, text: str, round_: int) -> None:
        reference = self._paired_timer()
        t0 = time.perf_counter()
        try:
            m = measure(self.runtime.timer(self.space, t.arch), self.protocol, reference)
        except (StoreError, RuntimeUnavailableError, KeyboardInterrupt):
            raise
        except Exception as e:  # export or runtime failure: recorded, profiling goes on
            store.add_failure(text, t.index, round_, f"{type(e).__name__}: {e}",
                              time.perf_counter() - t0)
            return
        store.add(text, t.index, round_, m, time.perf_counter() - t0)

    def write(self, store: ProfileStore, only: set[str] | None = None) -> DeviceTable:
        """Aggregate the store into ``latency_ms.csv`` + ``meta.json`` (atomic writes).

        Args:
            only: canonical strings of the architectures the table holds (default: all stored).
        """
        rows = store.measurements()
        stored = int(rows.loc[rows["status"] == "ok", "arch"].nunique())
        if only is not None:
            rows = rows[rows["arch"].isin(only)]
        frame, failed = aggregate(rows, self.protocol.paired_reference)
        if self.protocol.paired_reference:
            paired = rows[(rows["status"] == "ok") & rows["ref_ms"].notna()]
            refs = pd.DataFrame({"median_ms": paired["ref_ms"]})
        else:
            refs = store.references()
        meta: dict[str, Any] = {
            "device": self.name,
            "space": self.space.name,
            **{k: v for k, v in self.settings().items() if k not in ("space", "machine")},
            "environment": self.environment,
            "counts": {"architectures": int(len(frame)), "failed": len(failed),
                       "stored_architectures": stored,
                       "table": "the last request" if only is not None else "the whole store",
                       "complete_rounds": int((frame["rounds"] == self.protocol.rounds).sum())
                       if len(frame) else 0},
            "failed": failed,
            "precision": _precision(frame, refs, self.protocol),
            "statistic": (
                "latency_ms: median over rounds of (median / interleaved reference median) x "
                "the reference's median over the profile" if self.protocol.paired_reference
                else "latency_ms: minimum over rounds of the per-round median"),
        }
        table = DeviceTable(frame, meta, str(self.out_dir / "latency_ms.csv"))
        try:
            table.write(self.out_dir)
        except OSError as e:  # full disk, permissions: the store keeps every measurement
            raise StoreError(f"cannot write the device table in {self.out_dir}: {e.strerror}; "
                             "the measurements are safe in the store, rerun to write it") from None
        return table


def aggregate(rows: pd.DataFrame, paired: bool) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per architecture from per-round measurements.

    Paired: every round's statistics are scaled by (reference level / that round's reference
    median), the reference level being the median of all the profile's reference medians; the
    row is the round with the median scaled latency. Unpaired: the round with the smallest median.
    ``round_spread`` is max/min - 1 of the (scaled) round medians.
    """
    ok = rows[rows["status"] == "ok"].copy()
    failed_rows = rows[(rows["status"] == "failed") & ~rows["arch"].isin(ok["arch"])]
    failed = [{"index": None if pd.isna(r.idx) else int(r.idx), "arch": r.arch, "error": r.error}
              for r in failed_rows.drop_duplicates("arch").itertuples()]
    if ok.empty:
        return pd.DataFrame(columns=["index", "arch", "latency_ms"]), failed
    if paired and ok["ref_ms"].notna().all():
        scale = float(ok["ref_ms"].median()) / ok["ref_ms"]
        for col in ("median_ms", "p10_ms", "p90_ms", "iqr_ms"):
            ok[col] = ok[col] * scale
    ok = ok.sort_values(["arch", "median_ms"])
    groups = ok.groupby("arch", sort=False)
    pick = (groups.cumcount() == ((groups["median_ms"].transform("size") - 1) // 2)
            if paired else groups.cumcount() == 0)
    best = ok[pick.to_numpy()].set_index("arch")
    best = best.join(groups["median_ms"].agg(["min", "max", "count"]))
    frame = pd.DataFrame({
        "index": best["idx"].astype("Int64"),
        "arch": best.index.to_numpy(),
        "latency_ms": best["median_ms"],
        "p10_ms": best["p10_ms"], "p90_ms": best["p90_ms"], "iqr_ms": best["iqr_ms"],
        "cv": best["cv"], "n_runs": best["n"].astype(int), "rounds": best["count"].astype(int),
        "round_spread": best["max"] / best["min"] - 1.0,
    }).reset_index(drop=True)
    frame = frame.sort_values(["index", "arch"], na_position="last").reset_index(drop=True)
    return frame, failed


def _precision(frame: pd.DataFrame, refs: pd.DataFrame,
               protocol: MeasurementProtocol) -> dict[str, Any]:
    out: dict[str, Any] = {"target_ci_rel": protocol.target_precision}
    if len(frame):
        multi = frame[frame["rounds"] > 1]["round_spread"]
        out["median_round_spread"] = float(multi.median()) if len(multi) else None
        out["p90_round_spread"] = float(multi.quantile(0.9)) if len(multi) else None
    if len(refs):
        r = refs["median_ms"].to_numpy()
        out["reference_level_ms"] = float(np.median(r))
        drift = float(np.max(np.abs(r / np.median(r) - 1.0)))
        out["reference"] = {
            "measurements": len(r), "median_ms": float(np.median(r)),
            "min_ms": float(r.min()), "max_ms": float(r.max()), "max_drift": drift,
            "drift_flagged": bool(drift > protocol.drift_threshold),
        }
    return out
